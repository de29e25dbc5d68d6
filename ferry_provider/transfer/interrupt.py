"""Stopping a transfer on SIGINT or SIGTERM within a moment, keeping what a rerun resumes from.

``Interrupted`` is a BaseException, as KeyboardInterrupt is, so no ``except Exception`` on the
way up swallows it. The part pool (``pool.run_parts``) stops its workers and returns at once
instead of waiting for parts in flight; the engine keeps the temp file, tracker and multipart
upload exactly as a SIGKILL would (or aborts the upload when resume is off), and the manifest
row is finished as an ``error`` row naming the signal.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferry_provider.transfer.manifest import ManifestRow

log = logging.getLogger("ferry_provider.transfer")


class Interrupted(BaseException):
    """A signal asked the transfer to stop. ``row`` is its manifest row, once it has one."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")
        self.row: ManifestRow | None = None
        self.aftermath = ""  # what the transfer left for a rerun (or removed), said by the engine

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class _Shield:
    depth = 0  # deferred_signals() blocks entered in the main thread
    pending: int | None = None  # a signal that arrived inside one


# Set when a signal arrived inside a deferred_signals() block: retries in that block wait on it,
# so a request that does not answer is not tried again, and the block ends after one attempt.
SIGNAL_PENDING = threading.Event()


@contextmanager
def deferred_signals(finishing: bool = False) -> Iterator[None]:
    """A signal arriving inside this block is raised when the block ends, not in its middle:
    for a short request whose answer must not be lost, such as a new multipart upload's id,
    without which the upload could be neither resumed nor aborted.

    ``finishing`` marks the step that publishes the result: when it succeeds, a signal that
    arrived meanwhile came too late to stop anything, so the transfer ends normally (and says
    so in the log) rather than reporting as unfinished what is already published."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: nothing to defer here
        return
    _Shield.depth += 1
    try:
        yield
    finally:
        _Shield.depth -= 1
        if _Shield.depth == 0 and _Shield.pending is not None:
            signum, _Shield.pending = _Shield.pending, None
            failed = sys.exc_info()[0] is not None
            if failed or not finishing:
                raise Interrupted(signum)  # also when the block failed: the signal is never lost
            log.warning("%s arrived as the transfer was being published; it completes", signal.Signals(signum).name)


def raise_on_signals(signums: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """From now on the first of these signals raises Interrupted in the main thread (at the end
    of a deferred_signals() block, when it arrives inside one); later ones are ignored, so a
    second Ctrl-C cannot break the clean-up the first one started."""
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        if _Shield.depth:
            _Shield.pending = signum
            SIGNAL_PENDING.set()
            return
        raise Interrupted(signum)

    for signum in signums:
        signal.signal(signum, handler)
