"""Child process: one Ferry upload, timed around the engine call only."""

from __future__ import annotations

import json
import sys
import time

from bench.common import vm_hwm
from ferry_provider.hooks.factory import store_for
from ferry_provider.transfer.upload import UploadOptions, upload


def main() -> None:
    source, dest, parallelism = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hook = store_for(dest, max_connections=parallelism)  # bare store: endpoint and keys from AWS_*
    # Client set-up, outside the timed part as for boto3's client.
    next(iter(hook.list(dest.rsplit("/", 1)[0] + "/", page_size=1)), None)
    baseline = vm_hwm()
    started = time.perf_counter()
    row = upload(hook, source, dest, UploadOptions(parallelism=parallelism, skip_identical=False))
    seconds = time.perf_counter() - started
    assert row.result == "OK" and "stored crc32c verified" in row.description, row
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
