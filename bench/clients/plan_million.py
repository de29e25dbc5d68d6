"""Child process: plan shards for a listing of N keys (generated pages, no server): time and the
memory planning takes. argv: N SCRATCH. Prints {"seconds": .., "baseline_rss": .., "shards": ..}."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from bench.common import vm_hwm
from ferry_provider.hooks.base import Capabilities, ObjectInfo, RangeReader, StorageHook
from ferry_provider.transfer.shards import plan_shards, write_to


class GeneratedListing(StorageHook):
    """A store whose listing is N generated keys, 1,000 a page, as S3 would return them."""

    schemes = ("s3",)
    capabilities = Capabilities()

    def __init__(self, count: int) -> None:
        self.count = count

    def head(self, url: str) -> ObjectInfo:
        raise NotImplementedError

    def open_range(
        self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None
    ) -> RangeReader:
        raise NotImplementedError

    def list(self, url: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        when = datetime(2026, 11, 23, tzinfo=UTC)
        for i in range(self.count):
            key = f"day/region-{i % 16:02d}/hour-{i % 24:02d}/part-{i:09d}.parquet"
            yield ObjectInfo(f"s3://bench/{key}", 64 << 10, etag=f"{i:032x}", last_modified=when, md5=f"{i:032x}")


def main() -> None:
    count, scratch = int(sys.argv[1]), sys.argv[2]
    hook = GeneratedListing(count)
    baseline = vm_hwm()
    started = time.perf_counter()
    shards = plan_shards(hook, "s3://bench/day/", os.path.join(scratch, "listing"), write_to(lambda u: hook),
                         max_shards=1024, spool_dir=scratch)  # fmt: skip
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline, "shards": len(shards)}))


if __name__ == "__main__":
    main()
