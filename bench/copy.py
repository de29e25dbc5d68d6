"""Copy benchmark: object-store to object-store copies by Ferry and its peers, on local SeaweedFS.

    python -m bench.copy [--size-mib 6144] [--cross-size-mib 1024] [--rounds 3]
                         [--parallelism 4 8 16] [--part-mib 256] [--workloads ...] [--no-net]

Three workloads, each client in the same run against the same servers, alternated, medians:

- ``server-side``: one ``--size-mib`` object copied to another bucket of the same SeaweedFS.
  Ferry (parallel UploadPartCopy above its 256 MiB threshold) at a few parallelisms and part
  sizes, ``ferry cp`` as a whole process, boto3's managed ``client.copy()`` (default
  TransferConfig), ``s5cmd cp s3://.. s3://..`` and ``rclone copyto`` on an S3 remote.
- ``threshold``: the same on a ``--cross-size-mib`` object, where Ferry's one-request path
  (``--multipart-copy-threshold`` above the size: one CopyObject) meets its part copies.
- ``cross-store``: a ``--cross-size-mib`` object from one SeaweedFS to a second one with other
  keys: Ferry's pipeline (ranged GETs feeding part uploads; Airflow connections, as ``ferry cp
  --src-conn/--dst-conn``), ``rclone copyto`` between two remotes, and boto3 download_file to
  tmpfs then upload_file (what Airflow's transfer operators do).

Every copy goes to a fresh key, is checked (size and sampled ranges against the source) and
deleted; the server's garbage is vacuumed once deleted copies hold 16 GiB. Python clients time
only the transfer call and report its CPU seconds; binaries are timed whole (start-up included)
and their CPU is the whole process's (rusage). "net" is a separate, untimed run of each client under
``strace``: the bytes its sockets to the S3 endpoints read and wrote (HTTP headers and bodies),
the whole process. SeaweedFS keeps its data on disk under .bench/, not tmpfs.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.common import BENCH_DIR, Contender, MiB, Sample, fresh_scratch, rclone_remote, s3_env, vm_hwm
from bench.results import Result, from_contenders, report
from tests.servers.process import ServerProcess
from tests.servers.seaweedfs import S3Endpoint, start_seaweedfs

SRC_BUCKET = "ferry-src"
DST_BUCKET = "ferry-dst"
BIG_KEY = "big.bin"
SMALL_KEY = "small.bin"
CONN_A, CONN_B = "ferry_bench_a", "ferry_bench_b"
B_KEYS = ("FERRYBENCHB", "bench/b+secret")
# Deleted copies are vacuumed away once they hold this much (not after every copy).
RECLAIM_OVER_MIB = 16 * 1024
NET_SYSCALLS = "read,write,readv,writev,recvfrom,sendto,recvmsg,sendmsg,sendfile,splice"


@dataclass
class Run:
    seconds: float
    peak_rss: int
    growth_rss: int | None
    cpu: float
    report: dict[str, object]


@dataclass
class Client:
    name: str
    argv: Sequence[str]
    reports_own_time: bool = False
    env: dict[str, str] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    failure: str = ""
    net: tuple[int, int] | None = None  # bytes read from / written to the S3 endpoints' sockets


@dataclass
class Server:
    proc: ServerProcess
    endpoint: S3Endpoint
    workdir: str
    baseline_mib: int = 0  # the folder's size holding the sources only

    def client(self) -> object:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint.url,
            aws_access_key_id=self.endpoint.access_key,
            aws_secret_access_key=self.endpoint.secret_key,
            region_name="us-east-1",
            config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        )

    def vacuum(self) -> None:
        port = next(a.split("=", 1)[1] for a in self.proc.proc.args if a.startswith("-master.port="))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/vol/vacuum?garbageThreshold=0.0001", timeout=900) as r:
            r.read()

    def reclaim(self) -> None:
        """Vacuum deleted copies now (SeaweedFS does it every 15 minutes otherwise), so the disk
        holds the sources and one copy at a time. The master learns of deletions from the volume
        servers' heartbeats, seconds later: vacuum until the folder is back to its size."""
        deadline = time.monotonic() + 60
        while True:
            time.sleep(1)
            self.vacuum()
            if self.disk_mib() <= self.baseline_mib + 256:
                return
            if time.monotonic() > deadline:
                print(f"(SeaweedFS still holds {self.disk_mib() - self.baseline_mib} MiB more than the sources)")
                self.baseline_mib = self.disk_mib()  # not again for every copy
                return

    def disk_mib(self) -> int:
        return int(subprocess.run(["du", "-sm", self.workdir], capture_output=True, text=True).stdout.split()[0])


