"""The suite and its servers leave nothing in /tmp: no SeaweedFS sockets or logs, no Airflow home."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers.seaweedfs import start_seaweedfs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unix_sockets_of(pid: int) -> set[str]:
    """Paths of the unix sockets process ``pid`` has open, from /proc (as ``ss -xp`` finds them)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    paths = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[6] in inodes and fields[7].startswith("/"):
                paths.add(fields[7])
    return paths


def test_seaweedfs_leaves_no_socket_or_log_behind(tmp_path) -> None:
    workdir = str(tmp_path / "seaweedfs")
    proc, _ = start_seaweedfs(workdir)
    try:
        sockets = unix_sockets_of(proc.pid)
    finally:
        proc.stop(grace=0.1)  # SIGKILL almost at once: the harshest stop must clean up too
    assert sockets, "weed server opened no unix socket: this test would prove nothing"
    # Only the gRPC sockets, whose /tmp path no flag moves, live outside the workdir.
    assert all(p.startswith(workdir + os.sep) or "-grpc-" in p for p in sockets), sockets
    assert [p for p in sockets if os.path.exists(p)] == []
    glog = [name for name in os.listdir("/tmp") if name.startswith("weed.") and name.endswith(f".{proc.pid}")]
    assert glog == []


INNER_TEST = """
import os, signal, time

def test_inner():
    with open(os.environ["FERRY_HYGIENE_REPORT"], "w") as f:
        f.write(os.environ["AIRFLOW_HOME"])
    assert os.path.isdir(os.environ["AIRFLOW_HOME"])
    end = os.environ["FERRY_HYGIENE_END"]
    if end == "ctrl-c":
        raise KeyboardInterrupt
    if end == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
"""


@pytest.mark.parametrize(("end", "exit_code"), [("pass", 0), ("ctrl-c", 2), ("sigterm", 2)])
def test_the_airflow_home_is_removed_however_the_run_ends(tmp_path, end: str, exit_code: int) -> None:
    """A pytest run with this suite's conftest, ending as told, leaves its Airflow home behind or not."""
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    report = tmp_path / "home.txt"
    env = {**os.environ, "FERRY_HYGIENE_REPORT": str(report), "FERRY_HYGIENE_END": end}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider"]
    argv += [f"--basetemp={tmp_path / 'basetemp'}", str(tmp_path / "test_inner.py")]
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == exit_code, run.stdout + run.stderr
    home = report.read_text()
    assert os.path.basename(home).startswith("ferry-airflow-home-")
    assert not os.path.exists(home)
