"""The GCS store as an Airflow hook: ``ferry_gcs`` connections (and ``google_cloud_platform``)."""

from __future__ import annotations

from ferry_provider.hooks.airflow_connection import AirflowConnectionHook
from ferry_provider.hooks.gcs_store import GCSStore


class FerryGCSHook(AirflowConnectionHook, GCSStore):
    """GCS, configured by an Airflow connection.

    Credentials, in order: the connection's ``key_path`` or ``keyfile_dict`` (service account),
    else application default credentials; ``anonymous: true`` (or an emulator endpoint) sends
    none. Extra fields: ``endpoint_url`` (also the ``STORAGE_EMULATOR_HOST`` variable),
    ``timeout``. Google-provider ``google_cloud_platform`` connections work as is.

    :param gcp_conn_id: Airflow connection to use. Default ``"google_cloud_default"``; when that
        connection is not defined, or with ``None``, application default credentials are used. A
        named connection that does not exist fails the first request.
    :param conn_id: The same as ``gcp_conn_id``, under the name Ferry's operators use; wins when
        given.
    :param max_connections: Size of the HTTP connection pool shared by the hook's threads. Default 16.
    """

    conn_name_attr = "gcp_conn_id"
    default_conn_name = "google_cloud_default"
    conn_type = "ferry_gcs"
    hook_name = "Ferry Google Cloud Storage"

    def __init__(
        self,
        gcp_conn_id: str | None = default_conn_name,
        *,
        conn_id: str | None = None,
        max_connections: int = 16,
    ) -> None:
        super().__init__()  # BaseHook, then the store's own set-up
        self.gcp_conn_id = conn_id or gcp_conn_id  # conn_id= as Ferry's operators name it
        self.max_connections = max_connections