# -- running one client --------------------------------------------------------------------------
def run_child(client: Client, scratch: str, strace_prefix: str | None = None) -> Run:
    """One run to completion: wall time (or the child's own), peak RSS sampled from /proc, and
    the CPU of the call (Python clients) or of the whole process (rusage from wait4)."""
    argv = list(client.argv)
    if strace_prefix:
        strace = ["strace", "-f", "-ff", "-qq", "--seccomp-bpf", "-yy", "-s", "0", "-e", f"trace={NET_SYSCALLS}"]
        argv = [*strace, "-o", strace_prefix, *argv]
    out_path, err_path = os.path.join(scratch, ".child-out"), os.path.join(scratch, ".child-err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env={**os.environ, **client.env})
        peak = 0
        while True:
            peak = max(peak, vm_hwm(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        with open(err_path, errors="replace") as f:
            raise RuntimeError(f"exit {proc.returncode}: {f.read()[-1500:].strip()}")
    if client.reports_own_time:
        with open(out_path) as f:
            lines = f.read().strip().splitlines()
        if not lines:
            raise RuntimeError("the client printed no report")
        report = json.loads(lines[-1])
        return Run(report["seconds"], peak, peak - report["baseline_rss"], report["cpu"], report)
    return Run(wall, peak, None, usage.ru_utime + usage.ru_stime, {})


_SOCKET = re.compile(r"(\d+)<TCP:\[[\d.]+:\d+->[\d.]+:(\d+)\]>")
_RESULT = re.compile(r"\)\s+=\s+(\d+)$")


def socket_bytes(prefix: str, ports: set[int]) -> tuple[int, int]:
    """Bytes read and written on TCP sockets to ``ports``, from ``strace -ff -yy`` files."""
    received = sent = 0
    for path in glob.glob(prefix + ".*"):
        with open(path, errors="replace") as f:
            for line in f:
                name = line.split("(", 1)[0]
                result = _RESULT.search(line.rstrip())
                if result is None:
                    continue
                n = int(result.group(1))
                fds = [(m.start(), int(m.group(2))) for m in _SOCKET.finditer(line)]
                if name == "splice":  # splice(in, off, out, off, len, flags): either side may be ours
                    args = re.findall(r"(\d+)<([^>]*)>", line)
                    for index, (_, annotation) in enumerate(args[:2]):
                        port = re.search(r"->[\d.]+:(\d+)\]", annotation)
                        if port and int(port.group(1)) in ports:
                            if index == 0:
                                received += n
                            else:
                                sent += n
                    continue
                if not fds or fds[0][0] != len(name) + 1 or fds[0][1] not in ports:
                    continue  # the first argument is not one of our sockets
                if name in ("read", "readv", "recvfrom", "recvmsg"):
                    received += n
                elif name in ("write", "writev", "sendto", "sendmsg", "sendfile"):
                    sent += n
        os.unlink(path)
    return received, sent


# -- one workload --------------------------------------------------------------------------------
def run_workload(
    title: str,
    clients: list[Client],
    rounds: int,
    size: int,
    scratch: str,
    dest_key: Callable[[Client, str], str],
    after: Callable[[Client, str, bool], None],
    ports: set[int],
    net: bool,
) -> None:
    """Alternate the clients' order every round; after each copy ``after`` checks and removes it
    (its flag: whether the client succeeded, so there is a copy to check)."""
    print(f"\n== {title}", flush=True)
    for round_no in range(1, rounds + 1):
        order = clients if round_no % 2 else list(reversed(clients))
        for c in order:
            if c.failure:
                continue
            tag = f"r{round_no}"
            argv_template = c.argv
            c.argv = [a.replace("{KEY}", dest_key(c, tag)) for a in argv_template]
            try:
                c.runs.append(run_child(c, scratch))
                line = f"round {round_no}: {c.name}: {c.runs[-1].seconds:.2f}s"
            except RuntimeError as exc:
                c.failure = str(exc).splitlines()[-1][:160]
                line = f"round {round_no}: {c.name}: FAILED {exc}"
            finally:
                c.argv = argv_template
            began = time.monotonic()
            after(c, tag, not c.failure)
            print(f"{line} (then {time.monotonic() - began:.1f}s checking and cleaning up)", flush=True)
    if net:
        for c in clients:
            if c.failure:
                continue
            argv_template = c.argv
            c.argv = [a.replace("{KEY}", dest_key(c, "net")) for a in argv_template]
            prefix = os.path.join(scratch, "strace", "t")
            os.makedirs(os.path.dirname(prefix), exist_ok=True)
            ok = False
            try:
                run_child(c, scratch, strace_prefix=prefix)
                c.net = socket_bytes(prefix, ports)
                ok = True
            except RuntimeError as exc:
                print(f"{c.name}: the run under strace failed: {exc}", flush=True)
            finally:
                c.argv = argv_template
                shutil.rmtree(os.path.dirname(prefix), ignore_errors=True)
            after(c, "net", ok)
    print_table(title, clients, size)


def human(count: int) -> str:
    return f"{count / MiB:.0f}M" if count >= 10 * MiB else f"{count / 1024:.0f}K"


def print_table(title: str, clients: list[Client], size: int) -> None:
    done = [c for c in clients if c.runs and not c.failure]
    base = done[0] if done else None
    base_secs = statistics.median(r.seconds for r in base.runs) if base else 0.0
    print(f"\n{title}: {size / MiB:.0f} MiB; ratio = how many times faster {base.name if base else '-'!r} is")
    head = f"{'client':<44}{'median s':>9}{'MiB/s':>7}{'ratio':>7}{'peak RSS':>9}{'xfer RSS':>9}{'CPU s':>7}"
    print(head + f"{'net in/out':>17}")
    for c in clients:
        net = f"{human(c.net[0])}/{human(c.net[1])}" if c.net else "-"
        if c.failure or not c.runs:
            print(f"{c.name:<44}  failed: {c.failure}")
            continue
        secs = statistics.median(r.seconds for r in c.runs)
        peak = max(r.peak_rss for r in c.runs) / MiB
        growth = [r.growth_rss for r in c.runs if r.growth_rss is not None]
        growth_text = f"{max(growth) / MiB:.0f}" if growth else "-"
        cpu = statistics.median(r.cpu for r in c.runs)
        print(
            f"{c.name:<44}{secs:>9.2f}{size / MiB / secs:>7.0f}{secs / base_secs:>6.2f}x{peak:>9.0f}"
            f"{growth_text:>9}{cpu:>7.1f}{net:>17}"
        )
        notes = {str(r.report.get("description", "")).split(";")[0] for r in c.runs} - {""}
        if notes:
            print(f"{'':<4}({'; '.join(sorted(notes))})")
    peers = [c for c in done if not c.name.startswith("ferry")]
    if base and peers:
        best = min(peers, key=lambda c: statistics.median(r.seconds for r in c.runs))
        ratio = statistics.median(r.seconds for r in best.runs) / base_secs
        print(f"{base.name} against the best peer ({best.name}): {ratio:.2f}x")
    print(
        "(runs alternated; medians; ratio > 1: the first row is faster; peak RSS: whole process, MiB;"
        " xfer RSS: what the call added; CPU s: the call (Python) or the whole process (binaries);"
        " net: one extra run under strace, whole process)",
        flush=True,
    )


def suite_rows(workload: str, clients: list[Client], size: int) -> list[Result]:
    """The suite's rows, ``ferry cp`` at its defaults first (the baseline of the ratios)."""
    cli = [c for c in clients if c.name.startswith("ferry cp")]
    rows = []
    for c in cli + [c for c in clients if c not in cli]:
        contender = Contender(c.name, c.argv, failure=c.failure)
        contender.samples = [Sample(r.seconds, r.peak_rss, r.growth_rss, r.cpu) for r in c.runs]
        rows.append(contender)
    return from_contenders(workload, rows, size / MiB, "MiB/s")


# -- set-up --------------------------------------------------------------------------------------
def seed(server: Server, key: str, size: int) -> None:
    """``size`` random bytes in 64 MiB parts with a full-object CRC32C, as Ferry uploads."""
    from ferry_provider.transfer import checksums

    client = server.client()
    upload_id = client.create_multipart_upload(  # type: ignore[attr-defined]
        Bucket=SRC_BUCKET, Key=key, ChecksumAlgorithm="CRC32C", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    part, parts, crc = 64 * MiB, [], 0
    for number, offset in enumerate(range(0, size, part), start=1):
        chunk = os.urandom(min(part, size - offset))
        crc = checksums.crc32c(chunk, crc)
        resp = client.upload_part(  # type: ignore[attr-defined]
            Bucket=SRC_BUCKET,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            ChecksumAlgorithm="CRC32C",
            ChecksumCRC32C=b64_crc(checksums.crc32c(chunk)),
        )
        parts.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumCRC32C": resp["ChecksumCRC32C"]})
    client.complete_multipart_upload(  # type: ignore[attr-defined]
        Bucket=SRC_BUCKET,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": parts},
        ChecksumCRC32C=b64_crc(crc),
        ChecksumType="FULL_OBJECT",
    )


def b64_crc(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def same_bytes(src: Server, src_key: str, dst: Server, dst_key: str, size: int) -> str:
    """Size, and 1 MiB at the start, two inner offsets and the end, against the source."""
    s, d = src.client(), dst.client()
    got = d.head_object(Bucket=DST_BUCKET, Key=dst_key)["ContentLength"]  # type: ignore[attr-defined]
    if got != size:
        return f"size {got}, not {size}"
    span = min(MiB, size)
    for start in sorted({0, size // 3, 2 * size // 3 + 12345, size - span}):
        start = min(start, size - span)
        rng = f"bytes={start}-{start + span - 1}"
        a = s.get_object(Bucket=SRC_BUCKET, Key=src_key, Range=rng)["Body"].read()  # type: ignore[attr-defined]
        b = d.get_object(Bucket=DST_BUCKET, Key=dst_key, Range=rng)["Body"].read()  # type: ignore[attr-defined]
        if a != b:
            return f"bytes differ in {rng}"
    return ""


def remove_copies(server: Server, reclaim_over_mib: int = 0) -> None:
    """Delete every copy and abort any multipart upload left in the destination bucket; vacuum
    once the deleted copies hold more than ``reclaim_over_mib`` (each vacuum waits for the
    volume servers' heartbeats, 5-20 s: after every 6 GiB copy that was a third of W4's time)."""
    client = server.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=DST_BUCKET):  # type: ignore[attr-defined]
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=DST_BUCKET, Key=obj["Key"])  # type: ignore[attr-defined]
    uploads = client.list_multipart_uploads(Bucket=DST_BUCKET).get("Uploads", [])  # type: ignore[attr-defined]
    for upload in uploads:
        client.abort_multipart_upload(Bucket=DST_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])  # type: ignore[attr-defined]
    if server.disk_mib() - server.baseline_mib > reclaim_over_mib:
        server.reclaim()


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# -- the workloads -------------------------------------------------------------------------------
def same_store_clients(
    a: Server, key: str, size: int, args: argparse.Namespace, state_dir: str, threshold_rows: bool
) -> list[Client]:
    py = sys.executable
    bin_dir = os.path.dirname(py)
    src_url, dst_url = f"s3://{SRC_BUCKET}/{key}", f"s3://{DST_BUCKET}/{{KEY}}"
    ferry = [py, "-m", "bench.clients.ferry_copy", src_url, dst_url]
    common = ["--state-dir", state_dir, "--expect", "server-side"]
    first = args.parallelism[0]
    engine_rows = [] if args.cli_only else args.parallelism
    clients = [Client(f"ferry -j{p}", [*ferry, str(p), *common], True) for p in engine_rows]
    if threshold_rows:
        threshold = str(2 * size)
        clients.insert(
            1,
            Client(
                f"ferry -j{first} threshold {2 * size // MiB} MiB",
                [*ferry, str(first), *common, "--threshold", threshold],
                True,
            ),
        )
    else:
        clients += [
            Client(
                f"ferry -j{first} {m} MiB part copies", [*ferry, str(first), *common, "--part-size", str(m * MiB)], True
            )
            for m in args.part_mib
        ]
    cli = [os.path.join(bin_dir, "ferry"), "cp", src_url, dst_url, "-q", "--state-dir", state_dir]
    clients += [
        Client("ferry cp (CLI, whole process)", cli),
        # What the store's CRC32C of the copy costs: without it, what the peers do (no checksum).
        Client("ferry cp --check-hashes never (no checksum asked of the store)", [*cli, "--check-hashes", "never"]),
        Client(
            "boto3 client.copy (TransferConfig defaults)",
            [py, "-m", "bench.clients.boto3_copy", a.endpoint.url, SRC_BUCKET, key, DST_BUCKET, "{KEY}"],
            True,
        ),
        Client("s5cmd cp", [os.path.join(bin_dir, "s5cmd"), "--endpoint-url", a.endpoint.url, "cp", src_url, dst_url]),
        Client(
            "rclone copyto",
            [
                os.path.join(bin_dir, "rclone"),
                "--config",
                os.devnull,
                "--s3-no-check-bucket",
                "copyto",
                f"benchsrv:{SRC_BUCKET}/{key}",
                f"benchsrv:{DST_BUCKET}/{{KEY}}",
            ],
            env=rclone_remote("benchsrv", a.endpoint),
        ),
    ]
    return clients


def cross_store_clients(a: Server, b: Server, args: argparse.Namespace, state_dir: str, scratch: str) -> list[Client]:
    py = sys.executable
    bin_dir = os.path.dirname(py)
    src_url, dst_url = f"s3://{SRC_BUCKET}/{SMALL_KEY}", f"s3://{DST_BUCKET}/{{KEY}}"
    conns = ["--src-conn", CONN_A, "--dst-conn", CONN_B]
    ferry = [py, "-m", "bench.clients.ferry_copy", src_url, dst_url]
    pipeline = ["--state-dir", state_dir, "--expect", "pipeline"]
    engine_rows = [] if args.cli_only else args.parallelism
    clients = [Client(f"ferry -j{p} (pipeline)", [*ferry, str(p), *conns, *pipeline], True) for p in engine_rows]
    side = {"BENCH_SRC": a, "BENCH_DST": b}
    first = args.parallelism[0]
    clients += [
        Client(
            f"ferry -j{first} (pipeline, no Airflow loaded)",
            [*ferry, str(first), "--src-env", "BENCH_SRC_CONN", "--dst-env", "BENCH_DST_CONN", *pipeline],
            True,
            env={f"{name}_CONN": s.endpoint.connection_json() for name, s in side.items()},
        ),
        Client(
            "ferry cp (CLI, whole process)",
            [os.path.join(bin_dir, "ferry"), "cp", src_url, dst_url, *conns, "-q", "--state-dir", state_dir],
        ),
        Client(
            "rclone copyto (two remotes)",
            [
                os.path.join(bin_dir, "rclone"),
                "--config",
                os.devnull,
                "--s3-no-check-bucket",
                "copyto",
                f"bencha:{SRC_BUCKET}/{SMALL_KEY}",
                f"benchb:{DST_BUCKET}/{{KEY}}",
            ],
            env={**rclone_remote("bencha", a.endpoint), **rclone_remote("benchb", b.endpoint)},
        ),
        Client(
            "boto3 download_file + upload_file (tmpfs)",
            [
                py,
                "-m",
                "bench.clients.boto3_relay",
                SRC_BUCKET,
                SMALL_KEY,
                DST_BUCKET,
                "{KEY}",
                os.path.join(scratch, "relay.tmp"),
            ],
            True,
            env={
                name: json.dumps({"url": s.endpoint.url, "key": s.endpoint.access_key, "secret": s.endpoint.secret_key})
                for name, s in side.items()
            },
        ),
    ]
    return clients


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=6144, help="the server-side copy's object")
    parser.add_argument("--cross-size-mib", type=int, default=None, help="cross-store and threshold (default 1024)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--parallelism", type=int, nargs="+", default=[4, 8, 16], help="Ferry rows; the first is the baseline"
    )
    parser.add_argument(
        "--part-mib", type=int, nargs="*", default=[256], help="extra server-side Ferry rows, part size"
    )
    parser.add_argument(
        "--workloads",
        nargs="+",
        choices=["server-side", "threshold", "cross-store"],
        default=["server-side", "threshold", "cross-store"],
    )
    parser.add_argument("--no-net", action="store_true", help="skip the runs under strace (network bytes)")
    parser.add_argument("--results-json", default=None, help="also write the suite's rows here")
    parser.add_argument(
        "--cli-only", action="store_true", help="Ferry as `ferry cp` only (and, across stores, without Airflow)"
    )
    args = parser.parse_args()
    results: list[Result] = []
    size = args.size_mib * MiB
    cross = (args.cross_size_mib or min(1024, args.size_mib)) * MiB
    net = not args.no_net and shutil.which("strace") is not None
    scratch = fresh_scratch()
    state_dir = os.path.join(scratch, "state")
    os.makedirs(state_dir)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    # Airflow (loaded by the clients that take connections) keeps its home in the scratch folder.
    airflow_home = os.path.join(scratch, "airflow-home")
    os.makedirs(airflow_home)
    os.environ.update(
        {
            "AIRFLOW_HOME": airflow_home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        }
    )
    needed = (size if "server-side" in args.workloads else 0) * 2 + cross * 3 + (2048 + RECLAIM_OVER_MIB) * MiB
    free = shutil.disk_usage(BENCH_DIR if os.path.isdir(BENCH_DIR) else os.path.dirname(BENCH_DIR)).free
    if free < needed:
        print(f"only {free / MiB:.0f} MiB free under {BENCH_DIR}; {needed / MiB:.0f} needed", file=sys.stderr)
        return 1
    servers: list[Server] = []
    try:
        for name, keys in (("copy-a", {}), ("copy-b", dict(zip(("access_key", "secret_key"), B_KEYS, strict=True)))):
            if name == "copy-b" and "cross-store" not in args.workloads:
                continue
            workdir = os.path.join(BENCH_DIR, name)
            shutil.rmtree(workdir, ignore_errors=True)
            proc, endpoint = start_seaweedfs(workdir, **keys)
            servers.append(Server(proc, endpoint, workdir))
        a = servers[0]
        os.environ.update(s3_env(a.endpoint))  # bare stores, boto3 and s5cmd: server A
        os.environ[f"AIRFLOW_CONN_{CONN_A.upper()}"] = a.endpoint.connection_json()
        ports = {int(a.endpoint.url.rsplit(":", 1)[1])}
        for s in servers:
            s.client().create_bucket(Bucket=DST_BUCKET)  # type: ignore[attr-defined]
        a.client().create_bucket(Bucket=SRC_BUCKET)  # type: ignore[attr-defined]
        if "server-side" in args.workloads:
            print(f"seeding {args.size_mib} MiB on SeaweedFS A ...", flush=True)
            seed(a, BIG_KEY, size)
        if {"threshold", "cross-store"} & set(args.workloads):
            seed(a, SMALL_KEY, cross)
        for s in servers:
            s.baseline_mib = s.disk_mib()

        def checker(src: Server, dst: Server, key: str, object_size: int) -> Callable[[Client, str, bool], None]:
            def after(c: Client, tag: str, succeeded: bool) -> None:
                dest = f"{slug(c.name)}-{tag}"
                if succeeded:
                    problem = same_bytes(src, key, dst, dest, object_size)
                    if problem:
                        c.failure = f"wrong copy: {problem}"
                        print(f"{c.name}: {c.failure}", flush=True)
                remove_copies(dst, RECLAIM_OVER_MIB)

            return after

        def dest_key(c: Client, tag: str) -> str:
            return f"{slug(c.name)}-{tag}"

        if "server-side" in args.workloads:
            # SeaweedFS grows a bucket's volumes on its first writes: one untimed copy pays that.
            a.client().copy_object(Bucket=DST_BUCKET, Key="warm-up", CopySource={"Bucket": SRC_BUCKET, "Key": BIG_KEY})  # type: ignore[attr-defined]
            remove_copies(a)
            clients = same_store_clients(a, BIG_KEY, size, args, state_dir, threshold_rows=False)
            run_workload(
                "server-side copy, one SeaweedFS",
                clients,
                args.rounds,
                size,
                scratch,
                dest_key,
                checker(a, a, BIG_KEY, size),
                ports,
                net,
            )
            print(f"(SeaweedFS A's folder after the copies were removed: {a.disk_mib()} MiB)")
            results += suite_rows(f"W4 server-side copy {args.size_mib} MiB, one SeaweedFS", clients, size)
        if "threshold" in args.workloads:
            clients = same_store_clients(a, SMALL_KEY, cross, args, state_dir, threshold_rows=True)
            run_workload(
                "server-side copy below 5 GiB: part copies vs one CopyObject",
                clients,
                args.rounds,
                cross,
                scratch,
                dest_key,
                checker(a, a, SMALL_KEY, cross),
                ports,
                net,
            )
            results += suite_rows(f"W4 server-side copy {cross // MiB} MiB, one SeaweedFS", clients, cross)
        if "cross-store" in args.workloads:
            b = servers[1]
            os.environ[f"AIRFLOW_CONN_{CONN_B.upper()}"] = b.endpoint.connection_json()
            ports.add(int(b.endpoint.url.rsplit(":", 1)[1]))
            b.client().put_object(Bucket=DST_BUCKET, Key="warm-up", Body=os.urandom(8 * MiB))  # type: ignore[attr-defined]
            remove_copies(b)
            clients = cross_store_clients(a, b, args, state_dir, scratch)
            run_workload(
                "cross-store copy, SeaweedFS A -> SeaweedFS B (other keys)",
                clients,
                args.rounds,
                cross,
                scratch,
                dest_key,
                checker(a, b, SMALL_KEY, cross),
                ports,
                net,
            )
            results += suite_rows(f"W4 cross-store copy {cross // MiB} MiB, SeaweedFS A -> B", clients, cross)
        report(results, args.results_json, table=False)
    finally:
        for s in servers:
            s.proc.stop(grace=5)
            shutil.rmtree(s.workdir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
