"""Child process: boto3's upload_file with its default TransferConfig, timed around the call."""

from __future__ import annotations

import json
import sys
import time

import boto3

from bench.common import vm_hwm


def main() -> None:
    endpoint, source, bucket, key = sys.argv[1:5]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    baseline = vm_hwm()
    started = time.perf_counter()
    client.upload_file(source, bucket, key)
    print(json.dumps({"seconds": time.perf_counter() - started, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
