"""Faults a transfer cannot get past: a full disk, credentials the store rejects, a bucket that
does not exist. It must fail at once and clearly, leaving nothing anywhere."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import promise
from tests.faults.backends import Backend
from tests.faults.cell import Cell
from tests.faults.fault import Fault
from tests.faults.operations import Operation

TINY_DISK = "8m"  # a third of the object: the download cannot fit
EVERY_METHOD = ("GET", "HEAD", "PUT", "POST", "DELETE")


@contextlib.contextmanager
def tiny_disk(mount_point: Path) -> Iterator[Path]:
    """A real, small filesystem (tmpfs) at ``mount_point``; the cell is skipped where this machine
    does not let us mount one."""
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TINY_DISK}", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {TINY_DISK} tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


class DiskFull(Fault):
    key, header, title = "disk-full", "disk-full", f"the destination's filesystem is full (a {TINY_DISK} tmpfs)"

    def run(self, cell: Cell) -> None:
        with tiny_disk(cell.workdir / "tiny") as disk:
            t = cell.prepare(local_dir=disk)
            run = cell.run(t)
            promise.failed(cell, t, run, r"disk space|no space", others=promise.ANY_RESULT)
            promise.destination_holds(cell, t, None, "a full disk", run)
            left = cell.op.disk_leftovers(cell, t, disk)
            cell.verdict.check(not left, f"after a full disk: left on it: {left}")
            promise.clean(cell, t, "a full disk")


class WrongCredentials(Fault):
    key, header, title = "credentials", "bad-creds", "credentials the store rejects"

    def note(self, op: Operation, backend: type[Backend]) -> str | None:
        if not op.checks_credentials(backend):
            return f"{backend.title} checks none: the proxy answers every request 401, as a store does to rejected ones"
        return None

    def run(self, cell: Cell) -> None:
        t = cell.prepare()
        env = cell.op.rejected_credentials_env(cell)
        if env is None:
            f = cell.proxy.faults
            f.error_methods, f.error_status, f.error_times = EVERY_METHOD, 401, 10**6
        run = cell.run(t, env=env)
        promise.failed(
            cell, t, run, r"denied|forbidden|unauthori[sz]ed|credential|signature|\b40[13]\b", others=promise.ANY_RESULT
        )
        promise.destination_holds(cell, t, None, "rejected credentials", run)
        promise.clean(cell, t, "rejected credentials")


class MissingBucket(Fault):
    key, header, title = "missing-bucket", "no-bucket", "the bucket does not exist"

    def not_applicable(self, op: Operation, backend: type[Backend]) -> str | None:
        if not op.has_buckets(backend):
            return f"{backend.title} URLs have no bucket (a missing path is a plain 404)"
        return None

    def note(self, op: Operation, backend: type[Backend]) -> str | None:
        if op.writes_remote and backend.creates_missing_buckets:
            return f"{backend.title} creates a missing bucket when written to: the proxy answers 404 NoSuchBucket"
        return None

    def run(self, cell: Cell) -> None:
        t, bucket = cell.op.with_missing_bucket(cell, cell.prepare())
        store = cell.op.missing_bucket_store(cell)
        if cell.op.writes_remote and store.creates_missing_buckets:
            f = cell.proxy.faults
            f.only_path, f.error_methods, f.error_status, f.error_times = f"/{bucket}", EVERY_METHOD, 404, 10**6
            f.error_body = store.missing_bucket_answer(bucket)
        run = cell.run(t)
        promise.failed(cell, t, run, r"bucket|not exist|not found|no such|\b404\b", others=promise.ANY_RESULT)
        promise.destination_holds(cell, t, None, "a missing bucket", run)
        cell.verdict.check(not store.bucket_exists(bucket), f"the missing bucket {bucket} was created")
        promise.clean(cell, t, "a missing bucket")
