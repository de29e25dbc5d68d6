"""Run one job per part on a thread pool; the first failure stops the rest and is raised."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Gate(Protocol):
    """How many parts may run at once right now (a LinkController): read before each part."""

    limit: int
    maximum: int  # the most it will ever allow

    def on_change(self, listener: Callable[[], None]) -> None: ...


class Stopped(Exception):
    """Raised by a job that saw the stop signal: another job failed first, or the run was interrupted."""


def run_parts(
    job: Callable[[T], None],
    items: Sequence[T],
    workers: int,
    stop: threading.Event,
    name: str,
    gate: Gate | None = None,
) -> None:
    """Call ``job`` on every item, ``workers`` at a time. On the first failure, ``stop`` is set
    (running jobs check it between chunks and raise Stopped), jobs not yet started are cancelled,
    and once all have ended the first real error is raised; ``stop`` is cleared for a next run.

    An exception raised in the calling thread while it waits (Ctrl-C, a signal's Interrupted)
    also sets ``stop``, but returns at once: parts in flight are abandoned, not awaited, as a
    kill would abandon them; their workers end at their next chunk."""
    if not items:
        return
    if gate is not None:
        # No more threads than the gate may ever let run: a thread keeps its part buffer between
        # parts, so idle extra threads would each hold one (memory is threads x part size).
        workers = min(workers, gate.maximum)
    # Gated parts start in the order given: each carries its place in the list as its turn.
    run: Callable[[Any], None] = job if gate is None else _in_turn(job, gate, stop)
    args: Sequence[Any] = items if gate is None else list(enumerate(items))
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix=name)
    try:
        futures = [pool.submit(run, arg) for arg in args]
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


def _in_turn(job: Callable[[T], None], gate: Gate, stop: threading.Event) -> Callable[[tuple[int, T]], None]:
    """``job`` on (turn, item) pairs: started only while fewer than ``gate.limit`` parts run (the
    pool has threads for the most the gate may allow, and the gate decides how many of them work),
    and strictly in turn order (0, 1, 2, ...). A part whose digests are fed in order waits, inside
    its job, for the parts before it; were a later part let in first after the limit fell (a
    throttle), the slots could all be held by parts waiting for one that waits for a slot."""
    changed = threading.Condition()
    running = 0
    next_turn = 0

    def wake() -> None:  # a raised limit starts parts at once, not at the next poll
        with changed:
            changed.notify_all()

    gate.on_change(wake)

    def in_turn(placed: tuple[int, T]) -> None:
        nonlocal running, next_turn
        turn, item = placed
        with changed:
            while running >= gate.limit or turn != next_turn:
                if stop.is_set():
                    raise Stopped()
                changed.wait(0.1)  # to see the stop signal; a raised limit wakes it at once
            running += 1
            next_turn += 1
            changed.notify_all()  # the next in line may be waiting for this turn
        try:
            job(item)
        finally:
            with changed:
                running -= 1
                changed.notify_all()  # the freed slot is the next in line's, whichever thread that is

    return in_turn
