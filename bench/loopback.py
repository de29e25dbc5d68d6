"""W1: one 1 GiB object downloaded and uploaded on loopback (SeaweedFS, tmpfs), Ferry and peers.

    python -m bench.loopback [--size-mib 1024] [--rounds 5] [--results-json PATH]

Downloads are checked byte for byte (SHA-256) after every run; uploads go to a new key each run
and are removed after it. Two ceilings frame the tools: one curl stream and parallel raw ranged
GETs that discard the bytes (what the server delivers), and parallel raw PUTs (what it ingests).
Uploads run the peers at their defaults only: tuned flags gained nothing here (the server's
ingest, the raw-PUT ceiling, bounds them all; measured in the first full run, 2026-11-24).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys

from bench.common import BENCH_DIR, Contender, MiB, fresh_scratch, run_rounds, start_store, stop_store
from bench.copy import Server
from bench.download import BUCKET, KEY, seed_object
from bench.results import Result, from_contenders, report
from bench.tools import PY, s3_downloaders, s3_uploaders

DOWNLOAD_TUNED = {
    "s5cmd cp": ["--concurrency", "8", "--part-size", "128"],
    "rclone copyto": ["--multi-thread-streams", "8", "--multi-thread-chunk-size", "128M"],
    "boto3 download_file": ["--concurrency", "8", "--chunk-mib", "128"],
}


# s3transfer's CRT client takes a cross-process lock, a folder awscrt puts in /tmp whatever TMPDIR
# says; the suite removes it when it was not there before.
CRT_LOCK = "/tmp/aws_crt_cross_process_lock"


UPLOADS_PER_VACUUM = 8  # deleted uploads left on SeaweedFS's disk before it is vacuumed


def run(size_mib: int, rounds: int) -> list[Result]:
    size = size_mib * MiB
    crt_lock_was_there = os.path.exists(CRT_LOCK)
    scratch = fresh_scratch()
    workdir = os.path.join(BENCH_DIR, "seaweedfs-w1")
    proc, endpoint = start_store(workdir)
    try:
        from ferry_provider.hooks.s3_store import S3Store

        hook = S3Store()
        hook.client.create_bucket(Bucket=BUCKET)
        server = Server(proc, endpoint, workdir)
        print(f"W1: seeding a {size_mib} MiB object ...", flush=True)
        expected = seed_object(hook, size, "crc32c")
        dest = os.path.join(scratch, "out.bin")
        down = s3_downloaders(endpoint.url, endpoint, BUCKET, KEY, dest, DOWNLOAD_TUNED)
        down.append(
            Contender(
                "boto3 download_file, CRT client",
                [PY, "-m", "bench.clients.boto3_get", endpoint.url, BUCKET, KEY, dest, "--crt"],
            )
        )
        down += [
            Contender(
                "curl, one stream, bytes discarded",
                [PY, "-m", "bench.clients.curl_stream", endpoint.url, BUCKET, KEY],
                reports_own_time=True,
                ceiling=True,
            ),
            Contender(
                "8 ranged GETs, bytes discarded",
                [PY, "-m", "bench.clients.null_get", endpoint.url, BUCKET, KEY, "8"],
                reports_own_time=True,
                ceiling=True,
            ),
        ]

        def check_download(c: Contender) -> None:
            if c.ceiling:
                return
            with open(dest, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != expected:
                    raise RuntimeError(f"{c.name} produced different bytes")
            os.unlink(dest)

        print(f"\nW1 download, {size_mib} MiB, SeaweedFS -> tmpfs", flush=True)
        run_rounds(down, rounds, after_each=check_download)

        source = os.path.join(scratch, "source.bin")
        with open(source, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(MiB))
        up = s3_uploaders(endpoint.url, endpoint, source, BUCKET, {})
        up.append(
            Contender(
                "boto3 upload_file, CRT client",
                [PY, "-m", "bench.clients.boto3_put", endpoint.url, source, BUCKET, "up/crt.bin", "--crt"],
            )
        )
        up.append(
            Contender(
                "8 raw PUTs of one part each",
                [PY, "-m", "bench.clients.raw_puts", endpoint.url, source, BUCKET, "8"],
                reports_own_time=True,
                ceiling=True,
            )
        )

        deleted = [0]  # bytes of uploads deleted since the last vacuum

        def check_upload(c: Contender) -> None:
            prefix = "raw/" if c.ceiling else "up/"
            listed = hook.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
            if not c.ceiling and [o["Size"] for o in listed] != [size]:
                raise RuntimeError(f"{c.name} left {[(o['Key'], o['Size']) for o in listed]} under up/")
            for o in listed:
                hook.client.delete_object(Bucket=BUCKET, Key=o["Key"])
                deleted[0] += o["Size"]
            # Or every run's gigabyte stays on disk until SeaweedFS's own vacuum. Each vacuum
            # takes about 5 s: after every upload it was 125 s of the suite, so once per 8 GiB.
            if deleted[0] >= UPLOADS_PER_VACUUM * size:
                server.vacuum()
                deleted[0] = 0

        print(f"\nW1 upload, {size_mib} MiB, tmpfs -> SeaweedFS", flush=True)
        run_rounds(up, rounds, after_each=check_upload)
        return from_contenders(f"W1 download {size_mib} MiB, loopback", down, size_mib, "MiB/s") + from_contenders(
            f"W1 upload {size_mib} MiB, loopback", up, size_mib, "MiB/s"
        )
    finally:
        stop_store(proc, workdir)
        shutil.rmtree(scratch, ignore_errors=True)
        if not crt_lock_was_there and os.path.exists(CRT_LOCK):
            shutil.rmtree(CRT_LOCK, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results-json", default=None)
    args = parser.parse_args()
    rows = run(args.size_mib, args.rounds)
    report(rows, args.results_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
