"""Find and remove what interrupted uploads left behind: multipart uploads, temporary components."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ferry_provider.hooks.base import StorageHook
from ferry_provider.hooks.errors import FerryError
from ferry_provider.transfer.sinks import COMPONENT_PREFIX

log = logging.getLogger("ferry_provider.transfer")


@dataclass(frozen=True)
class Leftover:
    kind: str  # "multipart-upload" or "component"
    url: str
    upload_id: str
    age_seconds: float


def find_leftovers(hook: StorageHook, url: str, older_than: timedelta) -> list[Leftover]:
    """Unfinished multipart uploads under ``url``'s prefix and Ferry's temporary components in its
    bucket, older than ``older_than`` (young ones may belong to uploads still running)."""
    target = hook.parse(url)
    now = datetime.now(UTC)
    found: list[Leftover] = []
    caps = hook.capabilities
    if caps.multipart_upload:
        for up in hook.list_multipart_uploads(target.raw):
            age = (now - up.initiated).total_seconds() if up.initiated else float("inf")
            if age >= older_than.total_seconds():
                found.append(Leftover("multipart-upload", up.url, up.upload_id, age))
    if caps.composite_upload:
        for obj in hook.list(target.sibling(COMPONENT_PREFIX)):
            age = (now - obj.last_modified).total_seconds() if obj.last_modified else float("inf")
            if age >= older_than.total_seconds():
                found.append(Leftover("component", obj.url, "", age))
    return found


def remove_leftovers(hook: StorageHook, leftovers: list[Leftover]) -> list[Leftover]:
    """Abort or delete each; return those that could not be removed."""
    failed = []
    for item in leftovers:
        try:
            if item.kind == "multipart-upload":
                hook.abort_multipart(item.url, item.upload_id)
            else:
                hook.delete(item.url)
            log.info("removed %s %s %s", item.kind, item.url, item.upload_id)
        except FerryError as exc:
            log.warning("could not remove %s %s: %s", item.kind, item.url, exc)
            failed.append(item)
    return failed


def parse_age(text: str) -> timedelta:
    """``'0'``, ``'90s'``, ``'30m'``, ``'24h'``, ``'7d'`` -> timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    with contextlib.suppress(ValueError):
        if value[-1:] in units:
            return timedelta(seconds=float(value[:-1]) * units[value[-1]])
        return timedelta(seconds=float(value))
    raise ValueError(f"not an age: {text!r} (examples: 0, 90s, 30m, 24h, 7d)")
