"""Digests that must see the bytes in order (MD5, SHA-*, per-part values), fed by parts that
arrive in any order.

A part's worker waits for its turn before feeding its bytes: it keeps its buffer meanwhile, so
memory stays at one part per worker, and the lowest part in flight never waits, so the wait
always ends. CRCs need none of this: they are combined from per-part values.
"""

from __future__ import annotations

import hashlib
import threading

from ferry_provider.transfer import checksums
from ferry_provider.transfer.pool import Stopped
from ferry_provider.transfer.verification import Check, multipart_etag

WAIT_SLICE = 0.2  # seconds between looks at the stop flag while waiting for a turn


class _Sequential:
    """One check's digest over the whole stream, split at its part layout when it has one."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.ends: list[int] = []
        at = 0
        for size in check.part_sizes:
            at += size
            self.ends.append(at)
        self.pos = 0
        self.values: list[str] = []
        self.hasher = self._new()

    def _new(self) -> checksums.Hasher:
        if self.check.streamed:
            return checksums.CrcHasher(checksums.CRCS[self.check.algorithm])
        return hashlib.new(self.check.algorithm)

    def update(self, data: memoryview) -> None:
        if not self.check.per_part:
            self.hasher.update(data)
            self.pos += len(data)
            return
        while data:
            end = self.ends[len(self.values)] if len(self.values) < len(self.ends) else self.pos + len(data)
            take = min(len(data), end - self.pos)
            self.hasher.update(data[:take])
            self.pos += take
            data = data[take:]
            if self.pos == end and len(self.values) < len(self.ends):
                self.values.append(self.hasher.hexdigest())
                self.hasher = self._new()

    def result(self) -> str:
        if not self.check.per_part:
            return self.hasher.hexdigest()
        if self.check.streamed:
            return checksums.CRCS[self.check.algorithm].composite([int(v, 16) for v in self.values])
        return multipart_etag([bytes.fromhex(v) for v in self.values])


class OrderedDigests:
    def __init__(self, checks: list[Check]) -> None:
        self._digests = [_Sequential(c) for c in checks]
        self._next = 0
        self._turn = threading.Condition()

    def __bool__(self) -> bool:
        return bool(self._digests)

    def feed(self, index: int, data: memoryview, stop: threading.Event) -> None:
        """Hash part ``index``'s bytes once every part before it has been hashed."""
        with self._turn:
            while self._next != index:
                if stop.is_set():
                    raise Stopped()
                self._turn.wait(WAIT_SLICE)
        for digest in self._digests:  # only this thread's turn: no lock needed while hashing
            digest.update(data)
        with self._turn:
            self._next = index + 1
            self._turn.notify_all()

    def results(self) -> dict[Check, str]:
        return {d.check: d.result() for d in self._digests}
