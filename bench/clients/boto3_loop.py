"""Child process: a plain boto3 loop over a prefix (list, then one request per object), the way a
DAG task without a transfer tool does it. argv: down ENDPOINT BUCKET PREFIX DEST | up ENDPOINT
BUCKET PREFIX SRC_FOLDER. Prints {"seconds": .., "baseline_rss": ..}."""

from __future__ import annotations

import json
import os
import sys
import time

import boto3

from bench.common import vm_hwm


def main() -> None:
    direction, endpoint, bucket, prefix, local = sys.argv[1:6]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.list_buckets()  # connect and sign once before the clock starts
    baseline = vm_hwm()
    started = time.perf_counter()
    if direction == "down":
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = os.path.join(local, item["Key"][len(prefix) :])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                client.download_file(bucket, item["Key"], path)
    else:
        for folder, _, files in os.walk(local):
            for name in files:
                path = os.path.join(folder, name)
                client.upload_file(path, bucket, prefix + os.path.relpath(path, local))
    print(json.dumps({"seconds": time.perf_counter() - started, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
