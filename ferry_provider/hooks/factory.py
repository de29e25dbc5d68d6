"""Pick the hook for a URL by its scheme, as gcloud's api_factory and pulpcore's factory do."""

from __future__ import annotations

from ferry_provider.hooks.base import StorageHook
from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.hooks.url import ObjectURL, parse_url

HOOKS_BY_SCHEME: dict[str, type[StorageHook]] = {
    "s3": FerryS3Hook,
    "gs": FerryGCSHook,
    "http": FerryHTTPHook,
    "https": FerryHTTPHook,
    "file": FerryLocalHook,
}


def hook_for(url: str | ObjectURL, conn_id: str | None = None, *, max_connections: int = 16) -> StorageHook:
    """A hook for ``url``: ``conn_id`` when given, else the store's default connection."""
    parsed = url if isinstance(url, ObjectURL) else parse_url(url)
    cls = HOOKS_BY_SCHEME[parsed.scheme]
    if cls is FerryLocalHook:
        return FerryLocalHook(conn_id)
    if conn_id is None:
        return cls(max_connections=max_connections)  # type: ignore[call-arg]
    return cls(conn_id, max_connections=max_connections)  # type: ignore[call-arg]
