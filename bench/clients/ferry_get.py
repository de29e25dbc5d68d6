"""Child process: one Ferry download, timed around the engine call only."""

from __future__ import annotations

import json
import sys
import time

from bench.common import vm_hwm
from ferry_provider.hooks.factory import store_for
from ferry_provider.transfer.download import DownloadOptions, download


def main() -> None:
    source, dest, parallelism = sys.argv[1], sys.argv[2], int(sys.argv[3])
    hook = store_for(source, max_connections=parallelism)  # bare store: endpoint and keys from AWS_*
    hook.head(source)  # connection set-up and credentials, outside the timed part as for boto3
    baseline = vm_hwm()
    started = time.perf_counter()
    row = download(hook, source, dest, DownloadOptions(parallelism=parallelism, skip_identical=False))
    seconds = time.perf_counter() - started
    assert row.result == "OK" and row.description.startswith("verified size and "), row  # a digest, not size only
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
