"""Download benchmark: one object on a local SeaweedFS, fetched to tmpfs by Ferry and its peers.

    python -m bench.download [--size-mib 1024] [--rounds 3] [--parallelism 8 4]

Ferry (CRC32C validation on), boto3 download_file (defaults), s5cmd cp and rclone copyto run
against the same server in the same run, alternated, and the medians and ratios are printed
with each client's peak RSS. Not a test: it asserts only that every client produced the bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys

from bench.common import BENCH_DIR, Contender, MiB, credentials_env, fresh_scratch, print_table, run_rounds
from tests.servers.seaweedfs import start_seaweedfs

BUCKET = "ferry-bench"
KEY = "big.bin"


def seed_object(hook: object, scratch: str, size: int) -> str:
    """Write ``size`` random bytes to SeaweedFS as one multipart object with a full-object CRC32C."""
    from ferry_provider.transfer import checksums

    part = 64 * MiB
    url = f"s3://{BUCKET}/{KEY}"
    upload_id = hook.create_multipart(url)  # type: ignore[attr-defined]
    parts, crc, digest = [], 0, hashlib.sha256()
    for number, offset in enumerate(range(0, size, part), start=1):
        chunk = os.urandom(min(part, size - offset))
        crc = checksums.crc32c(chunk, crc)
        digest.update(chunk)
        parts.append(
            hook.upload_part(
                url,
                upload_id,
                number,
                chunk,
                size=len(chunk),  # type: ignore[attr-defined]
                crc32c=checksums.hex32(checksums.crc32c(chunk)),
            )
        )
    hook.complete_multipart(url, upload_id, parts, crc32c=checksums.hex32(crc), size=size)  # type: ignore[attr-defined]
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--only-ferry", action="store_true", help="skip the peers (RSS checks on big objects)")
    args = parser.parse_args()
    size = args.size_mib * MiB
    scratch = fresh_scratch()
    shutil.rmtree(os.path.join(BENCH_DIR, "seaweedfs"), ignore_errors=True)
    os.environ.setdefault("AIRFLOW_HOME", os.path.join(BENCH_DIR, "airflow-home"))
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    proc, endpoint = start_seaweedfs(os.path.join(BENCH_DIR, "seaweedfs"))
    try:
        os.environ["AIRFLOW_CONN_FERRY_BENCH_S3"] = endpoint.connection_json()
        creds = credentials_env(endpoint.access_key, endpoint.secret_key)
        from ferry_provider.hooks.s3 import FerryS3Hook

        hook = FerryS3Hook("ferry_bench_s3")
        hook.client.create_bucket(Bucket=BUCKET)
        print(f"seeding a {args.size_mib} MiB object on SeaweedFS ...", flush=True)
        expected = seed_object(hook, scratch, size)
        dest = os.path.join(scratch, "out.bin")
        bin_dir = os.path.dirname(sys.executable)
        contenders = [
            Contender(
                f"ferry -j{p} (crc32c verified)",
                [
                    sys.executable,
                    "-m",
                    "bench.clients.ferry_get",
                    f"s3://{BUCKET}/{KEY}",
                    dest,
                    "ferry_bench_s3",
                    str(p),
                ],
                reports_own_time=True,
            )
            for p in args.parallelism
        ]
        if not args.only_ferry:
            contenders += [
                Contender(
                    "boto3 download_file",
                    [sys.executable, "-m", "bench.clients.boto3_get", endpoint.url, BUCKET, KEY, dest],
                    reports_own_time=True,
                    env=creds,
                ),
                Contender(
                    "s5cmd cp",
                    [
                        os.path.join(bin_dir, "s5cmd"),
                        "--endpoint-url",
                        endpoint.url,
                        "cp",
                        f"s3://{BUCKET}/{KEY}",
                        dest,
                    ],
                    env=creds,
                ),
                Contender(
                    "rclone copyto",
                    [
                        os.path.join(bin_dir, "rclone"),
                        "--config",
                        os.devnull,
                        "copyto",
                        f":s3,provider=Other,endpoint='{endpoint.url}',access_key_id={endpoint.access_key},"
                        f"secret_access_key='{endpoint.secret_key}':{BUCKET}/{KEY}",
                        dest,
                    ],
                ),
            ]

        def check_and_remove(c: Contender) -> None:
            with open(dest, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != expected:
                    raise RuntimeError(f"{c.name} produced different bytes")
            os.unlink(dest)

        run_rounds(contenders, args.rounds, after_each=check_and_remove)
        print_table(contenders, size, contenders[0].name)
    finally:
        proc.stop(grace=5)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
