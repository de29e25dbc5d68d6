"""Sinks: where parts become one object, published atomically, resumable, and removable.

An S3 multipart upload (parts with CRC32C, completed with a FULL_OBJECT CRC32C) or GCS temporary
components joined by a tree of composes. Each sink knows what an earlier run left on the server
(``verify_existing``), how to publish (``complete``) and how to leave nothing behind
(``discard``). What a sink keeps between runs (an upload id, a component prefix) lives in the
tracker's ``extra``.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ferry_provider.hooks.base import Body, ObjectInfo, PartInfo, StorageHook
from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, NotFoundError
from ferry_provider.hooks.url import ObjectURL
from ferry_provider.transfer import checksums
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.interrupt import SIGNAL_PENDING, deferred_signals
from ferry_provider.transfer.plan import Part, RangePlan
from ferry_provider.transfer.retry import RetryPolicy

log = logging.getLogger("ferry_provider.transfer")

COMPONENT_PREFIX = ".ferry/tmp/"  # temporary components live here, in the destination bucket


def is_component(url: str) -> bool:
    """Whether ``url`` is a temporary component of an upload (Ferry's state, not data)."""
    return f"/{COMPONENT_PREFIX}" in url


T = TypeVar("T")


class ObjectSink:
    """How parts become one object on this store."""

    upload_id = ""
    resumed = False  # the upload (id or components) was taken over from the tracker

    def __init__(
        self,
        hook: StorageHook,
        dst: ObjectURL,
        retry: RetryPolicy,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        no_clobber: bool = False,
        checksum: bool = True,
    ) -> None:
        self.hook = hook
        self.dst = dst
        self.retry = retry
        self.content_type = content_type
        self.metadata = metadata or None
        self.no_clobber = no_clobber
        self.checksum = checksum  # False: the store is not asked for a checksum of the object

    def call(self, what: str, fn: Callable[[], T], stop: threading.Event | None = None) -> T:
        return self.retry.run(fn, what=f"{self.dst.raw}: {what}", stop=stop)

    def begin(self, checkpoint: Checkpoint) -> None:
        raise NotImplementedError

    def verify_existing(self, checkpoint: Checkpoint) -> int:
        """Forget tracker parts the server no longer has as recorded; return how many remain."""
        raise NotImplementedError

    def send(self, part: Part, body: Body, crc32c: str) -> PartInfo:
        raise NotImplementedError

    def send_copy(self, part: Part, source: str, pin: ObjectInfo) -> PartInfo:
        """Have the store take ``part`` from ``source`` itself (capability ``part_copy``)."""
        raise InvalidArgumentError(f"{self.dst.raw}: this store cannot copy parts server-side")

    def complete(self, checkpoint: Checkpoint, plan: RangePlan, crc32c: str | None, size: int) -> ObjectInfo:
        raise NotImplementedError

    def discard(self, extra: dict[str, Any], indexes: list[int]) -> bool:
        """Remove what ``extra`` names on the server; False when that failed (it is still there)."""
        raise NotImplementedError


def sink_for(
    hook: StorageHook,
    dst: ObjectURL,
    retry: RetryPolicy,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    no_clobber: bool = False,
    checksum: bool = True,
) -> ObjectSink:
    """The parted sink this store offers (capabilities decide, never the scheme)."""
    caps = hook.capabilities
    if not (caps.multipart_upload or caps.composite_upload):
        raise InvalidArgumentError(f"{dst.raw}: this store cannot join parts into an object")
    cls = MultipartSink if caps.multipart_upload else ComposeSink
    return cls(hook, dst, retry, content_type=content_type, metadata=metadata, no_clobber=no_clobber, checksum=checksum)


class MultipartSink(ObjectSink):
    """S3 multipart: parts with CRC32C, completed with a FULL_OBJECT CRC32C and the size."""

    def begin(self, checkpoint: Checkpoint) -> None:
        upload_id = checkpoint.extra.get("upload_id")
        self.resumed = bool(upload_id)
        if not upload_id:
            with deferred_signals():  # an upload whose id was lost could never be aborted
                upload_id = self.call(
                    "create multipart upload",
                    lambda: self.hook.create_multipart(
                        self.dst.raw, content_type=self.content_type, metadata=self.metadata, checksum=self.checksum
                    ),
                    stop=SIGNAL_PENDING,  # after a signal, no second attempt: the run is stopping
                )
                checkpoint.clear_parts()
                checkpoint.set_extra(upload_id=upload_id)
        self.upload_id = upload_id

    def verify_existing(self, checkpoint: Checkpoint) -> int:
        """Keep only tracker parts the server still has with the same size, ETag and CRC32C. The
        upload itself is checked even when no part was recorded: it may have been aborted
        (``ferry cleanup``) or expired, and then a new one starts now rather than failing at the
        first part."""
        if not self.resumed:
            return 0
        try:
            listed = {
                p.number: p for p in self.call("list parts", lambda: self.hook.list_parts(self.dst.raw, self.upload_id))
            }
        except NotFoundError:  # the upload expired or was aborted: start a new one
            log.info("%s: upload %s is gone on the server; starting a new one", self.dst.raw, self.upload_id)
            checkpoint.extra.pop("upload_id", None)
            self.begin(checkpoint)
            return 0
        for index, info in list(checkpoint.parts.items()):
            server = listed.get(index + 1)
            recorded_crc = info.get("crc32c")
            if (
                server is None
                or server.size != info["size"]
                or server.etag != info["etag"]
                or (server.crc32c and recorded_crc is not None and server.crc32c != checksums.hex32(recorded_crc))
            ):
                checkpoint.forget(index)
        return len(checkpoint.parts)

    def send(self, part: Part, body: Body, crc32c: str) -> PartInfo:
        if hasattr(body, "seek"):
            body.seek(0)  # a retry sends the part from its start again
        return self.hook.upload_part(self.dst.raw, self.upload_id, part.index + 1, body, size=part.size, crc32c=crc32c)

    def send_copy(self, part: Part, source: str, pin: ObjectInfo) -> PartInfo:
        number = part.index + 1
        return self.hook.upload_part_copy(self.dst.raw, self.upload_id, number, source, part.start, part.end, pin)

    def complete(self, checkpoint: Checkpoint, plan: RangePlan, crc32c: str | None, size: int) -> ObjectInfo:
        parts = [
            PartInfo(
                i + 1,
                info["etag"],
                info["size"],
                checksums.hex32(info["crc32c"]) if info.get("crc32c") is not None else None,
            )
            for i, info in sorted(checkpoint.parts.items())
        ]
        return self.call(
            "complete multipart upload",
            lambda: self.hook.complete_multipart(
                self.dst.raw, self.upload_id, parts, crc32c=crc32c, size=size, if_absent=self.no_clobber
            ),
            stop=SIGNAL_PENDING,
        )

    def discard(self, extra: dict[str, Any], indexes: list[int]) -> bool:
        upload_id = extra.get("upload_id")
        if not upload_id:
            return True
        try:
            self.call("abort multipart upload", lambda: self.hook.abort_multipart(self.dst.raw, upload_id))
        except NotFoundError:
            return True  # already gone
        except FerryError as exc:
            log.info("%s: could not abort upload %s: %s", self.dst.raw, upload_id, exc)
            return False
        return True


class ComposeSink(ObjectSink):
    """GCS: temporary component objects, joined by a tree of composes, then deleted."""

    prefix = ""

    def begin(self, checkpoint: Checkpoint) -> None:
        prefix = checkpoint.extra.get("component_prefix")
        if not prefix:
            digest = hashlib.sha1(self.dst.key.encode()).hexdigest()[:16]
            prefix = f"{COMPONENT_PREFIX}{secrets.token_hex(8)}_{digest}/"
            checkpoint.clear_parts()
            checkpoint.set_extra(component_prefix=prefix)
        self.prefix = prefix

    def _component(self, name: str) -> str:
        # Names never contain the destination key, so they never outgrow the 1024-byte key limit.
        return self.dst.sibling(f"{self.prefix}{name}")

    def verify_existing(self, checkpoint: Checkpoint) -> int:
        for index, info in list(checkpoint.parts.items()):
            try:
                existing = self.call("head component", lambda i=index: self.hook.head(self._component(f"{i:05d}")))
            except NotFoundError:
                checkpoint.forget(index)
                continue
            if existing.size != info["size"] or existing.crc32c != checksums.hex32(info["crc32c"]):
                checkpoint.forget(index)
        return len(checkpoint.parts)

    def send(self, part: Part, body: Body, crc32c: str) -> PartInfo:
        if hasattr(body, "seek"):
            body.seek(0)
        info = self.hook.put(self._component(f"{part.index:05d}"), body, size=part.size, crc32c=crc32c)
        return PartInfo(part.index + 1, info.etag or "", part.size, crc32c)

    def complete(self, checkpoint: Checkpoint, plan: RangePlan, crc32c: str | None, size: int) -> ObjectInfo:
        limit = self.hook.capabilities.max_compose_sources
        level = [self._component(f"{p.index:05d}") for p in plan.parts]
        depth = 0
        while len(level) > limit:
            nxt = []
            for g, group in enumerate(_chunks(level, limit)):
                if len(group) == 1:
                    nxt.append(group[0])
                    continue
                joined = self._component(f"tree{depth}_{g:05d}")
                self.call("compose", lambda grp=group, j=joined: self.hook.compose(grp, j))
                nxt.append(joined)
            level, depth = nxt, depth + 1
        info = self.call(
            "compose",
            lambda: self.hook.compose(
                level, self.dst.raw, content_type=self.content_type, metadata=self.metadata, if_absent=self.no_clobber
            ),
        )
        self.discard(checkpoint.extra, list(checkpoint.parts))
        return info

    def discard(self, extra: dict[str, Any], indexes: list[int]) -> bool:
        """Delete every temporary object under this upload's prefix (components and tree nodes)."""
        prefix = extra.get("component_prefix")
        if not prefix:
            return True
        try:
            names = [o.url for o in self.hook.list(self.dst.sibling(prefix))]
            with ThreadPoolExecutor(max(1, min(8, len(names)))) as pool:
                list(pool.map(lambda u: self.call("delete component", lambda: self.hook.delete(u)), names))
        except NotFoundError:
            return True  # no bucket, no components
        except FerryError as exc:
            log.info("%s: could not delete components under %s: %s", self.dst.raw, prefix, exc)
            return False
        return True


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
