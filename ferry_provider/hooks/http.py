"""The HTTP(S) store as an Airflow hook: ``ferry_http`` connections carry credentials."""

from __future__ import annotations

from ferry_provider.hooks.airflow_connection import AirflowConnectionHook
from ferry_provider.hooks.http_store import HTTPStore


class FerryHTTPHook(AirflowConnectionHook, HTTPStore):
    """HTTP(S) sources, with credentials from an optional Airflow connection.

    The connection gives credentials: login/password for basic auth, or extra
    ``auth_type: bearer`` with the token as password; extra ``headers`` (dict), ``proxy``,
    ``verify`` (bool or CA bundle path), ``cert`` and ``key`` (client certificate), ``timeout``.
    Credentials are sent only to the connection's host when it names one.

    :param http_conn_id: Airflow connection holding credentials and settings. Default ``None``: no
        connection is read and requests carry no credentials. A named connection that does not
        exist fails the first request.
    :param conn_id: The same as ``http_conn_id``, under the name Ferry's operators use; wins when
        given.
    :param max_connections: Size of the HTTP connection pool shared by the hook's threads. Default 16.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "ferry_http_default"
    conn_type = "ferry_http"
    hook_name = "Ferry HTTP(S) source"

    def __init__(
        self,
        http_conn_id: str | None = None,
        *,
        conn_id: str | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__()  # BaseHook, then the store's own set-up
        self.http_conn_id = conn_id or http_conn_id  # conn_id= as Ferry's operators name it
        self.max_connections = max_connections
