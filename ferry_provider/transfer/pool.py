"""Run one job per part on a thread pool; the first failure stops the rest and is raised."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """Raised by a job that saw the stop signal: another job failed first, or the run was interrupted."""


def run_parts(job: Callable[[T], None], items: Sequence[T], workers: int, stop: threading.Event, name: str) -> None:
    """Call ``job`` on every item, ``workers`` at a time. On the first failure, ``stop`` is set
    (running jobs check it between chunks and raise Stopped), jobs not yet started are cancelled,
    and once all have ended the first real error is raised; ``stop`` is cleared for a next run.

    An exception raised in the calling thread while it waits (Ctrl-C, a signal's Interrupted)
    also sets ``stop``, but returns at once: parts in flight are abandoned, not awaited, as a
    kill would abandon them; their workers end at their next chunk."""
    if not items:
        return
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix=name)
    try:
        futures = [pool.submit(job, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if not any(f.exception() is not None for f in done):
        pool.shutdown()
        return
    stop.set()
    pool.shutdown(wait=True, cancel_futures=True)
    stop.clear()
    errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
    raise next((e for e in errors if not isinstance(e, Stopped)), errors[0])  # type: ignore[misc]
