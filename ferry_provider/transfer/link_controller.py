"""How many connections a transfer uses, chosen by the link rather than by the core count.

On loopback one stream is the fastest; on a cloud link each connection is capped (S3 serves
roughly 50-100 MB/s per connection) and every request pays a round trip, so the number of
connections decides the speed. The controller starts with a few, measures the aggregate rate over
short windows of bytes as they arrive, and adds connections while the rate keeps growing and the
process is not CPU-bound; it stops adding when another step no longer pays, halves on throttling
(HTTP 503 SlowDown, 429), and never goes past its maximum (an option, and the memory budget divided
by the per-connection buffer). It only decides; the part pool asks it how many parts may run.

A controller given a ``fewest`` below its start also steps down: when growing did not pay or
the process is CPU-bound at the start, it halves while the rate holds (within 5 %), and stops at
the last level that held. Many small objects in flight are such a case: on a busy machine each
thread in flight adds GIL hand-offs and context switches, not bytes (loopback, 64 KiB objects: 4
in flight moved 10-20 % more objects a second than 16), while on a link with a long round trip the
first halving loses half the rate and is undone.

A window opens only once every connection of the current level has delivered bytes (counted by
the threads that report them), so the time new connections spend connecting and waiting for their
first byte is not read as a slower link. It closes only at the end of a round (each connection
has reported again), so bytes reported a part at a time (uploads: parts started together end
together) are measured over whole bursts. The tail of a transfer, with fewer parts left than
connections, is never measured.

Decisions depend only on the observations and the two clocks given, so a scripted rate curve
tests them without waiting.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ferry_provider.hooks.errors import TransientError

log = logging.getLogger("ferry_provider.transfer")

# 16 connections take a cloud link (50-100 MB/s each) past a gigabit per second from the start;
# on loopback they cost no more than 8 (1 GiB from SeaweedFS: 1.55 s either way). Starting at 8,
# a transfer of a few seconds spent a third of its time finding its level.
START = 16
GAIN_TO_GROW = 1.10  # another step must raise the rate by 10 % to be worth its connections
HOLD_TO_SHRINK = 0.95  # a step down must keep 95 % of the best rate to be kept (it frees threads)
CPU_BOUND = 0.85  # share of the cores in use above which more connections only add contention


@dataclass
class LinkController:
    start: int = START
    maximum: int = 32
    fewest: int = 0  # the level the rate may step it down to (0: the start); a throttle halves below it
    window_bytes: int = 8 << 20  # decide after this many bytes...
    window_seconds: float = 0.2  # ...and at least this long, once the level's connections all run
    cores: int = 1
    what: str = "connections"  # what the limit counts, for the log
    clock: Callable[[], float] = time.monotonic
    cpu_clock: Callable[[], float] = time.process_time  # read only when a window opens or closes
    limit: int = field(init=False)
    settled: bool = field(default=False, init=False)  # growth stopped: the link is used
    history: list[tuple[int, float]] = field(default_factory=list, init=False)  # (limit, rate) per window
    _best: float = field(default=0.0, init=False)
    _best_limit: int = field(default=1, init=False)
    _shrinking: bool = field(default=False, init=False)
    _throttled_at: float | None = field(default=None, init=False)
    _reporters: set[int] = field(default_factory=set, init=False)  # threads heard from, this level or window
    _bytes: int = field(default=0, init=False)
    _since: float | None = field(default=None, init=False)  # the open window's start
    _cpu_since: float = field(default=0.0, init=False)
    _listeners: list[Callable[[], None]] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.maximum = max(1, self.maximum)
        self.limit = max(1, min(self.start, self.maximum))
        self.fewest = min(self.limit, self.fewest or self.limit)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (from the reporting thread) whenever the limit changes."""
        self._listeners.append(listener)

    def observe(self, nbytes: int, who: int | None = None) -> None:
        """``nbytes`` more arrived (or were sent) on the connection of thread ``who`` (the
        calling thread by default). A window closes once it is both long and large enough."""
        if self.settled:
            return
        who = threading.get_ident() if who is None else who
        with self._lock:
            if self.settled:
                return
            self._reporters.add(who)
            if self._since is None:
                if len(self._reporters) >= self.limit:  # the level's connections all deliver: open
                    self._since, self._cpu_since, self._bytes = self.clock(), self.cpu_clock(), 0
                    self._reporters = set()
                return
            self._bytes += nbytes
            if len(self._reporters) < self.limit:
                return
            # A round: every connection has reported since the last one. Windows end only here, so
            # they span whole rounds (parts reported as they end come in bursts).
            self._reporters = set()
            now = self.clock()
            elapsed = now - self._since
            if self._bytes < self.window_bytes or elapsed < self.window_seconds:
                return
            cpu = self.cpu_clock()
            rate = self._bytes / elapsed
            busy = (cpu - self._cpu_since) / elapsed / max(1, self.cores)
            before = self.limit
            self._decide(rate, busy)
            self._since, self._cpu_since, self._bytes = (now if self.limit == before else None), cpu, 0
        if self.limit != before:
            self._changed()

    def _decide(self, rate: float, busy: float) -> None:
        self.history.append((self.limit, rate))
        if self._shrinking:
            self._decide_down(rate)
            return
        if self._best and rate < self._best * GAIN_TO_GROW:
            # The last step did not pay: back to the fewest connections that reached the best rate.
            self.limit = self._best_limit
            self._settle_or_shrink(f"settled at {self.limit} ({self._best / 2**20:.1f} MiB/s)")
            return
        if rate > self._best:
            self._best, self._best_limit = rate, self.limit
        if busy >= CPU_BOUND:
            self._settle_or_shrink(f"settled at {self.limit}: CPU-bound ({busy:.0%} of the cores)")
        elif self.limit >= self.maximum:
            self._settle(f"at the maximum, {self.limit} ({rate / 2**20:.1f} MiB/s)")
        else:
            # Double, as TCP's slow start does: a capped link's rate grows with the connections,
            # and a transfer of a few seconds has only a few windows to find its level in.
            self.limit = min(self.maximum, self.limit * 2)
            log.info("%s: growing to %d (%.1f MiB/s with %d)", self.what, self.limit, rate / 2**20, self.history[-1][0])

    def _settle_or_shrink(self, why: str) -> None:
        """Settle, unless the best level is still the first and may go lower: then try half of it."""
        if self._best_limit == self.history[0][0] and self.limit > self.fewest:
            self._shrinking = True
            self._try_half(self._best, self._best_limit)
        else:
            self._settle(why)

    def _decide_down(self, rate: float) -> None:
        if rate < self._best * HOLD_TO_SHRINK:  # fewer lost speed: back to the last level that held
            self.limit = self._best_limit
            self._settle(f"settled at {self.limit} ({self._best / 2**20:.1f} MiB/s; fewer were slower)")
            return
        self._best, self._best_limit = max(self._best, rate), self.limit
        if self.limit <= self.fewest:
            self._settle(f"settled at {self.limit}, the fewest ({rate / 2**20:.1f} MiB/s)")
        else:
            self._try_half(rate, self.limit)

    def _try_half(self, rate: float, level: int) -> None:
        self.limit = max(self.fewest, level // 2)
        log.info("%s: trying %d (%.1f MiB/s with %d)", self.what, self.limit, rate / 2**20, level)

    def _settle(self, why: str) -> None:
        self.settled = True
        log.info("%s: %s", self.what, why)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def throttled(self, now: float) -> None:
        """The store asked to slow down: halve, and grow no more. Parts throttled together
        are one signal: a second halving waits a window."""
        with self._lock:
            if self._throttled_at is not None and now - self._throttled_at < self.window_seconds:
                return
            self._throttled_at = now
            self.limit = max(1, self.limit // 2)
            self._settle(f"throttled by the store, down to {self.limit}")
        self._changed()


def link_controller_for(opts: Any, per_connection: int = 0, budget: int = 0) -> LinkController | None:
    """A controller when the options let the link decide (``adaptive``): up to ``parallelism``
    connections, and no more than ``budget`` bytes of buffers at ``per_connection`` each."""
    if not getattr(opts, "adaptive", False):
        return None
    maximum = opts.parallelism
    if per_connection and budget:
        maximum = max(1, min(maximum, budget // per_connection))
    return LinkController(start=min(START, maximum), maximum=maximum, cores=os.cpu_count() or 1)


@contextmanager
def throttle_watch(controller: LinkController | None) -> Iterator[None]:
    """Tell ``controller`` when a request inside was throttled (503 SlowDown, 429)."""
    try:
        yield
    except TransientError as exc:
        if controller is not None and exc.is_throttle():
            controller.throttled(time.monotonic())
        raise
