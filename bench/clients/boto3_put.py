"""Child process: boto3's upload_file, timed around the call.

    boto3_put ENDPOINT SOURCE BUCKET KEY [--concurrency N --chunk-mib M] [--crt]

Options as for ``boto3_get``; none: the default TransferConfig.
"""

from __future__ import annotations

import argparse
import json
import time

import boto3

from bench.clients.boto3_get import options, transfer_config
from bench.common import vm_hwm


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("endpoint", "source", "bucket", "key"):
        parser.add_argument(name)
    args = options(parser)
    client = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1")
    client.list_objects_v2(Bucket=args.bucket, MaxKeys=1)
    baseline = vm_hwm()
    started = time.perf_counter()
    client.upload_file(args.source, args.bucket, args.key, Config=transfer_config(args))
    print(json.dumps({"seconds": time.perf_counter() - started, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
