"""One adapter per real store, so the same contract cases run against every hook."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import google_crc32c

from ferry_provider.hooks.base import ObjectInfo, StorageHook

MiB = 1 << 20


def crc32c_hex(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


@dataclass
class Store:
    """A store under test: its hook, a private prefix, and how to seed objects behind its back."""

    name: str
    hook: StorageHook
    base: str  # URL prefix private to one test
    write_file: Callable[[str, bytes], None] | None = None  # for read-only stores: write server-side
    # The GCS emulator ignores ifGenerationMatch and sends no hash on ranges: only a size change
    # of a pinned object is visible to the client there.
    detects_same_size_change: bool = True
    keeps_crc32c: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def url(self, key: str) -> str:
        return f"{self.base}{key}"

    def seed(self, key: str, data: bytes) -> str:
        url = self.url(key)
        if self.write_file is not None:
            self.write_file(key, data)
        else:
            self.hook.put(url, data, crc32c=crc32c_hex(data))
        return url

    def join(self, parts: list[bytes], key: str) -> ObjectInfo:
        """Join parts into one object with the store's own composite primitive."""
        dst = self.url(key)
        if self.hook.capabilities.multipart_upload:
            upload_id = self.hook.create_multipart(dst)
            done = [
                self.hook.upload_part(dst, upload_id, i + 1, p, size=len(p), crc32c=crc32c_hex(p))
                for i, p in enumerate(parts)
            ]
            return self.hook.complete_multipart(
                dst, upload_id, done, crc32c=crc32c_hex(b"".join(parts)), size=sum(map(len, parts))
            )
        sources = [self.seed(f"{key}.component{i}", p) for i, p in enumerate(parts)]
        return self.hook.compose(sources, dst)


def unique_prefix() -> str:
    return f"t{int(time.time())}-{uuid.uuid4().hex[:8]}/"


def local_store(root: str) -> Store:
    from ferry_provider.hooks.local import FerryLocalHook

    base = os.path.join(root, unique_prefix())
    return Store("local", FerryLocalHook(), base, keeps_crc32c=False)


def http_store(url: str, root: str) -> Store:
    from ferry_provider.hooks.http import FerryHTTPHook

    prefix = unique_prefix()

    def write_file(key: str, data: bytes) -> None:
        path = os.path.join(root, prefix, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    return Store("http", FerryHTTPHook(), f"{url}/{prefix}", write_file=write_file, keeps_crc32c=False)
