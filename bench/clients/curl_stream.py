"""Child process: one presigned GET through curl, bytes discarded: what one connection carries.

    curl_stream ENDPOINT BUCKET KEY

The URL is signed before the clock starts; the time is curl's alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import boto3

from bench.common import vm_hwm


def main() -> None:
    endpoint, bucket, key = sys.argv[1:4]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    baseline = vm_hwm()
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", "/dev/null", url], check=True)
    print(json.dumps({"seconds": time.perf_counter() - started, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
