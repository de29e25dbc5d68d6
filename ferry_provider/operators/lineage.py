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
