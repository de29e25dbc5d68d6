"""Pick the store for a URL by its scheme, as gcloud's api_factory and pulpcore's factory do.

``hook_for`` gives the Airflow hook (a connection id, else the store's default connection);
``store_for`` without a connection id gives the bare store, configured from the environment,
and loads no Airflow module: the ``ferry`` command starts in a fraction of a second that way.
"""

from __future__ import annotations

import importlib

from ferry_provider.hooks.base import StorageHook
from ferry_provider.hooks.url import ObjectURL, parse_url

# scheme -> (module, bare store class, Airflow hook class); imported only when used.
_CLASSES: dict[str, tuple[str, str, str]] = {
    "s3": ("s3", "S3Store", "FerryS3Hook"),
    "gs": ("gcs", "GCSStore", "FerryGCSHook"),
    "http": ("http", "HTTPStore", "FerryHTTPHook"),
    "https": ("http", "HTTPStore", "FerryHTTPHook"),
    "file": ("local", "LocalStore", "FerryLocalHook"),
}


def _class(url: str | ObjectURL, airflow: bool) -> type[StorageHook]:
    parsed = url if isinstance(url, ObjectURL) else parse_url(url)
    module, store, hook = _CLASSES[parsed.scheme]
    if airflow:
        return getattr(importlib.import_module(f"ferry_provider.hooks.{module}"), hook)
    return getattr(importlib.import_module(f"ferry_provider.hooks.{module}_store"), store)


def hook_for(
    url: str | ObjectURL,
    conn_id: str | None = None,
    *,
    max_connections: int = 16,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> StorageHook:
    """The Airflow hook for ``url``: ``conn_id`` when given, else the store's default connection.
    Timeouts given here win over the connection's extras."""
    cls = _class(url, airflow=True)
    args = () if conn_id is None else (conn_id,)
    hook = cls(*args, max_connections=max_connections)  # type: ignore[call-arg]
    return _with_timeouts(hook, connect_timeout, read_timeout)


def store_for(
    url: str | ObjectURL,
    conn_id: str | None = None,
    *,
    max_connections: int = 16,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> StorageHook:
    """The Airflow hook when ``conn_id`` names a connection, else the bare store (no Airflow)."""
    if conn_id:
        return hook_for(
            url, conn_id, max_connections=max_connections, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
    hook = _class(url, airflow=False)(max_connections=max_connections)  # type: ignore[call-arg]
    return _with_timeouts(hook, connect_timeout, read_timeout)


def _with_timeouts(hook: StorageHook, connect: float | None, read: float | None) -> StorageHook:
    hook.connect_timeout, hook.read_timeout = connect, read
    hook.timeouts({})  # a bad value fails here, before any request, naming the option
    return hook
