"""Bulk benchmark: many small objects both ways, and planning a listing of a million keys.

    python -m bench.bulk [--objects 5000] [--size-kib 64] [--rounds 3] [--plan-keys 1000000]

W3: N objects of S KiB from a local SeaweedFS to tmpfs and back, by ``ferry cp -r`` (defaults),
``s5cmd cp`` with a wildcard (256 workers by default), ``rclone copy`` (defaults, and
``--transfers 64``) and a plain boto3 loop; every run writes to a fresh destination, so no tool's
skip-identical turns a rerun into a no-op. Tools are timed as whole processes (start-up included),
the boto3 loop as its transfer only. The download also has a floor row (clients/crt_floor, not a
tool): awscrt fetching, with Ferry's per-object checks and nothing else.
Then the shard planner on a generated listing: seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.common import (
    BENCH_DIR,
    SCRATCH,
    Contender,
    MiB,
    fresh_scratch,
    measure,
    rclone_remote,
    run_rounds,
    start_store,
    stop_store,
)
from bench.results import Result, from_contenders, report

BUCKET = "ferry-bulk-bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--size-kib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plan-keys", type=int, default=1_000_000)
    parser.add_argument("--results-json", default=None)
    parser.add_argument("--no-boto3-loop", action="store_true", help="leave out the slowest peer (the suite does)")
    args = parser.parse_args()
    report(run(args), args.results_json)
    return 0


def run(args: argparse.Namespace) -> list[Result]:
    scratch = fresh_scratch()
    data_dir = os.path.join(BENCH_DIR, "seaweedfs-bulk")
    proc, endpoint = start_store(data_dir)
    try:
        from ferry_provider.hooks.s3_store import S3Store

        hook = S3Store(max_connections=32)
        hook.client.create_bucket(Bucket=BUCKET)
        source = os.path.join(scratch, "source")
        payload = os.urandom(args.size_kib << 10)

        def seed(i: int) -> None:
            key = f"src/d{i % 10}/o{i:06d}.bin"
            hook.client.put_object(Bucket=BUCKET, Key=key, Body=payload)
            path = os.path.join(source, key[4:])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(payload)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(seed, range(args.objects)))
        bin_dir = os.path.dirname(sys.executable)
        ferry = os.path.join(bin_dir, "ferry")
        s5cmd = [os.path.join(bin_dir, "s5cmd"), "--endpoint-url", endpoint.url]
        rclone = [os.path.join(bin_dir, "rclone"), "--s3-no-check-bucket", "-q"]
        py = sys.executable
        remote = rclone_remote("swfs", endpoint)
        state = os.path.join(scratch, "state")
        os.makedirs(state)
        out = os.path.join(scratch, "out")

        down = [
            Contender("ferry cp -r", [ferry, "cp", "-r", f"s3://{BUCKET}/src/", out + "/", "-q", "--state-dir", state]),
            Contender("s5cmd cp (256 workers)", [*s5cmd, "cp", f"s3://{BUCKET}/src/*", out + "/"]),
            Contender("rclone copy (defaults)", [*rclone, "copy", f"swfs:{BUCKET}/src", out], env=remote),
            Contender(
                "rclone copy --transfers 64",
                [*rclone, "copy", "--transfers", "64", f"swfs:{BUCKET}/src", out],
                env=remote,
            ),
            # Not a tool: how far a Python path with Ferry's per-object guarantees can go here.
            Contender(
                "python floor: awscrt + Ferry's checks, transfer only",
                [py, "-m", "bench.clients.crt_floor", endpoint.url, BUCKET, "src/", out],
                reports_own_time=True,
                ceiling=True,
            ),
        ]
        if not args.no_boto3_loop:
            down.append(
                Contender(
                    "boto3 loop",
                    [py, "-m", "bench.clients.boto3_loop", "down", endpoint.url, BUCKET, "src/", out],
                    reports_own_time=True,
                )
            )
        print(f"\nW3 download: {args.objects} x {args.size_kib} KiB, SeaweedFS -> tmpfs", flush=True)
        run_rounds(down, args.rounds, after_each=lambda c: shutil.rmtree(out, ignore_errors=True))

        dest = "up-{RUN}/"  # a fresh prefix every run: nothing for any tool to skip
        up = [
            Contender(
                "ferry cp -r", [ferry, "cp", "-r", source + "/", f"s3://{BUCKET}/{dest}", "-q", "--state-dir", state]
            ),
            Contender("s5cmd cp (256 workers)", [*s5cmd, "cp", source + "/", f"s3://{BUCKET}/{dest}"]),
            Contender("rclone copy (defaults)", [*rclone, "copy", source, f"swfs:{BUCKET}/{dest}"], env=remote),
            Contender(
                "rclone copy --transfers 64",
                [*rclone, "copy", "--transfers", "64", source, f"swfs:{BUCKET}/{dest}"],
                env=remote,
            ),
            Contender(
                "boto3 loop",
                [py, "-m", "bench.clients.boto3_loop", "up", endpoint.url, BUCKET, dest, source],
                reports_own_time=True,
            ),
        ][: 4 if args.no_boto3_loop else 5]
        print(f"\nW3 upload: {args.objects} x {args.size_kib} KiB, tmpfs -> SeaweedFS", flush=True)
        run_rounds(up, args.rounds)

        plan = Contender(
            f"planner, {args.plan_keys} keys",
            [py, "-m", "bench.clients.plan_million", str(args.plan_keys), scratch],
            reports_own_time=True,
        )
        plan.samples.append(measure(plan))
        sample = plan.samples[0]
        peak = sample.peak_rss / MiB
        print(f"\nplanning {args.plan_keys} keys into shards: {sample.seconds:.1f} s, peak RSS {peak:.0f} MiB")
        shape = f"{args.objects} x {args.size_kib} KiB"
        return (
            from_contenders(f"W3 bulk download {shape}", down, args.objects, "objects/s")
            + from_contenders(f"W3 bulk upload {shape}", up, args.objects, "objects/s")
            + from_contenders("W3 shard planning (no server)", [plan], args.plan_keys, "keys/s")
        )
    finally:
        stop_store(proc, data_dir)
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
