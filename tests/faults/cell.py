"""One cell of the matrix: an operation on a store under one fault.

A Cell owns a fresh FaultProxy in front of the store (so no fault, counter or straggling request
of another cell reaches it), a private directory and key prefix, the ``ferry cp`` runs it starts,
and the Verdict it fills. ``close()`` stops the proxy, kills a run still going and deletes the
cell's objects.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.faults.ferry_run import FerryRun
from tests.faults.verdict import Verdict
from tests.servers.fault_proxy import FaultProxy

if TYPE_CHECKING:
    from tests.faults.backends import Backend
    from tests.faults.operations import Operation

MiB = 1 << 20
SIZE = 24 * MiB  # small, so the matrix runs in minutes on 2 cores...
PART = 5 * MiB  # ...yet five parts (S3's minimum part size), enough to kill a transfer between parts
KILL_AFTER_PARTS = 2  # parts let through before the proxy holds the rest: where a kill lands
WAIT_LIMIT = 60.0  # seconds any wait for a transfer's progress may take before the cell gives up
CUT_AT = MiB + 4321  # where a body is cut or a byte flipped: inside a part, off any buffer boundary


@dataclass
class Transfer:
    """One ``ferry cp``: what it reads and writes, and the bytes the destination must end with."""

    source: str
    destination: str
    key: str  # the object's key on the store
    data: bytes
    local_dir: Path  # where its local state lives: beside the download's destination or upload's source
    destination_key: str = ""  # a copy's: the destination object's key (``key`` is the source's)
    part_size: int = PART  # the size of the data requests: a one-request copy has one "part"
    # A bulk's other objects, by their name under the prefix: moved in the same run, untouched by
    # the faults, which strike ``key`` (``data``): the object in focus.
    others: dict[str, bytes] = field(default_factory=dict)

    @property
    def parts(self) -> int:
        return math.ceil(len(self.data) / self.part_size)


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """For what no event announces (a file another process writes): check until true, bounded."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


class Cell:
    def __init__(
        self, op: Operation, backend: Backend, workdir: Path, stores: Callable[[str], Backend] | None = None
    ) -> None:
        self.op = op
        self.backend = backend
        self.workdir = workdir
        # Another store by name, for an operation with two (a cross-store copy's destination).
        self.store: Callable[[str], Backend] = stores or (lambda name: backend)
        self.verdict = Verdict()
        self.prefix = f"faults/{op.name}-{backend.name}-{uuid.uuid4().hex[:8]}/"
        self.proxy = FaultProxy(backend.upstream)
        self.proxy_url = self.proxy.start()
        self.runs: list[FerryRun] = []
        # Unfinished uploads already in the buckets: only new ones are this cell's leftovers.
        self.baselines = {store.name: store.temporaries() for store in op.stores(self)}
        self.baseline = self.baselines[backend.name]

    def leftovers(self) -> list[str]:
        """Unfinished uploads (multipart uploads, components) this cell's runs left, on every store
        its operation writes."""
        return sorted(
            str(item) for store in self.op.stores(self) for item in store.temporaries() - self.baselines[store.name]
        )

    def close(self) -> None:
        """Stop everything the cell started and delete what it made (its verdict is already out):
        objects, unfinished uploads, local files (24 MiB each; pytest keeps old temp dirs)."""
        for number, run in enumerate(self.runs, 1):
            run.stop()
            print(f"run {number}: {run.describe()}")  # shown by pytest when the cell fails
        self.proxy.stop()
        for store in self.op.stores(self):
            store.clear(self.prefix)
            store.discard(store.temporaries() - self.baselines[store.name])
        for child in self.workdir.iterdir():
            if child.is_dir() and not child.is_mount():
                shutil.rmtree(child)
            elif child.is_file():
                child.unlink()

    # -- running ferry cp ------------------------------------------------------------------------
    def prepare(self, local_dir: Path | None = None) -> Transfer:
        return self.op.prepare(self, local_dir)

    def ferry(
        self, t: Transfer, *extra: str, env: dict[str, str] | None = None, expect: bytes | None = None
    ) -> FerryRun:
        """Start ``ferry cp`` for ``t``; ``expect``: the bytes it should end with, if not ``t.data``."""
        args = [*self.op.args(self, t, t.data if expect is None else expect), *extra]
        run = FerryRun.start(args, env or self.op.env(self), str(self.workdir))
        self.runs.append(run)
        return run

    def run(self, t: Transfer, *extra: str, env: dict[str, str] | None = None) -> FerryRun:
        run = self.ferry(t, *extra, env=env)
        run.wait()
        return run

    # -- holding a transfer mid-way ------------------------------------------------------------
    def hold_after(self, t: Transfer, parts: int | None = None) -> None:
        """Let ``parts`` data requests through (default: the operation's ``hold_after_parts``), then
        hold every later one (an answer mid-body, a request unanswered) until release_stalls(): the
        transfer stops mid-way, deterministically."""
        parts = self.op.hold_after_parts(t) if parts is None else parts
        method, match = self.op.data_match(self, t)
        f = self.proxy.faults
        f.only_path = match
        f.stall_methods = (method,)
        f.stall_after_requests = parts
        f.stall_times = 10**6
        f.stall_at_byte = PART // 2 if self.op.data_in_answers else None
        f.stall_seconds = 2 * WAIT_LIMIT  # bounded even if never released

    def wait_mid_transfer(self, t: Transfer, run: FerryRun, parts: int | None = None) -> dict[int, int]:
        """Wait until ``run`` has ``parts`` parts in its tracker and the proxy holds every part it
        has in flight; return the tracker's parts. Fails the cell if that point is never reached."""
        parts = self.op.hold_after_parts(t) if parts is None else parts
        in_flight = min(self.op.parallelism, t.parts - parts)
        held = self.proxy.wait_until(lambda p: p.held >= in_flight or not run.running(), WAIT_LIMIT)
        done: dict[int, int] = {}

        def recorded() -> bool:
            done.update(self.op.done_parts(self, t))
            return (len(done) >= parts and self.op.settled(self, t)) or not run.running()

        poll_until(recorded, WAIT_LIMIT if held else 0)
        settled = self.op.settled(self, t)
        if not (held and len(done) >= parts and settled and run.running()):
            if not run.running():
                run.wait(0)
            self.verdict.require(
                False,
                f"the transfer never stopped mid-way as arranged ({parts} parts done, {in_flight} held): "
                f"tracker parts {sorted(done)}, proxy holds {self.proxy.held}, "
                f"{'' if settled else 'the other objects not all finished, '}run "
                f"{'still running' if run.running() else run.describe()}",
            )
        return done

    def release(self) -> None:
        """End the holds; held requests are closed unanswered and were never forwarded."""
        self.proxy.release_stalls()
