"""Child process: boto3's download_file, timed around the call.

    boto3_get ENDPOINT BUCKET KEY DEST [--concurrency N --chunk-mib M] [--crt]

Without options: the default TransferConfig (10 threads, 8 MiB parts). ``--crt``: the CRT
transfer client (``preferred_transfer_client="crt"``), where awscrt is installed.
"""

from __future__ import annotations

import argparse
import json
import time

import boto3
from boto3.s3.transfer import TransferConfig

from bench.common import vm_hwm


def transfer_config(args: argparse.Namespace) -> TransferConfig:
    settings: dict[str, object] = {}
    if args.concurrency:
        settings["max_concurrency"] = args.concurrency
    if args.chunk_mib:
        settings["multipart_chunksize"] = args.chunk_mib << 20
    if args.crt:
        settings["preferred_transfer_client"] = "crt"
    return TransferConfig(**settings)


def options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    parser.add_argument("--concurrency", type=int, default=0)
    parser.add_argument("--chunk-mib", type=int, default=0)
    parser.add_argument("--crt", action="store_true")
    return parser.parse_args()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("endpoint", "bucket", "key", "dest"):
        parser.add_argument(name)
    args = options(parser)
    client = boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1")
    client.head_object(Bucket=args.bucket, Key=args.key)
    baseline = vm_hwm()
    started = time.perf_counter()
    client.download_file(args.bucket, args.key, args.dest, Config=transfer_config(args))
    print(json.dumps({"seconds": time.perf_counter() - started, "baseline_rss": baseline}))


if __name__ == "__main__":
    main()
