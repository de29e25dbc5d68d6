"""Benchmark plumbing: child processes timed, and their peak RSS sampled from /proc."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.servers.process import ServerProcess
from tests.servers.seaweedfs import S3Endpoint, start_seaweedfs

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(HERE, ".bench")
SCRATCH = "/dev/shm/ferry-bench" if os.path.isdir("/dev/shm") else os.path.join(BENCH_DIR, "scratch")
MiB = 1 << 20


@dataclass
class Sample:
    seconds: float
    peak_rss: int  # bytes, the whole process
    growth_rss: int | None = None  # bytes added during the transfer itself (Python clients report it)
    cpu: float = 0.0  # user + system seconds of the whole process (rusage from wait4)
    stderr: str = ""  # the last lines the client logged (Ferry says how many connections it chose)


@dataclass
class Contender:
    name: str
    argv: Sequence[str]
    reports_own_time: bool = False  # the child prints {"seconds": .., "baseline_rss": ..} as its last line
    env: dict[str, str] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    ceiling: bool = False  # not a tool: what the server or link carries at all, for judging tools
    failure: str = ""  # why it failed; a failed client runs no more rounds


def vm_hwm(pid: int | str = "self") -> int:
    """Peak resident set of a live process's current image, in bytes (``VmHWM``).

    ``ru_maxrss`` from wait4 or getrusage is useless here: a forked child inherits the parent's
    resident size at fork, so every client would show the benchmark's own memory.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(contender: Contender) -> Sample:
    """Run one client to completion. Python clients time only the transfer call (their
    interpreter start-up is not the transfer); binaries are timed whole, start-up included."""
    out_path = os.path.join(SCRATCH, ".child-out")
    err_path = os.path.join(SCRATCH, ".child-err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        # "{RUN}" in an argument becomes a fresh name: an upload to a new key each run, so no
        # tool's skip-identical turns a rerun into a no-op.
        run = uuid.uuid4().hex[:12]
        argv = [a.replace("{RUN}", run) for a in contender.argv]
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **contender.env})
        peak = 0
        while True:  # sample the child's own high-water mark until it exits; wait4 gives its CPU
            peak = max(peak, vm_hwm(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    code = proc.returncode
    with open(out_path) as f:
        stdout = f.read()
    with open(err_path, errors="replace") as f:
        stderr = f.read()[-4000:]
    if code != 0:
        raise RuntimeError(f"{contender.name} failed ({code}): {stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    if contender.reports_own_time:
        report = json.loads(stdout.strip().splitlines()[-1])
        return Sample(report["seconds"], peak, peak - report["baseline_rss"], cpu, stderr)
    return Sample(wall, peak, None, cpu, stderr)


def run_rounds(
    contenders: Sequence[Contender], rounds: int, after_each: Callable[[Contender], None] | None = None
) -> None:
    """Alternate the clients' order every round, so none always runs on a warm (or cold) server."""
    for round_no in range(1, rounds + 1):
        for c in contenders if round_no % 2 else list(reversed(contenders)):
            if c.failure:
                continue
            try:
                c.samples.append(measure(c))
            except RuntimeError as exc:  # one client failing (the CRT client on SeaweedFS) is a row
                c.failure = str(exc).strip().splitlines()[-1][:200]
                print(f"round {round_no}: {c.name}: FAILED: {c.failure}", flush=True)
            else:
                line = f"round {round_no}: {c.name}: {c.samples[-1].seconds:.2f}s"
                if after_each is not None:
                    # Shown: checks and clean-ups between runs are part of the suite's length.
                    began = time.monotonic()
                    after_each(c)
                    line += f" (then {time.monotonic() - began:.1f}s checking and cleaning up)"
                print(line, flush=True)


def s3_env(endpoint: S3Endpoint) -> dict[str, str]:
    """The environment every client reads its S3 endpoint and credentials from (Ferry's bare store
    and boto3 alike: no Airflow connection, so no Airflow in any client process)."""
    return {
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def rclone_remote(name: str, endpoint: S3Endpoint, url: str | None = None) -> dict[str, str]:
    """An rclone S3 remote called ``name`` for the endpoint (reached at ``url`` when given: through
    a proxy), from the environment alone: no config file is read or written."""
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    return {
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other",
        prefix + "ENDPOINT": url or endpoint.url,
        prefix + "ACCESS_KEY_ID": endpoint.access_key,
        prefix + "SECRET_ACCESS_KEY": endpoint.secret_key,
        prefix + "REGION": endpoint.region,
        "RCLONE_CONFIG": os.devnull,
    }


def start_store(workdir: str) -> tuple[ServerProcess, S3Endpoint]:
    """A SeaweedFS on an empty ``workdir``, its endpoint and keys put in the environment every
    client inherits (no instance-metadata lookups either)."""
    shutil.rmtree(workdir, ignore_errors=True)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    proc, endpoint = start_seaweedfs(workdir)
    os.environ.update(s3_env(endpoint))
    return proc, endpoint


def stop_store(proc: ServerProcess, workdir: str) -> None:
    proc.stop(grace=5)
    shutil.rmtree(workdir, ignore_errors=True)


def fresh_scratch() -> str:
    shutil.rmtree(SCRATCH, ignore_errors=True)
    os.makedirs(SCRATCH)
    return SCRATCH


def print_table(contenders: Sequence[Contender], size: int, baseline: str) -> None:
    base = next(c for c in contenders if c.name == baseline)
    base_rate = size / statistics.median(s.seconds for s in base.samples)
    print(f"\nratio = how many times faster {baseline!r} is than the client")
    print(f"{'client':<38}{'median s':>10}{'MiB/s':>8}{'ratio':>8}{'peak RSS MiB':>14}{'transfer RSS MiB':>18}")
    for c in contenders:
        if not c.samples:
            print(f"{c.name:<38}  FAILED: {c.failure}")
            continue
        secs = statistics.median(s.seconds for s in c.samples)
        rate = size / secs
        peak = max(s.peak_rss for s in c.samples) / MiB
        growth = [s.growth_rss for s in c.samples if s.growth_rss is not None]
        growth_text = f"{max(growth) / MiB:.0f}" if growth else "-"
        print(f"{c.name:<38}{secs:>10.2f}{rate / MiB:>8.0f}{base_rate / rate:>7.2f}x{peak:>14.0f}{growth_text:>18}")
    print("(runs alternated; medians; peak RSS: the whole process; transfer RSS: what the transfer added)", flush=True)
