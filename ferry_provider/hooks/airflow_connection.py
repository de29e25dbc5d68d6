"""What turns a bare store into an Airflow hook: its settings come from an Airflow connection."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from ferry_provider.hooks.errors import FerryError, MissingConnectionError


class AirflowConnectionHook(BaseHook):
    """Mixed in before a store class: ``FerryS3Hook(AirflowConnectionHook, S3Store)``.

    The store's code asks ``self.connection()``; here that is the Airflow connection named by the
    hook's ``conn_name_attr`` attribute.
    """

    conn_name_attr: str
    default_conn_name: str | None
    credential_fallback: str

    @property
    def conn_id(self) -> str | None:
        return getattr(self, self.conn_name_attr, None)

    def get_conn(self) -> Any:
        """The client library's object underneath: a boto3 S3 client, a requests session."""
        return self.native_client()

    def test_connection(self) -> tuple[bool, str]:
        """What the UI's Test button runs: one cheap request with this connection's settings."""
        try:
            return True, self.probe()
        except FerryError as exc:
            return False, str(exc)

    def connection(self) -> Connection | None:
        """The connection ``conn_id``, or None when there is none to use.

        A missing *default* connection is normal (credentials come from the environment, as with
        boto3's chain or Google's ADC) and is logged; a missing connection the user *named* is an
        error, because silently using other credentials would be worse than failing.
        """
        conn_id = self.conn_id
        if not conn_id:
            return None
        try:
            return self.get_connection(conn_id)
        except AirflowNotFoundException:
            if conn_id == self.default_conn_name:
                self.log.info("Connection %r is not defined; %s", conn_id, self.credential_fallback)
                return None
            raise MissingConnectionError(
                f"Airflow connection {conn_id!r} is not defined"
                f" (add it in Airflow or set AIRFLOW_CONN_{conn_id.upper()})"
            ) from None
