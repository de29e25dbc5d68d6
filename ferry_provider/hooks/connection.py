"""Resolving a hook's Airflow connection the same way for every store."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from ferry_provider.hooks.errors import NotFoundError


def resolve_connection(
    hook: BaseHook, conn_id: str | None, default_conn_id: str | None, fallback: str
) -> Connection | None:
    """The connection ``conn_id``, or None when there is none to use.

    A missing *default* connection is normal (credentials come from the environment, as with
    boto3's chain or Google's ADC) and is logged; a missing connection the user *named* is an
    error, because silently using other credentials would be worse than failing.
    """
    if not conn_id:
        return None
    try:
        return hook.get_connection(conn_id)
    except AirflowNotFoundException:
        if conn_id == default_conn_id:
            hook.log.info("Connection %r is not defined; %s", conn_id, fallback)
            return None
        raise NotFoundError(
            f"Airflow connection {conn_id!r} is not defined (add it in Airflow or set AIRFLOW_CONN_{conn_id.upper()})"
        ) from None


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
