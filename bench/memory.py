"""W5: Ferry's peak memory at 1 GiB and at 8 GiB, and its start-up before the first byte.

    python -m bench.memory [--sizes-mib 1024 8192] [--rounds 5] [--results-json PATH]

``ferry cp`` downloads each object to tmpfs (checked by size and CRC32C: Ferry verifies against
the stored full-object value, and the file's own CRC32C is recomputed here); peak RSS is the
whole process's high-water mark. Memory must not grow with the object: buffers are per
connection, not per byte. Start-up: ``ferry cp`` of a one-byte object, whole process (import,
HEAD, GET, verify, rename), against s5cmd doing the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from bench.common import BENCH_DIR, Contender, MiB, fresh_scratch, run_rounds, start_store, stop_store
from bench.download import BUCKET, seed_crc32c
from bench.results import Result, from_contenders, report
from bench.tools import s3_downloaders


def run(sizes_mib: list[int], rounds: int) -> list[Result]:
    from ferry_provider.transfer import checksums

    scratch = fresh_scratch()
    workdir = os.path.join(BENCH_DIR, "seaweedfs-w5")
    proc, endpoint = start_store(workdir)
    rows: list[Result] = []
    try:
        from ferry_provider.hooks.s3_store import S3Store

        hook = S3Store()
        hook.client.create_bucket(Bucket=BUCKET)
        hook.put(f"s3://{BUCKET}/one-byte", b"x")
        dest = os.path.join(scratch, "out.bin")
        startup = s3_downloaders(endpoint.url, endpoint, BUCKET, "one-byte", dest, {})[:2]
        print("\nW5 start-up: ferry cp and s5cmd cp of a one-byte object", flush=True)
        run_rounds(startup, rounds, after_each=lambda c: os.unlink(dest))
        rows += from_contenders("W5 start-up: a one-byte download, whole process", startup, 1, "runs/s")
        for size_mib in sizes_mib:
            key = f"w5-{size_mib}.bin"
            print(f"\nW5: seeding {size_mib} MiB ...", flush=True)
            crc = seed_crc32c(hook, key, size_mib * MiB)[1]
            ferry = s3_downloaders(endpoint.url, endpoint, BUCKET, key, dest, {})[:1]

            def check(c: Contender, size: int = size_mib * MiB, want: int = crc) -> None:
                got = checksums.file_digest(dest, "crc32c")
                if os.path.getsize(dest) != size or got != checksums.hex32(want):
                    raise RuntimeError(f"{c.name} produced different bytes")
                os.unlink(dest)

            run_rounds(ferry, rounds, after_each=check)
            rows += from_contenders(f"W5 memory: download {size_mib} MiB", ferry, size_mib, "MiB/s")
            hook.delete(f"s3://{BUCKET}/{key}")
        return rows
    finally:
        stop_store(proc, workdir)
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results-json", default=None)
    args = parser.parse_args()
    rows = run(args.sizes_mib, args.rounds)
    report(rows, args.results_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
