"""Child process: a cross-store copy as Airflow's transfer operators do it: boto3 download_file
to a local temp file, then upload_file to the other store (default TransferConfig both ways).

    BENCH_SRC='{"url":..,"key":..,"secret":..}' BENCH_DST='{...}' \\
        python -m bench.clients.boto3_relay SRC_BUCKET SRC_KEY DST_BUCKET DST_KEY TEMP_FILE

Timed around the download, the upload and the temp file's removal.
"""

from __future__ import annotations

import json
import os
import sys
import time

import boto3

from bench.clients.ferry_copy import cpu_seconds
from bench.common import vm_hwm


def client_for(variable: str) -> object:
    side = json.loads(os.environ[variable])
    return boto3.client(
        "s3",
        endpoint_url=side["url"],
        aws_access_key_id=side["key"],
        aws_secret_access_key=side["secret"],
        region_name="us-east-1",
    )


def main() -> None:
    src_bucket, src_key, dst_bucket, dst_key, temp = sys.argv[1:6]
    src, dst = client_for("BENCH_SRC"), client_for("BENCH_DST")
    src.head_object(Bucket=src_bucket, Key=src_key)  # type: ignore[attr-defined]
    dst.list_objects_v2(Bucket=dst_bucket, MaxKeys=1)  # type: ignore[attr-defined]
    baseline = vm_hwm()
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    try:
        src.download_file(src_bucket, src_key, temp)  # type: ignore[attr-defined]
        dst.upload_file(temp, dst_bucket, dst_key)  # type: ignore[attr-defined]
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "baseline_rss": baseline, "cpu": cpu_seconds() - cpu0}))


if __name__ == "__main__":
    main()
