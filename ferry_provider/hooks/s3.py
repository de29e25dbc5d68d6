"""The S3 store as an Airflow hook: ``ferry_s3`` connections (and the Amazon provider's ``aws``)."""

from __future__ import annotations

from ferry_provider.hooks.airflow_connection import AirflowConnectionHook
from ferry_provider.hooks.s3_store import S3Store


class FerryS3Hook(AirflowConnectionHook, S3Store):
    """S3 and S3-compatible stores, configured by an Airflow connection.

    Credentials come from the connection (login/password = access key/secret, extra
    ``aws_session_token``), else from boto3's default chain. Extra fields: ``endpoint_url``,
    ``region_name``, ``addressing_style`` (``path``/``virtual``/``auto``), ``verify`` (bool or CA
    path), ``connect_timeout``, ``read_timeout``. Amazon-provider ``aws`` connections work as is.

    :param aws_conn_id: Airflow connection to use. Default ``"aws_default"``; when that connection
        is not defined, or with ``None``, credentials and settings come from boto3's default chain.
        A named connection that does not exist fails the first request.
    :param conn_id: The same as ``aws_conn_id``, under the name Ferry's operators use; wins when
        given.
    :param max_connections: Size of the HTTP connection pool shared by the hook's threads (boto3's
        ``max_pool_connections``, and the pool for reads). Default 16.
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "ferry_s3"
    hook_name = "Ferry S3 / S3-compatible storage"

    def __init__(
        self,
        aws_conn_id: str | None = default_conn_name,
        *,
        conn_id: str | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__()  # BaseHook, then the store's own set-up
        self.aws_conn_id = conn_id or aws_conn_id  # conn_id= as Ferry's operators name it
        self.max_connections = max_connections
