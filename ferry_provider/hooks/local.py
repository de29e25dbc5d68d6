"""Local files as an Airflow hook, so ``file://`` URLs work wherever a connection id is taken."""

from __future__ import annotations

from ferry_provider.hooks.airflow_connection import AirflowConnectionHook
from ferry_provider.hooks.local_store import LocalStore


class FerryLocalHook(AirflowConnectionHook, LocalStore):
    """Local files; the ``ferry_local`` connection type exists for symmetry and holds no settings.

    :param local_conn_id: Accepted so every hook takes a connection id; never read. Default ``None``.
    :param conn_id: The same as ``local_conn_id``, under the name Ferry's operators use; wins when
        given.
    :param max_connections: Accepted for a uniform signature; local files use no connection pool.
        Default 16.
    """

    conn_name_attr = "local_conn_id"
    default_conn_name = None
    conn_type = "ferry_local"
    hook_name = "Ferry local files"

    def __init__(
        self,
        local_conn_id: str | None = None,
        *,
        conn_id: str | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__()  # BaseHook, then the store's own set-up
        self.local_conn_id = conn_id or local_conn_id  # conn_id= as Ferry's operators name it
        self.max_connections = max_connections
