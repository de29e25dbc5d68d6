"""Retry policy for one unit of work (a part, a request): tenacity with backoff and jitter.

Only TransientError is retried (connection failures, timeouts, 429 and 5xx, short bodies); a
server's Retry-After wins over the computed wait. The final error says how many attempts ran.
``on_throttle`` is told of every attempt the store throttled: a bulk run lowers the number of
objects in flight on it (each object's own requests have no controller of their own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from ferry_provider.hooks.errors import TransientError
from ferry_provider.transfer.pool import Stopped

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 20.0
    on_throttle: Callable[[], None] | None = None

    def run(self, fn: Callable[[], T], *, what: str, stop: threading.Event | None = None) -> T:
        """Call ``fn`` until it succeeds or attempts run out; re-raise the last error, annotated.

        With ``stop``, the wait between attempts ends as soon as it is set (the transfer failed
        elsewhere or was interrupted) and Stopped is raised instead of trying again."""
        if self.on_throttle is not None:
            fn = self._telling_throttles(fn, self.on_throttle)
        try:
            # The first attempt runs bare: building tenacity's machinery for every request cost
            # a bulk run of small objects 8 % of its interpreter time. Only a failure pays it.
            return fn()
        except TransientError as exc:
            first: TransientError | None = exc

        def replay_then_call() -> T:
            # Tenacity counts, waits and gives up as if it had run the first attempt itself.
            nonlocal first
            if first is not None:
                failure, first = first, None
                raise failure
            return fn()

        exponential = wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TransientError) and exc.retry_after is not None:
                return min(exc.retry_after, self.max_wait * 3)
            return exponential(state)

        def sleep(seconds: float) -> None:
            if stop is None:
                time.sleep(seconds)
            elif stop.wait(seconds):
                raise Stopped()

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            sleep=sleep,
            reraise=True,
        )
        try:
            return retrying(replay_then_call)
        except TransientError as exc:
            exc.args = (f"{what}: gave up after {self.attempts} attempts: {exc}",)
            raise

    @staticmethod
    def _telling_throttles(fn: Callable[[], T], on_throttle: Callable[[], None]) -> Callable[[], T]:
        def attempt() -> T:
            try:
                return fn()
            except TransientError as exc:
                if exc.is_throttle():
                    on_throttle()
                raise

        return attempt
