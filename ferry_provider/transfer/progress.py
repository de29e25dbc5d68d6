"""Progress of one transfer: a log line every few seconds and an optional callback."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("ferry_provider.transfer")

ProgressCallback = Callable[[int, int | None], None]  # (bytes done, total bytes)


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        interval: float = 5.0,
        callback: ProgressCallback | None = None,
        already: int = 0,
    ) -> None:
        self.label = label
        self.total = total
        self.done = already
        self.transferred = 0  # bytes moved by this run (resumed bytes excluded)
        self.interval = interval
        self.callback = callback
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_log = self._started

    def add(self, n: int, *, moved: bool = True) -> None:
        """Count ``n`` bytes done; ``moved=False`` for bytes done without passing through this
        process (reused by a resume, copied by the store itself)."""
        with self._lock:
            self.done += n
            if moved:
                self.transferred += n
            now = time.monotonic()
            due = now - self._last_log >= self.interval
            if due:
                self._last_log = now
        if self.callback is not None:
            self.callback(self.done, self.total)
        if due:
            log.info("%s", self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.transferred / elapsed
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            return (
                f"{self.label}: {self.done}/{self.total} bytes ({pct:.1f}%), {rate / 2**20:.1f} MiB/s, ETA {eta:.0f}s"
            )
        return f"{self.label}: {self.done} bytes, {rate / 2**20:.1f} MiB/s"

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started
