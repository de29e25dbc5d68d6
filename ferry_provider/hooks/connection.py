"""Reading connection extras the same way for every store (no Airflow import: bare stores use it)."""

from __future__ import annotations

import json
from typing import Any

from ferry_provider.hooks.errors import InvalidArgumentError


def extra_value(extra: dict[str, Any], *names: str) -> Any:
    """The first non-empty value among ``names`` in a connection's extra (new and legacy names)."""
    for name in names:
        value = extra.get(name)
        if value not in (None, ""):
            return value
    return None


def as_bool(value: Any, default: bool) -> bool:
    """Extras from URI-form connections arrive as strings: 'false' must mean False."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def extra_dict(extra: dict[str, Any], name: str, origin: str) -> dict[str, Any]:
    """A JSON-object extra such as ``service_config`` ({} when absent); URI-form connections
    carry it as a JSON string."""
    value = extra_value(extra, name)
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{origin}: extra {name} must be a JSON object")
    return value
