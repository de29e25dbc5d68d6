"""`make bench`: every workload, Ferry and its peers alternated on the same servers, one table.

    python -m bench.suite [--rounds 5] [--only W1 W2 ...] [--quick]

Runs W1 (1 GiB download and upload on loopback), W2 (the download through a cloud-like link,
nginx capping each connection and delaying each request), W3 (5,000 x 64 KiB objects both ways,
and planning shards for a million keys), W4 (6 GiB server-side copy, 3 rounds), W4x (1 GiB
cross-store copy), W5 (peak memory at 1 GiB and 8 GiB, start-up) and W6 (hashing), each in its own
process, one after the other (never two at once: they would share two cores). Prints one table,
writes bench/RESULTS.md with the machine's description and bench/results.png.
``--quick`` shrinks every object and count, to try the suite in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from bench.common import BENCH_DIR
from bench.results import Result, plot, print_results, write_markdown

HERE = os.path.dirname(os.path.abspath(__file__))


def workloads(rounds: int, quick: bool) -> dict[str, list[str]]:
    r = ["--rounds", str(rounds)]
    if quick:
        return {
            "W1": ["bench.loopback", "--size-mib", "128", *r],
            "W2": ["bench.link", "--size-mib", "128", "--objects", "200", *r],
            "W3": ["bench.bulk", "--objects", "300", "--plan-keys", "20000", "--no-boto3-loop", *r],
            "W4": ["bench.copy", "--size-mib", "640", "--workloads", "server-side", "--parallelism", "4",
                   "--part-mib", "--no-net", "--cli-only", *r],
            "W4x": ["bench.copy", "--cross-size-mib", "128", "--workloads", "cross-store", "--parallelism", "4",
                    "--no-net", "--cli-only", *r],
            "W5": ["bench.memory", "--sizes-mib", "128", "512", *r],
            "W6": ["bench.hashing", "--mib", "64", *r],
        }  # fmt: skip
    return {
        "W1": ["bench.loopback", *r],
        "W2": ["bench.link", *r],
        "W3": ["bench.bulk", "--no-boto3-loop", *r],
        # 6 GiB server-side copies take 15-40 s each here: three rounds of them keep the suite
        # within half an hour.
        "W4": ["bench.copy", "--workloads", "server-side", "--parallelism", "4", "--part-mib", "--no-net",
               "--cli-only", "--rounds", str(min(rounds, 3))],
        "W4x": ["bench.copy", "--workloads", "cross-store", "--parallelism", "4", "--no-net", "--cli-only", *r],
        "W5": ["bench.memory", *r],
        "W6": ["bench.hashing", *r],
    }  # fmt: skip


def versions() -> str:
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not installed"

    import boto3
    import botocore

    from tests.servers.seaweedfs import weed_binary

    bin_dir = os.path.dirname(sys.executable)
    return ", ".join(
        [
            f"SeaweedFS {first_line([weed_binary(), 'version'])}",
            f"s5cmd {first_line([os.path.join(bin_dir, 's5cmd'), 'version'])}",
            first_line([os.path.join(bin_dir, "rclone"), "version"]),
            f"boto3 {boto3.__version__} / botocore {botocore.__version__}",
            first_line(["aria2c", "--version"]),
            first_line(["nginx", "-v"]),
        ]
    )


PREAMBLE = """
Every client ran against the same local servers in the same run, alternating order every round;
figures are medians. Clients are timed as whole processes, start-up included (as a command in an
Airflow task meets them), except rows whose note says "the call only". **Ferry is**: Ferry's rate
at its defaults divided by the tool's (above 1: Ferry is faster). **[ceiling]** rows are not
tools: what the server or link delivers at all (bytes discarded, no checksum, no file).
**CPU s**: user + system seconds of the whole process. Peers run at their documented defaults
and, separately, with flags chosen for the workload (the row names them). Downloads are checked
byte for byte after every run; uploads and copies go to a new key every run (no tool can skip a
run as identical). SeaweedFS keeps its data on disk; downloads go to tmpfs.
Versions: {versions}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="+", default=None, help="workloads to run, e.g. W1 W2")
    parser.add_argument("--quick", action="store_true", help="small objects, to try the suite")
    args = parser.parse_args()
    out_dir = os.path.join(BENCH_DIR, "results")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows: list[Result] = []
    took = []
    started = time.monotonic()
    for name, argv in workloads(args.rounds, args.quick).items():
        if args.only and name not in args.only:
            continue
        path = os.path.join(out_dir, f"{name}.json")
        print(f"\n===== {name}: python -m {' '.join(argv)}", flush=True)
        begun = time.monotonic()
        done = subprocess.run([sys.executable, "-m", *argv, "--results-json", path], cwd=os.path.dirname(HERE))
        took.append(f"{name} {time.monotonic() - begun:.0f} s")
        if done.returncode != 0 or not os.path.exists(path):
            print(f"{name} failed (exit {done.returncode}); the other workloads go on", flush=True)
            continue
        with open(path) as f:
            rows += [Result(**row) for row in json.load(f)]
    shutil.rmtree(out_dir, ignore_errors=True)
    print_results(rows)
    total = f"{time.monotonic() - started:.0f} s in all ({', '.join(took)})"
    print(total)
    preamble = PREAMBLE.format(versions=versions()) + f"\nThe suite took {total}."
    if args.quick:
        preamble += " **--quick**: small objects, figures not comparable with a full run."
    write_markdown(rows, os.path.join(HERE, "RESULTS.md"), preamble, commit)
    plot(rows, os.path.join(HERE, "results.png"))
    print("wrote bench/RESULTS.md and bench/results.png")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
