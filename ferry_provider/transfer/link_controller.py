"""How many connections a transfer uses, chosen by the link rather than by the core count.

On loopback one stream is the fastest; on a cloud link each connection is capped (S3 serves
roughly 50-100 MB/s per connection) and every request pays a round trip, so the number of
connections decides the speed. The controller starts with a few, measures the aggregate rate over
windows of finished bytes, and adds connections while the rate keeps growing and the process is
not CPU-bound; it stops adding when another step no longer pays, halves on throttling (HTTP 503
SlowDown, 429), and never goes past its maximum (an option, and the memory budget divided by the
per-connection buffer). It only decides; the part pool asks it how many parts may run.

Decisions depend only on the observations given (bytes, seconds, CPU seconds), so a scripted rate
curve tests them without a clock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ferry_provider.hooks.errors import TransientError

log = logging.getLogger("ferry_provider.transfer")

START = 8  # as many as the busiest peers open by default (boto3 10, s5cmd 5, rclone 4)
GAIN_TO_GROW = 1.10  # another step must raise the rate by 10 % to be worth its connections
CPU_BOUND = 0.85  # share of the cores in use above which more connections only add contention


@dataclass
class LinkController:
    start: int = START
    maximum: int = 32
    window_bytes: int = 64 << 20  # decide after this many bytes...
    window_seconds: float = 0.5  # ...and at least this long
    cores: int = 1
    limit: int = field(init=False)
    settled: bool = field(default=False, init=False)  # growth stopped: the link is used
    history: list[tuple[int, float]] = field(default_factory=list, init=False)  # (limit, rate) per window
    _best: float = field(default=0.0, init=False)
    _best_limit: int = field(default=1, init=False)
    _throttled_at: float | None = field(default=None, init=False)
    _bytes: int = field(default=0, init=False)
    _since: float | None = field(default=None, init=False)
    _cpu_since: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.maximum = max(1, self.maximum)
        self.limit = max(1, min(self.start, self.maximum))

    def observe(self, nbytes: int, now: float, cpu: float) -> None:
        """``nbytes`` more were moved; ``now`` is a monotonic time, ``cpu`` the process's CPU
        seconds so far. A window closes once it is both long and large enough."""
        with self._lock:
            if self._since is None:
                self._since, self._cpu_since = now, cpu
            self._bytes += nbytes
            elapsed = now - self._since
            if self._bytes < self.window_bytes or elapsed < self.window_seconds:
                return
            rate = self._bytes / elapsed
            busy = (cpu - self._cpu_since) / elapsed / max(1, self.cores)
            self._bytes, self._since, self._cpu_since = 0, now, cpu
            self._decide(rate, busy)

    def _decide(self, rate: float, busy: float) -> None:
        self.history.append((self.limit, rate))
        if self.settled:
            return
        if self._best and rate < self._best * GAIN_TO_GROW:
            # The last step did not pay: back to the fewest connections that reached the best rate.
            self.limit = self._best_limit
            self._settle(f"settled at {self.limit} ({self._best / 2**20:.1f} MiB/s)")
            return
        if rate > self._best:
            self._best, self._best_limit = rate, self.limit
        if busy >= CPU_BOUND:
            self._settle(f"settled at {self.limit}: CPU-bound ({busy:.0%} of the cores)")
        elif self.limit >= self.maximum:
            self._settle(f"at the maximum, {self.limit} ({rate / 2**20:.1f} MiB/s)")
        else:
            # Double, as TCP's slow start does: a capped link's rate grows with the connections,
            # and a transfer of a few seconds has only a few windows to find its level in.
            self.limit = min(self.maximum, self.limit * 2)
            log.info("connections: growing to %d (%.1f MiB/s with %d)", self.limit, rate / 2**20, self.history[-1][0])

    def _settle(self, why: str) -> None:
        self.settled = True
        log.info("connections: %s", why)

    def throttled(self, now: float) -> None:
        """The store asked to slow down: halve, and grow no more. Parts throttled together
        are one signal: a second halving waits a window."""
        with self._lock:
            if self._throttled_at is not None and now - self._throttled_at < self.window_seconds:
                return
            self._throttled_at = now
            self.limit = max(1, self.limit // 2)
            self._settle(f"throttled by the store, down to {self.limit}")


def link_controller_for(opts: Any, per_connection: int = 0, budget: int = 0) -> LinkController | None:
    """A controller when the options let the link decide (``adaptive``): up to ``parallelism``
    connections, and no more than ``budget`` bytes of buffers at ``per_connection`` each."""
    if not getattr(opts, "adaptive", False):
        return None
    maximum = opts.parallelism
    if per_connection and budget:
        maximum = max(1, min(maximum, budget // per_connection))
    return LinkController(start=min(START, maximum), maximum=maximum, cores=os.cpu_count() or 1)


THROTTLE_SIGNS = ("SlowDown", "TooManyRequests", "RequestLimitExceeded", "503", "429")


@contextmanager
def throttle_watch(controller: LinkController | None) -> Iterator[None]:
    """Tell ``controller`` when a request inside was throttled (503 SlowDown, 429)."""
    try:
        yield
    except TransientError as exc:
        if controller is not None and (exc.retry_after is not None or any(s in str(exc) for s in THROTTLE_SIGNS)):
            controller.throttled(time.monotonic())
        raise
