"""W2: the W1 download through a cloud-like link: nginx capping each connection and delaying
each request (bench/cloud_link.py), in front of SeaweedFS for S3 and of a folder for HTTP.

    python -m bench.link [--size-mib 512] [--rounds 5] [--rate-mib 32] [--delay 0.02]
                         [--objects 1000] [--bulk-rounds 3] [--results-json PATH]

Here the number of connections decides the speed. Ferry runs at its defaults (the link chooses
its connections; the row's note gives the level it logged and how much of that many capped
connections it used) and with -j32; every peer at its defaults and with flags for a slow,
far link. Then a bulk download of many small objects through the same link, where the round
trip, not the bytes, decides: Ferry at its defaults (the link chooses how many objects are in
flight) and at the fixed 16 it used before, s5cmd and rclone. Downloads are checked byte for
byte after every run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import re
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.cloud_link import start_cloud_link
from bench.common import BENCH_DIR, Contender, MiB, fresh_scratch, rclone_remote, run_rounds, s3_env, start_store
from bench.download import BUCKET, KEY, seed_object
from bench.results import Result, from_contenders, report
from bench.tools import FERRY, RCLONE, S5CMD, s3_downloaders
from tests.servers.seaweedfs import S3Endpoint

S3_TUNED = {
    "ferry cp": ["-j", "32"],
    "s5cmd cp": ["--concurrency", "32", "--part-size", "8"],
    "rclone copyto": ["--multi-thread-streams", "32", "--multi-thread-chunk-size", "8M"],
    "boto3 download_file": ["--concurrency", "32"],
}
LEVEL = r": (?:settled at|at the maximum,|growing to|throttled by the store, down to) (\d+)"
CHOSEN = re.compile("connections" + LEVEL)
CHOSEN_IN_FLIGHT = re.compile("objects in flight" + LEVEL)
BULK_KIB = 64


def chosen_connections(c: Contender, pattern: re.Pattern[str] = CHOSEN) -> list[int]:
    """The last level Ferry logged in each run ("connections: settled at N ...", "growing to N")."""
    return [int(m[-1]) for s in c.samples if (m := pattern.findall(s.stderr))]


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


def run_bulk(
    hook: Any, endpoint: S3Endpoint, s3_url: str, scratch: str, objects: int, rounds: int, title: str
) -> list[Result]:
    """``objects`` of 64 KiB downloaded through the link by Ferry and its peers."""
    payload = os.urandom(BULK_KIB << 10)
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: hook.client.put_object(Bucket=BUCKET, Key=f"many/o{i:05d}", Body=payload), range(objects)
            )
        )
    out = os.path.join(scratch, "many")
    state = os.path.join(scratch, "state")
    os.makedirs(state, exist_ok=True)
    env = {**s3_env(endpoint), "AWS_ENDPOINT_URL": s3_url}
    remote = rclone_remote("link", endpoint, s3_url)
    ferry = [FERRY, "cp", "-r", f"s3://{BUCKET}/many/", out + "/", "--state-dir", state]
    contenders = [
        Contender("ferry cp -r", ferry, env=env),
        Contender(
            "ferry cp -r --concurrency 16 (the level before it was chosen)", [*ferry, "--concurrency", "16"], env=env
        ),
        Contender(
            "s5cmd cp (256 workers)",
            [S5CMD, "--endpoint-url", s3_url, "cp", f"s3://{BUCKET}/many/*", out + "/"],
            env=env,
        ),
        Contender("rclone copy (defaults)", [RCLONE, "-q", "copy", f"link:{BUCKET}/many", out], env=remote),
        Contender(
            "rclone copy --transfers 64",
            [RCLONE, "-q", "copy", "--transfers", "64", f"link:{BUCKET}/many", out],
            env=remote,
        ),
    ]

    def check(c: Contender) -> None:
        names = os.listdir(out)
        if len(names) != objects or any(pathlib.Path(out, n).read_bytes() != payload for n in names):
            raise RuntimeError(f"{c.name} did not download the {objects} objects intact")
        shutil.rmtree(out)

    print(f"\nW2 S3 bulk download through the link: {objects} x {BULK_KIB} KiB; {title}", flush=True)
    run_rounds(contenders, rounds, after_each=check)
    rows = from_contenders(
        f"W2 S3 bulk download {objects} x {BULK_KIB} KiB, cloud-like link", contenders, objects, "objects/s"
    )
    levels = chosen_connections(contenders[0], CHOSEN_IN_FLIGHT)
    if levels and rows[0].rate:
        rows[0].note = f"chose {int(statistics.median(levels))} objects in flight (runs: {levels})"
    return rows


def run(size_mib: int, rounds: int, rate_mib: int, delay: float, objects: int, bulk_rounds: int) -> list[Result]:
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
        bulk_rows = run_bulk(hook, endpoint, s3_url, scratch, objects, bulk_rounds, title)
        return s3_rows + http_rows + bulk_rows
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
    parser.add_argument("--objects", type=int, default=1000, help="the bulk download's 64 KiB objects")
    parser.add_argument("--bulk-rounds", type=int, default=3)
    parser.add_argument("--results-json", default=None)
    args = parser.parse_args()
    rows = run(args.size_mib, args.rounds, args.rate_mib, args.delay, args.objects, args.bulk_rounds)
    report(rows, args.results_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
