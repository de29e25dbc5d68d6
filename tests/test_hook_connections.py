"""What Airflow users expect of a hook: test_connection() for the UI's Test button, get_conn()."""

from __future__ import annotations

import json

import botocore.client
import requests

from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.hooks.s3 import FerryS3Hook
from tests.conftest import GCS_CONN, S3_CONN
from tests.servers.process import free_port


def test_s3_connection_tests_pass_and_fail_as_they_should(seaweedfs, monkeypatch) -> None:
    ok, message = FerryS3Hook(conn_id=S3_CONN).test_connection()
    assert ok and "credentials accepted" in message
    client = FerryS3Hook(S3_CONN).get_conn()
    assert isinstance(client, botocore.client.BaseClient) and client.meta.service_model.service_name == "s3"
    bad = json.loads(seaweedfs.connection_json())
    bad["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_BAD_S3", json.dumps(bad))
    ok, message = FerryS3Hook(conn_id="ferry_bad_s3").test_connection()
    assert not ok and "connection 'ferry_bad_s3'" in message and "not-the-secret" not in message
    ok, message = FerryS3Hook(conn_id="no_such_conn").test_connection()
    assert not ok and "Airflow connection 'no_such_conn' is not defined" in message


def test_gcs_connection_test_reaches_the_emulator(gcs_endpoint, monkeypatch) -> None:
    ok, message = FerryGCSHook(conn_id=GCS_CONN).test_connection()
    assert ok and gcs_endpoint in message
    assert isinstance(FerryGCSHook(conn_id=GCS_CONN).get_conn(), requests.Session)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FERRY_GCS_DOWN",
        json.dumps({"conn_type": "ferry_gcs", "extra": {"endpoint_url": f"http://127.0.0.1:{free_port()}"}}),
    )
    ok, message = FerryGCSHook(conn_id="ferry_gcs_down").test_connection()
    assert not ok and "cannot reach the server" in message


def test_http_connection_test_heads_its_host(http_server, monkeypatch) -> None:
    url, _, _ = http_server
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_WEB", json.dumps({"conn_type": "ferry_http", "host": url}))
    ok, message = FerryHTTPHook(conn_id="ferry_web").test_connection()
    assert ok and "answered HTTP" in message
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_NOHOST", json.dumps({"conn_type": "ferry_http"}))
    ok, message = FerryHTTPHook(conn_id="ferry_nohost").test_connection()
    assert not ok and "no host to test" in message
    assert FerryLocalHook().test_connection() == (True, "nothing to connect to")


def test_google_connection_fields_ferry_does_not_carry_out_are_refused(gcs_endpoint, monkeypatch) -> None:
    extra = {"endpoint_url": gcs_endpoint, "impersonation_chain": "sa@project.iam.gserviceaccount.com"}
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_GCS_IMP", json.dumps({"conn_type": "google_cloud_platform", "extra": extra}))
    ok, message = FerryGCSHook(conn_id="ferry_gcs_imp").test_connection()
    assert not ok and "connection 'ferry_gcs_imp': extra impersonation_chain not supported" in message
