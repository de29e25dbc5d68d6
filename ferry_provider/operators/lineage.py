"""OpenLineage datasets for Ferry's operators, named per the OpenLineage naming spec.

``s3://bucket`` / key, ``gs://bucket`` / key, ``file`` / absolute path, ``https://host`` / path.
The OpenLineage provider is optional: it is imported only when it asks for lineage.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ferry_provider.hooks.url import parse_url


def dataset_name(url: str) -> tuple[str, str]:
    """(namespace, name) of the object or prefix at ``url``."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        authority, _, path = rest.partition("/")
        host = authority.rpartition("@")[2]  # never a user or password
        return f"{scheme.lower()}://{host}", "/" + path.split("?", 1)[0].split("#", 1)[0]
    parsed = parse_url(url)
    if parsed.is_local:
        return "file", parsed.key
    return f"{parsed.scheme}://{parsed.bucket}", parsed.key or "/"


def operator_lineage(inputs: Iterable[str], outputs: Iterable[str]) -> Any:
    """An OperatorLineage of the given URLs (each once, in order)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    def datasets(urls: Iterable[str]) -> list[Any]:
        seen: dict[tuple[str, str], None] = {}
        for url in urls:
            if url:
                seen.setdefault(dataset_name(url))
        return [Dataset(namespace=namespace, name=name) for namespace, name in seen]

    return OperatorLineage(inputs=datasets(inputs), outputs=datasets(outputs))


def emit_asset_events(context: Any, outlets: Iterable[Any], url: str, extra: dict[str, Any]) -> None:
    """Airflow assets for what a task wrote. An ``Asset`` among the outlets gets ``extra`` (the
    row's digests and sizes) on its event; an ``AssetAlias`` gets an event for the asset named by
    the real destination URL, so a templated destination (``s3://lake/dt={{ ds }}/``) still
    schedules downstream DAGs on exactly what was written."""
    from airflow.sdk import Asset, AssetAlias

    events = context.get("outlet_events") if hasattr(context, "get") else None
    if events is None:
        return
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            events[outlet].add(Asset(uri=asset_uri(url)), extra=extra)
        elif isinstance(outlet, Asset):
            events[outlet].extra.update(extra)


def asset_uri(url: str) -> str:
    """``url`` as an asset URI: object URLs as they are, local paths as ``file://`` URLs."""
    namespace, name = dataset_name(url)
    if namespace == "file":
        return f"file://{name}"
    return f"{namespace}/{name.lstrip('/')}" if namespace.startswith(("s3://", "gs://")) else f"{namespace}{name}"
