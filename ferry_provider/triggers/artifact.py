"""FerryArtifactTrigger: polls an ArtifactCheck in the triggerer, no worker slot held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from ferry_provider.hooks.errors import FerryError
from ferry_provider.transfer.artifact_check import INVALID, OKAY, ArtifactCheck


class FerryArtifactTrigger(BaseTrigger):
    """Yields one event: ``{"status": "success", "objects": [...]}`` or ``{"status": "failed",
    "reason": ...}``. Waits between checks grow by half each time up to ``max_interval`` when
    ``exponential_backoff``; the sensor's timeout is enforced by Airflow's deferral timeout."""

    def __init__(
        self,
        check: dict[str, Any],
        poke_interval: float = 60.0,
        exponential_backoff: bool = False,
        max_interval: float = 600.0,
    ) -> None:
        super().__init__()
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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from ferry_provider.hooks.factory import hook_for

        check = ArtifactCheck(**self.check)
        state: dict[str, Any] | None = None
        interval = self.poke_interval
        while True:
            try:
                # Hook calls block: they run in a worker thread so the triggerer's loop stays free.
                result = await asyncio.to_thread(check.run, hook_for, state)
            except FerryError as exc:
                self.log.warning("artifact check failed, will retry: %s", exc)
            else:
                if result.state == OKAY:
                    yield TriggerEvent({"status": "success", "objects": result.objects, "reason": result.reason})
                    return
                if result.state == INVALID:
                    yield TriggerEvent({"status": "failed", "reason": result.reason})
                    return
                state = result.observation
                self.log.info("waiting: %s", result.reason)
            await asyncio.sleep(interval)
            if self.exponential_backoff:
                interval = min(interval * 1.5, self.max_interval)
