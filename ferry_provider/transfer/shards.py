"""Shards of a bulk transfer: one listing cut into balanced pieces, and their manifests merged.

The planner lists the source once, spooling the listing to a local file while it counts (memory
stays flat however many keys), then cuts it into contiguous shards of about equal weight (bytes
plus a fixed cost per object, so many small objects weigh what they cost) and writes each shard's
listing as JSON lines next to the others, on local disk or object storage. A shard is named by
that file's URL: XCom carries a few URLs, never thousands of keys.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.hooks.url import parse_url
from ferry_provider.transfer.listing import Listed, ListFilter, folder, list_prefix
from ferry_provider.transfer.manifest import ERROR, OK, SKIP
from ferry_provider.transfer.manifest_file import encode_rows, parse_rows, row_from_dict
from ferry_provider.transfer.plan import MiB

MAX_SHARDS = 1024
OBJECT_WEIGHT = 1 * MiB  # what one object costs beyond its bytes (requests, files, rows)
MIN_SHARD_WEIGHT = 256 * MiB  # below this a shard is not worth a task of its own


@dataclass(frozen=True)
class Shard:
    listing: str  # URL or path of the shard's listing (JSON lines)
    objects: int
    bytes: int


def listing_line(item: Listed) -> str:
    """One listed object as a JSON line: the relative key and what the listing said of it
    (fields left empty are left out)."""
    info = item.info
    record: dict[str, Any] = {"relative": item.relative, "url": info.url, "size": info.size}
    for name in ("etag", "version", "md5", "crc32c", "content_type"):
        value = getattr(info, name)
        if value:
            record[name] = value
    if info.last_modified is not None:
        record["last_modified"] = info.last_modified.isoformat()
    return json.dumps(record) + "\n"


def parse_listing(text: str) -> Iterator[Listed]:
    for line in text.splitlines():
        if not line.strip():
            continue
        record: dict[str, Any] = json.loads(line)
        relative = record.pop("relative")
        if record.get("last_modified"):
            record["last_modified"] = datetime.fromisoformat(record["last_modified"])
        yield Listed(ObjectInfo(**record), relative)


def plan_shards(
    source_hook: StorageHook,
    source: str,
    listing_location: str,
    write: Callable[[str, bytes], None],
    *,
    only: ListFilter | None = None,
    max_shards: int = MAX_SHARDS,
    min_shard_weight: int | None = None,
    spool_dir: str | None = None,
) -> list[Shard]:
    """List ``source`` once and write up to ``max_shards`` shard listings under
    ``listing_location`` (a folder: ``shard-00000.jsonl``, ...) through ``write(url, data)``.
    A shard weighs at least ``min_shard_weight`` (bytes, plus OBJECT_WEIGHT per object; default
    MIN_SHARD_WEIGHT)."""
    if not 1 <= max_shards <= MAX_SHARDS:
        raise InvalidArgumentError(f"max_shards must be between 1 and {MAX_SHARDS}, got {max_shards}")
    prefix = folder(source)
    base = listing_location.rstrip("/") + "/"
    count = total = 0
    with tempfile.TemporaryFile("w+", dir=spool_dir, prefix="ferry-plan-") as spool:
        for item in list_prefix(source_hook, prefix, only):
            size = item.info.size or 0
            spool.write(f"{size}\t{listing_line(item)}")  # the size up front: the cut needs no JSON parse
            count += 1
            total += size
        weight = total + count * OBJECT_WEIGHT
        floor = MIN_SHARD_WEIGHT if min_shard_weight is None else max(1, min_shard_weight)
        n = max(1, min(max_shards, count, weight // floor))
        spool.seek(0)
        shards: list[Shard] = []
        lines: list[str] = []
        done = shard_objects = shard_bytes = 0
        for spooled in spool:
            size_text, _, line = spooled.partition("\t")
            size = int(size_text)
            lines.append(line)
            shard_objects += 1
            shard_bytes += size
            done += size + OBJECT_WEIGHT
            # Cut where the running weight passes the next shard's share of the total.
            if len(shards) < n - 1 and done * n >= weight * (len(shards) + 1):
                shards.append(_write_shard(base, len(shards), lines, shard_objects, shard_bytes, write))
                lines, shard_objects, shard_bytes = [], 0, 0
        if lines or not shards:
            shards.append(_write_shard(base, len(shards), lines, shard_objects, shard_bytes, write))
    return shards


def _write_shard(base: str, index: int, lines: list[str], objects: int, size: int, write: Any) -> Shard:
    url = f"{base}shard-{index:05d}.jsonl"
    write(url, "".join(lines).encode())
    return Shard(url, objects, size)


def write_to(hook_for: Callable[[str], StorageHook]) -> Callable[[str, bytes], None]:
    """A ``write`` for plan_shards: local paths (folders made as needed) or object URLs."""

    def write(url: str, data: bytes) -> None:
        parsed = parse_url(url)
        if parsed.is_local:
            os.makedirs(os.path.dirname(parsed.key), exist_ok=True)
            with open(parsed.key, "wb") as f:
                f.write(data)
            return
        hook_for(url).put(url, data, size=len(data), content_type="application/x-ndjson")

    return write


def merge_manifests(texts: Iterator[str], out: BinaryIO | None = None, fmt: str = "csv") -> dict[str, Any]:
    """Count the results of shard manifests, and write them as one manifest to ``out``."""
    counts: Counter[str] = Counter()
    moved: Counter[str] = Counter()
    header = True
    for text in texts:
        rows = [row_from_dict(raw) for raw in parse_rows(text)]
        for row in rows:
            counts[row.result] += 1
            moved[row.result] += row.bytes_transferred
        if out is not None and rows:
            out.write(encode_rows(rows, fmt, header=header).encode())
            header = False
    return {
        "objects": sum(counts.values()),
        "counts": {k: counts[k] for k in (OK, SKIP, ERROR)},
        "bytes_transferred": {k: moved[k] for k in (OK, SKIP, ERROR)},
    }
