"""Child process: boto3's managed ``client.copy()`` (default TransferConfig: UploadPartCopy of
8 MiB parts, 10 threads, above 8 MiB) within one store, timed around the call."""

from __future__ import annotations

import json
import sys
import time

import boto3

from bench.clients.ferry_copy import cpu_seconds
from bench.common import vm_hwm


def main() -> None:
    endpoint, src_bucket, src_key, dst_bucket, dst_key = sys.argv[1:6]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")  # keys from AWS_*
    client.head_object(Bucket=src_bucket, Key=src_key)
    baseline = vm_hwm()
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    client.copy({"Bucket": src_bucket, "Key": src_key}, dst_bucket, dst_key)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline, "cpu": cpu_seconds() - cpu0}))


if __name__ == "__main__":
    main()
