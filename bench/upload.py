"""Upload benchmark: one file on tmpfs to a local SeaweedFS, by Ferry and its peers.

    python -m bench.upload [--size-mib 1024] [--rounds 3] [--parallelism 4 8]

Ferry (per-part CRC32C checked by the server, full-object CRC32C stored), boto3 upload_file
(defaults) and s5cmd cp run against the same server in the same run, alternated; "raw parallel
PUTs" shows what the server can ingest at all. Medians, ratios and peak RSS are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from bench.common import BENCH_DIR, Contender, MiB, fresh_scratch, print_table, run_rounds, s3_env
from tests.servers.seaweedfs import start_seaweedfs

BUCKET = "ferry-bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    size = args.size_mib * MiB
    scratch = fresh_scratch()
    shutil.rmtree(os.path.join(BENCH_DIR, "seaweedfs-up"), ignore_errors=True)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    source = os.path.join(scratch, "source.bin")
    with open(source, "wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(MiB))
    proc, endpoint = start_seaweedfs(os.path.join(BENCH_DIR, "seaweedfs-up"))
    try:
        os.environ.update(s3_env(endpoint))  # inherited by every client
        from ferry_provider.hooks.s3_store import S3Store

        hook = S3Store()
        hook.client.create_bucket(Bucket=BUCKET)
        # SeaweedFS grows volumes for a bucket on its first writes (seconds): pay that before
        # measuring, or the first client of round 1 carries it.
        for i in range(8):
            hook.put(f"s3://{BUCKET}/warm-up/{i}", os.urandom(8 * MiB))
        py = sys.executable
        contenders = [
            Contender(
                f"ferry -j{p} (crc32c stored)",
                [py, "-m", "bench.clients.ferry_put", source, f"s3://{BUCKET}/ferry-{p}.bin", str(p)],
                reports_own_time=True,
            )
            for p in args.parallelism
        ]
        contenders += [
            Contender(
                "boto3 upload_file",
                [py, "-m", "bench.clients.boto3_put", endpoint.url, source, BUCKET, "boto3.bin"],
                reports_own_time=True,
            ),
            Contender(
                "s5cmd cp",
                [
                    os.path.join(os.path.dirname(py), "s5cmd"),
                    "--endpoint-url",
                    endpoint.url,
                    "cp",
                    source,
                    f"s3://{BUCKET}/s5cmd.bin",
                ],
            ),
            Contender(
                f"raw parallel PUTs x{max(args.parallelism)}",
                [py, "-m", "bench.clients.raw_puts", endpoint.url, source, BUCKET, str(max(args.parallelism))],
                reports_own_time=True,
            ),
        ]
        run_rounds(contenders, args.rounds)
        print_table(contenders, size, contenders[0].name)
    finally:
        proc.stop(grace=5)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
