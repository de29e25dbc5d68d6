"""Faults that strike a transfer held mid-way by the proxy (some parts done, the next ones in
flight): a kill or an interrupt and then a rerun, the source overwritten, a second writer."""

from __future__ import annotations

import os
import signal

from tests.faults import promise
from tests.faults.backends import Backend
from tests.faults.cell import Cell, MiB, Transfer, poll_until
from tests.faults.fault import Fault
from tests.faults.ferry_run import FerryRun
from tests.faults.operations import Operation

STOP_LIMIT = 10.0  # seconds a run may take to stop after a signal (the contract: about one)
SECOND_WRITER_LIMIT = 20.0  # seconds the second writer has to fail at once (or show that it waits)


class InterruptedThenRerun(Fault):
    """Stop the transfer mid-way, check what it kept, rerun it: the rerun must finish from the
    kept state, moving again at most what was not done, and then leave nothing."""

    sig = signal.SIGKILL

    def run(self, cell: Cell) -> None:
        t = cell.prepare()
        cell.hold_after(t)
        first = cell.ferry(t)
        cell.wait_mid_transfer(t, first)
        first.send(self.sig)
        self.check_stopped(cell, t, first)
        missing = cell.op.missing_resumable_state(cell, t)
        cell.verdict.check(not missing, f"the {self.sig.name}ed run did not keep its resumable state: {missing}")
        done = cell.op.done_parts(cell, t)
        if cell.op.hold_after_parts(t):  # else the kill lands on the first data request: nothing is done yet
            cell.verdict.require(done, f"the {self.sig.name}ed run's tracker records no finished part")
        cell.release()
        cell.proxy.wait_idle()
        cell.proxy.reset()  # counts from here are the rerun's alone
        rerun = cell.run(t)
        # A run held at its first data request has nothing finished to resume from (no part, no token).
        promise.succeeded(cell, t, rerun, about=r"resum" if cell.op.hold_after_parts(t) else None)
        promise.destination_holds(cell, t, t.data, "the rerun", rerun)
        promise.clean(cell, t, "the rerun's success")
        moved, allowed, unit = cell.op.rerun_traffic(cell, t, done)
        cell.verdict.check(
            moved <= allowed,
            f"the rerun moved {moved} {unit}, but only {allowed} were not done when the first run stopped "
            f"(parts {sorted(done)} were): finished parts were transferred again",
        )

    def check_stopped(self, cell: Cell, t: Transfer, run: FerryRun) -> None:
        run.wait(STOP_LIMIT)


class KilledThenRerun(InterruptedThenRerun):
    key, header, title = "sigkill", "SIGKILL", "SIGKILL mid-transfer, then the same command again"
    sig = signal.SIGKILL


class InterruptedBySigintThenRerun(InterruptedThenRerun):
    key, header, title = (
        "sigint",
        "SIGINT",
        "SIGINT mid-transfer (exit 130 promptly, one stderr line, state kept), then the same command again",
    )
    sig = signal.SIGINT

    def check_stopped(self, cell: Cell, t: Transfer, run: FerryRun) -> None:
        v = cell.verdict
        stopped = run.wait(STOP_LIMIT)
        v.check(stopped, f"still running {STOP_LIMIT:.0f}s after SIGINT (killed)", run)
        if not stopped:
            return
        v.check(run.returncode == 130, "expected exit 130 after SIGINT", run)
        v.check(len(run.stderr_lines) == 1, f"expected one line on stderr, got {run.stderr_lines}", run)
        v.check("Traceback" not in run.stderr, "a traceback on stderr", run)
        promise.interrupted(cell, t, run)


class SourceOverwritten(Fault):
    key, header, title = (
        "overwritten",
        "src-change",
        "source overwritten mid-transfer (downloads, copies: then again with --restart-on-change; "
        "uploads: the local file rewritten in place)",
    )

    def note(self, op: Operation, backend: type[Backend]) -> str | None:
        if op.data_in_answers and not backend.same_size_change_visible:
            return f"{backend.title} ignores ifGenerationMatch: each new version has a different size"
        return None

    def run(self, cell: Cell) -> None:
        t = cell.prepare()
        self.overwrite_mid_transfer(cell, t, restart=False)
        if cell.op.restarts_on_change:
            self.overwrite_mid_transfer(cell, t, restart=True)

    def overwrite_mid_transfer(self, cell: Cell, t: Transfer, restart: bool) -> None:
        cell.proxy.reset()
        grow = 0 if cell.backend.same_size_change_visible or not cell.op.data_in_answers else MiB
        new = os.urandom(len(t.data) + grow)
        cell.hold_after(t)
        run = cell.ferry(t, *(["--restart-on-change"] if restart else []), expect=new if restart else None)
        cell.wait_mid_transfer(t, run)
        cell.op.change_source(cell, t, new)
        cell.release()
        run.wait()
        if restart:
            promise.succeeded(cell, t, run, about=r"chang|restart")
            promise.destination_holds(cell, t, new, "a restart on change", run)
        else:
            promise.failed(cell, t, run, cell.op.changed_source(t))
            promise.destination_holds(cell, t, None, "the source changed", run)
        promise.clean(cell, t, "a final result")


class SecondWriter(Fault):
    key, header, title = (
        "concurrent",
        "2-writers",
        "the same ferry cp started again while the first is mid-transfer "
        "(downloads: the second must fail at once or wait)",
    )

    def run(self, cell: Cell) -> None:
        v = cell.verdict
        t = cell.prepare()
        cell.hold_after(t)
        first = cell.ferry(t)
        cell.wait_mid_transfer(t, first)
        method, match = cell.op.data_match(cell, t)
        before = cell.proxy.begun_count(method, match)
        second = cell.ferry(t)

        def moving() -> bool:
            return cell.proxy.begun_count(method, match) > before

        poll_until(lambda: not second.running() or moving(), SECOND_WRITER_LIMIT)
        second_ended_early = not second.running()
        if cell.op.exclusive_destination and not second_ended_early:
            v.check(not moving(), "the second run fetched data into the destination the first was writing")
        cell.release()
        first.wait()
        second.wait()
        if cell.op.exclusive_destination:
            promise.succeeded(cell, t, first)
            if second_ended_early or second.returncode != 0:
                promise.failed(cell, t, second, r"being written by another transfer")
            else:  # it waited for the first: then the destination is there, identical or fetched again
                promise.the_row(cell, t, second, ("OK", "skip"), r".")
        else:
            for run in (first, second):
                v.check(run.returncode in (0, 1), "expected exit 0 or 1", run)
                promise.the_row(cell, t, run, ("OK", "skip") if run.returncode == 0 else "error", r".")
        winners = [run for run in (first, second) if run.returncode == 0]
        v.check(winners, "neither writer succeeded", first, second)
        promise.destination_holds(cell, t, t.data if winners else None, "two writers", first, second)
        promise.clean(cell, t, "both writers ended")
