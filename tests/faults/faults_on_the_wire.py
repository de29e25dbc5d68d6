"""Faults on the wire that a transfer must absorb within its retry budget: a connection reset,
throttling with Retry-After, a truncated body, a stall past the read timeout; and a flipped byte,
which must never reach the destination unnoticed."""

from __future__ import annotations

from tests.faults import promise
from tests.faults.cell import Cell, Transfer
from tests.faults.fault import Fault
from tests.faults.ferry_run import FerryRun
from tests.faults.operations import WireTarget

READ_TIMEOUT = 2  # seconds, given to ferry cp for the stall
STALL = 15 * READ_TIMEOUT  # the stall lasts far past the read timeout, and ends (bounded)


class TransientFault(Fault):
    """Arm the fault on the requests that carry the data, run once, expect full recovery."""

    fired_as = ("", "")  # the proxy's count of it: (kind on answer bodies, kind on request bodies)
    times = 2
    extra_args: tuple[str, ...] = ()

    def arm(self, cell: Cell, t: Transfer, target: WireTarget) -> None:
        raise NotImplementedError

    def run(self, cell: Cell) -> None:
        t = cell.prepare()
        target = cell.op.wire_target(cell, t, self.key)
        cell.proxy.faults.only_path = target.match
        self.arm(cell, t, target)
        run = cell.run(t, *self.extra_args)
        kind = self.fired_as[0] if target.in_answers else self.fired_as[1]
        fired = cell.proxy.fired[kind]
        cell.verdict.check(fired == self.times, f"the proxy applied the fault {fired} times, not {self.times}")
        self.check_recovery(cell, run)
        promise.succeeded(cell, t, run)
        promise.destination_holds(cell, t, t.data, self.title, run)
        promise.clean(cell, t, "a success")

    def check_recovery(self, cell: Cell, run: FerryRun) -> None:
        """How the transfer got past the fault, where that matters."""


class ConnectionReset(TransientFault):
    key, header, title = "reset", "reset", "connection reset (TCP RST) mid-body, twice"
    fired_as = ("cut", "request_cut")

    def arm(self, cell: Cell, t: Transfer, target: WireTarget) -> None:
        f = cell.proxy.faults
        if target.in_answers:
            f.cut_after, f.cut_times, f.cut_mode = target.at, self.times, "reset"
        else:
            f.request_fault_methods = (target.method,)
            f.request_cut_after, f.request_cut_times, f.request_cut_mode = target.at, self.times, "reset"


class Throttled(TransientFault):
    key, header, title = "throttle", "429/503", "429 then 503, each with Retry-After: 1"
    fired_as = ("error", "error")

    def arm(self, cell: Cell, t: Transfer, target: WireTarget) -> None:
        f = cell.proxy.faults
        f.error_methods, f.error_statuses, f.error_times, f.retry_after = (target.method,), (429, 503), self.times, "1"


class TruncatedBody(TransientFault):
    key, header, title = (
        "truncated",
        "truncated",
        "truncated body, twice: Content-Length announced, connection closed early "
        "(uploads: the store gets the part cut short)",
    )
    fired_as = ("cut", "request_cut")

    def arm(self, cell: Cell, t: Transfer, target: WireTarget) -> None:
        f = cell.proxy.faults
        if target.in_answers:
            f.cut_after, f.cut_times, f.cut_mode = target.at, self.times, "close"
        else:
            f.request_fault_methods = (target.method,)
            f.request_cut_after, f.request_cut_times, f.request_cut_mode = target.at, self.times, "truncate"


class StallPastReadTimeout(TransientFault):
    key, header, title = (
        "stall",
        "stall",
        f"one stall past --read-timeout {READ_TIMEOUT}, until the client hangs up (downloads: mid-body; "
        "uploads: no answer)",
    )
    fired_as = ("stall", "stall")
    times = 1
    extra_args = ("--read-timeout", str(READ_TIMEOUT), "--connect-timeout", str(READ_TIMEOUT))

    def arm(self, cell: Cell, t: Transfer, target: WireTarget) -> None:
        f = cell.proxy.faults
        f.stall_methods, f.stall_times, f.stall_seconds = (target.method,), self.times, STALL
        f.stall_at_byte = target.at if target.in_answers else None

    def check_recovery(self, cell: Cell, run: FerryRun) -> None:
        # The stall would end by itself after STALL seconds (a truncated body, retried): only a
        # client that hung up first applied its read timeout.
        cell.verdict.check(
            cell.proxy.fired["abandoned"] == 1,
            f"the client never hung up on the stalled request: --read-timeout {READ_TIMEOUT} did not apply",
            run,
        )


class FlippedByte(Fault):
    key, header, title = (
        "flip",
        "flip",
        "one byte inverted in transit (downloads: on every read of it; uploads: in one part, once)",
    )

    def run(self, cell: Cell) -> None:
        t = cell.prepare()
        target = cell.op.wire_target(cell, t, self.key)
        f = cell.proxy.faults
        f.only_path = target.match
        if target.in_answers:
            f.flip_offset = len(t.data) // 2 + 4321
        else:
            f.request_fault_methods, f.request_flip_offset, f.request_flip_times = (target.method,), target.at, 1
        run = cell.run(t)
        fired = cell.proxy.fired["flip" if target.in_answers else "request_flip"]
        cell.verdict.check(fired >= 1, "the proxy never flipped the byte")
        if run.returncode == 0:  # the damaged part was caught and sent again: the bytes must be exact
            promise.succeeded(cell, t, run)
            promise.destination_holds(cell, t, t.data, "a flipped byte", run)
        else:
            promise.failed(cell, t, run, r"match|checksum|digest")
            promise.destination_holds(cell, t, None, "a flipped byte", run)
        promise.clean(cell, t, "a final result")
