"""Child process: the server's ingest ceiling, N parallel raw PutObject calls of one part each.

No checksums, no multipart bookkeeping: what the store can take, for comparing uploaders with.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from bench.common import vm_hwm


def main() -> None:
    endpoint, source, bucket, parallelism = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    size = os.path.getsize(source)
    part = -(-size // (parallelism * 4))
    config = Config(max_pool_connections=parallelism, request_checksum_calculation="when_required")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
    fd = os.open(source, os.O_RDONLY)
    baseline = vm_hwm()

    def put(offset: int) -> None:
        body = os.pread(fd, min(part, size - offset), offset)
        client.put_object(Bucket=bucket, Key=f"raw/{offset}", Body=body)

    started = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        list(pool.map(put, range(0, size, part)))
    print(json.dumps({"seconds": time.perf_counter() - started, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
