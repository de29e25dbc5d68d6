"""W2: the W1 download through a cloud-like link: nginx capping each connection and delaying
each request (bench/cloud_link.py), in front of SeaweedFS for S3 and of a folder for HTTP.

    python -m bench.link [--size-mib 512] [--rounds 5] [--rate-mib 32] [--delay 0.02]
                         [--results-json PATH]

Here the number of connections decides the speed. Ferry runs at its defaults (the link chooses
its connections; the row's note gives the level it logged and how much of that many capped
connections it used) and with -j32; every peer at its defaults and with flags for a slow,
far link. Downloads are checked byte for byte after every run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import sys

from bench.cloud_link import start_cloud_link
from bench.common import BENCH_DIR, Contender, MiB, fresh_scratch, run_rounds, start_store
from bench.download import BUCKET, KEY, seed_object
from bench.results import Result, from_contenders, report
from bench.tools import FERRY, s3_downloaders

S3_TUNED = {
    "ferry cp": ["-j", "32"],
    "s5cmd cp": ["--concurrency", "32", "--part-size", "8"],
    "rclone copyto": ["--multi-thread-streams", "32", "--multi-thread-chunk-size", "8M"],
    "boto3 download_file": ["--concurrency", "32"],
}
CHOSEN = re.compile(r"connections: (?:settled at|at the maximum,|growing to|throttled by the store, down to) (\d+)")


def chosen_connections(c: Contender) -> list[int]:
    """The last level Ferry logged in each run ("connections: settled at N ...", "growing to N")."""
    return [int(m[-1]) for s in c.samples if (m := CHOSEN.findall(s.stderr))]


def annotate(rows: list[Result], contenders: list[Contender], rate_mib: int) -> None:
    """The note on Ferry's default row: the connections it chose and the share of what that many
    capped connections can carry."""
    levels = chosen_connections(contenders[0])
    if levels and rows[0].rate:
        level = int(statistics.median(levels))
        share = rows[0].rate / (level * rate_mib)
        rows[0].note = f"chose {level} connections (runs: {levels}); {share:.0%} of {level} x {rate_mib} MiB/s"
        fixed = next((r for r in rows if r.tool == f"ferry cp -j {level}" and r.rate), None)
        if fixed is not None:  # what that many connections carried on this machine, from the start
            rows[0].note += f", {rows[0].rate / fixed.rate:.0%} of ferry -j {level}"
    elif rows[0].rate:
        rows[0].note = "no level logged: the transfer ended within the controller's first window"


def run(size_mib: int, rounds: int, rate_mib: int, delay: float) -> list[Result]:
    size = size_mib * MiB
    scratch = fresh_scratch()
    workdir = os.path.join(BENCH_DIR, "w2")
    shutil.rmtree(workdir, ignore_errors=True)
    proc, endpoint = start_store(os.path.join(workdir, "seaweedfs"))
    nginx = None
    try:
        from ferry_provider.hooks.s3_store import S3Store

        hook = S3Store()
        hook.client.create_bucket(Bucket=BUCKET)
        print(f"W2: seeding a {size_mib} MiB object ...", flush=True)
        expected = seed_object(hook, size, "crc32c")
        files = os.path.join(scratch, "files")
        os.makedirs(files)
        hook.client.download_file(BUCKET, KEY, os.path.join(files, KEY))  # the same bytes for HTTP
        s3_port = int(endpoint.url.rsplit(":", 1)[1])
        nginx, s3_url, http_url = start_cloud_link(os.path.join(workdir, "nginx"), s3_port, files, rate_mib, delay)
        dest = os.path.join(scratch, "out.bin")
        s3 = s3_downloaders(s3_url, endpoint, BUCKET, KEY, dest, S3_TUNED)
        http = [
            Contender("ferry cp", [FERRY, "cp", f"{http_url}/{KEY}", dest]),
            Contender("ferry cp -j 32", [FERRY, "cp", "-j", "32", f"{http_url}/{KEY}", dest]),
            Contender("aria2c (defaults)", ["aria2c", "-q", "-d", scratch, "-o", "out.bin", f"{http_url}/{KEY}"]),
            Contender(
                "aria2c -x16 -s16 -k1M",
                ["aria2c", "-q", "-x16", "-s16", "-k1M", "-d", scratch, "-o", "out.bin", f"{http_url}/{KEY}"],
            ),
        ]

        def check(c: Contender) -> None:
            with open(dest, "rb") as f:
                if hashlib.file_digest(f, "sha256").hexdigest() != expected:
                    raise RuntimeError(f"{c.name} produced different bytes")
            os.unlink(dest)

        title = f"{size_mib} MiB, {rate_mib} MiB/s per connection, {delay * 1000:.0f} ms per request"
        print(f"\nW2 S3 download through the link: {title}", flush=True)
        run_rounds(s3, rounds, after_each=check)
        print(f"\nW2 HTTP download through the link: {title}", flush=True)
        run_rounds(http, rounds, after_each=check)
        s3_rows = from_contenders(f"W2 S3 download {size_mib} MiB, cloud-like link", s3, size_mib, "MiB/s")
        http_rows = from_contenders(f"W2 HTTP download {size_mib} MiB, cloud-like link", http, size_mib, "MiB/s")
        annotate(s3_rows, s3, rate_mib)
        annotate(http_rows, http, rate_mib)
        return s3_rows + http_rows
    finally:
        if nginx is not None:
            nginx.stop(grace=5)
        proc.stop(grace=5)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate-mib", type=int, default=32, help="the cap of one connection")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds before each request is served")
    parser.add_argument("--results-json", default=None)
    args = parser.parse_args()
    rows = run(args.size_mib, args.rounds, args.rate_mib, args.delay)
    report(rows, args.results_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
