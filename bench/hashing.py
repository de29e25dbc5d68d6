"""W6: the throughput of the hashing Ferry's data path actually uses, one core, in process.

    python -m bench.hashing [--mib 512] [--rounds 5] [--results-json PATH]

CRC32C through ``transfer.checksums.crc32c`` (awscrt's hardware CRC when installed, else
google-crc32c), CRC32 (zlib), MD5 and SHA-256 (hashlib), each over one buffer in 8 MiB slices
as a part's bytes arrive, and a CRC32C combine of 1,024 part values (what a 64 GiB object in
64 MiB parts costs at the end). Medians of ``--rounds``; no server.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable

from bench.common import MiB, vm_hwm
from bench.results import Result, report

SLICE = 8 * MiB


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``rounds`` calls."""
    walls, cpus = [], []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def run(mib: int, rounds: int) -> list[Result]:
    from ferry_provider.transfer import checksums

    data = memoryview(os.urandom(mib * MiB))
    slices = [data[i : i + SLICE] for i in range(0, len(data), SLICE)]

    def crc32c() -> int:
        crc = 0
        for s in slices:
            crc = checksums.crc32c(s, crc)
        return crc

    def crc32() -> int:
        crc = 0
        for s in slices:
            crc = zlib.crc32(s, crc)
        return crc

    def digest(name: str) -> Callable[[], str]:
        def run_digest() -> str:
            h = hashlib.new(name)
            for s in slices:
                h.update(s)
            return h.hexdigest()

        return run_digest

    parts = [(checksums.crc32c(os.urandom(64)), 64 * MiB) for _ in range(1024)]
    cases: list[tuple[str, Callable[[], object], float, str]] = [
        ("crc32c (checksums.crc32c: the download and upload path)", crc32c, mib, "MiB/s"),
        ("crc32 (zlib)", crc32, mib, "MiB/s"),
        ("md5 (hashlib)", digest("md5"), mib, "MiB/s"),
        ("sha256 (hashlib)", digest("sha256"), mib, "MiB/s"),
        ("crc32c combine of 1,024 parts", lambda: checksums.combine_all(parts), 1024, "parts/s"),
    ]
    rows = []
    for name, fn, amount, unit in cases:
        wall, cpu = timed(fn, rounds)
        print(f"W6 {name}: {amount / wall:.0f} {unit}", flush=True)
        workload = "W6 hashing, one core" if unit == "MiB/s" else "W6 CRC32C combine, one core"
        rows.append(Result(workload, name, wall, amount / wall, unit, vm_hwm() / MiB, cpu, rounds))
    base = rows[0].rate
    for row in rows[1:4]:
        row.ratio = base / row.rate if base and row.rate else None
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results-json", default=None)
    args = parser.parse_args()
    rows = run(args.mib, args.rounds)
    report(rows, args.results_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
