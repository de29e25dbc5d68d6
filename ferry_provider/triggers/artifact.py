"""FerryArtifactTrigger: polls an ArtifactCheck in the triggerer, no worker slot held."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, PermissionDeniedError
from ferry_provider.transfer.artifact_check import INVALID, OKAY, ArtifactCheck


class FerryArtifactTrigger(BaseTrigger):
    """Yields one event: ``{"status": "success", "objects": [...]}``, ``{"status": "failed",
    "reason": ...}`` (an invalid artifact, a missing connection, a refusal by the store), or
    ``{"status": "timeout", "reason": ...}`` once ``deadline`` (epoch seconds) has passed. Waits
    between checks grow by half each time up to ``max_interval`` when ``exponential_backoff``.

    :param check: The check to run, as ``ArtifactCheck.to_dict()`` gives it (FerryArtifactSensor
        builds it from its arguments). The first check runs at once.
    :param poke_interval: Seconds between checks (default 60.0).
    :param exponential_backoff: When ``True``, each wait is 1.5 times the previous, up to
        ``max_interval``. Default ``False``.
    :param max_interval: Longest wait between checks, in seconds, with ``exponential_backoff``
        (default 600.0).
    :param deadline: Epoch time in seconds after which a ``timeout`` event is yielded; the last wait
        is cut short to meet it. Default ``None``: no deadline.
    """

    def __init__(
        self,
        check: dict[str, Any],
        poke_interval: float = 60.0,
        exponential_backoff: bool = False,
        max_interval: float = 600.0,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.deadline = deadline
        self.check = check
        self.poke_interval = poke_interval
        self.exponential_backoff = exponential_backoff
        self.max_interval = max_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "check": self.check,
                "poke_interval": self.poke_interval,
                "exponential_backoff": self.exponential_backoff,
                "max_interval": self.max_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ferry_provider.hooks.factory import hook_for

        check = ArtifactCheck(**self.check)
        state: dict[str, Any] | None = None
        interval = self.poke_interval
        reason = "not checked yet"
        while True:
            try:
                # Hook calls block: they run in a worker thread so the triggerer's loop stays free.
                result = await asyncio.to_thread(check.run, hook_for, state)
            except (InvalidArgumentError, PermissionDeniedError) as exc:
                yield TriggerEvent({"status": "failed", "reason": f"{check.url}: {exc}"})
                return
            except FerryError as exc:
                reason = f"check failed: {exc}"
                self.log.warning("artifact check failed, will retry: %s", exc)
            else:
                if result.state == OKAY:
                    yield TriggerEvent({"status": "success", "objects": result.objects, "reason": result.reason})
                    return
                if result.state == INVALID:
                    yield TriggerEvent({"status": "failed", "reason": result.reason})
                    return
                state = result.observation
                reason = result.reason
                self.log.info("waiting: %s", result.reason)
            left = None if self.deadline is None else self.deadline - time.time()
            if left is not None and left <= 0:
                yield TriggerEvent({"status": "timeout", "reason": reason})
                return
            await asyncio.sleep(interval if left is None else min(interval, left))
            if self.exponential_backoff:
                interval = min(interval * 1.5, self.max_interval)
