"""Bad input and failures: each a clear Ferry error naming the URL or connection, no secrets."""

from __future__ import annotations

import json
import os

import pytest

from ferry_provider.hooks.errors import (
    InvalidArgumentError,
    MissingConnectionError,
    NotFoundError,
    PermissionDeniedError,
    RangeNotSupportedError,
    TransientError,
)
from ferry_provider.hooks.factory import hook_for
from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.http import FerryHTTPHook
from ferry_provider.hooks.local import FerryLocalHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.hooks.url import parse_url
from tests.conftest import make_s3_bucket
from tests.servers.process import free_port
from tests.servers.seaweedfs import S3Endpoint


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/file", "unsupported scheme 'ftp'"),
        ("s3:///key", "has no bucket"),
        ("gs://Bad_Bucket/key", "not a valid bucket name"),
        ("file://remote-host/etc/passwd", "must not name a host"),
        ("https:///path", "has no host"),
        ("", "non-empty string"),
        ("s3://bucket/" + "k" * 1025, "longer than 1024 bytes"),
    ],
)
def test_malformed_urls_are_named_in_the_error(url: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_url(url)


def test_url_forms() -> None:
    assert parse_url("s3://b-1/a/b?c#d").key == "a/b?c#d"  # legal key characters are kept
    assert parse_url("gs://bucket.with.dots/x").bucket == "bucket.with.dots"
    assert parse_url("relative/file").path == os.path.abspath("relative/file")
    assert parse_url("file:///tmp/a%20b").path == "/tmp/a b"


def test_bucket_only_url_names_no_object() -> None:
    with pytest.raises(InvalidArgumentError, match="names no object"):
        FerryS3Hook("unused").head("s3://bucket-only")
    with pytest.raises(InvalidArgumentError, match="names no object"):
        FerryGCSHook("unused").head("gs://bucket/folder/")


def test_hook_refuses_another_scheme() -> None:
    with pytest.raises(InvalidArgumentError, match="serves s3 URLs"):
        FerryS3Hook().head("gs://bucket/key")


def test_factory_picks_the_hook_by_scheme(tmp_path) -> None:
    assert isinstance(hook_for("s3://b-1/k"), FerryS3Hook)
    assert isinstance(hook_for("gs://b-1/k", "my_gcp"), FerryGCSHook)
    assert isinstance(hook_for("https://example.invalid/x"), FerryHTTPHook)
    assert isinstance(hook_for(str(tmp_path / "x")), FerryLocalHook)
    assert hook_for("gs://b-1/k", "my_gcp").gcp_conn_id == "my_gcp"  # type: ignore[attr-defined]


def test_named_connection_that_does_not_exist() -> None:
    with pytest.raises(MissingConnectionError, match=r"connection 'no_such_conn' is not defined.*AIRFLOW_CONN_NO_SUCH"):
        FerryS3Hook("no_such_conn").head("s3://bucket/key")
    with pytest.raises(MissingConnectionError, match="no_such_conn"):
        FerryGCSHook("no_such_conn").head("gs://bucket/key")


def test_missing_default_connection_falls_back_to_the_default_chain(monkeypatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    with pytest.raises(PermissionDeniedError, match="no AWS credentials found"):
        FerryS3Hook().head("s3://bucket/key")


def _conn(monkeypatch, conn_id: str, value: dict) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    return conn_id


def test_wrong_s3_secret_is_permission_denied_without_the_secret(seaweedfs: S3Endpoint, monkeypatch) -> None:
    make_s3_bucket(seaweedfs, "ferry-errors")
    secret = "WrongSecretValue12345"
    conn = _conn(
        monkeypatch,
        "bad_secret",
        {
            "conn_type": "aws",
            "login": seaweedfs.access_key,
            "password": secret,
            "extra": {"endpoint_url": seaweedfs.url, "region_name": "us-east-1"},
        },
    )
    with pytest.raises(PermissionDeniedError) as err:
        FerryS3Hook(conn).head("s3://ferry-errors/key")
    assert "bad_secret" in str(err.value)
    assert secret not in str(err.value)


def test_amazon_provider_uri_connection_is_accepted(seaweedfs: S3Endpoint, monkeypatch) -> None:
    """An Amazon-provider ``aws`` connection in URI form, secret with '/' and '+' escaped."""
    from urllib.parse import quote

    make_s3_bucket(seaweedfs, "ferry-errors")
    uri = (
        f"aws://{quote(seaweedfs.access_key, safe='')}:{quote(seaweedfs.secret_key, safe='')}@"
        f"?endpoint_url={quote(seaweedfs.url, safe='')}&region_name=us-east-1"
    )
    monkeypatch.setenv("AIRFLOW_CONN_AWS_URI", uri)
    hook = FerryS3Hook("aws_uri")
    hook.put("s3://ferry-errors/uri-conn", b"hello")
    assert hook.head("s3://ferry-errors/uri-conn").size == 5


def test_unreachable_s3_endpoint_is_transient_and_named(monkeypatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    conn = _conn(
        monkeypatch,
        "dead_s3",
        {
            "conn_type": "ferry_s3",
            "login": "k",
            "password": "secret-xyz",
            "extra": {"endpoint_url": url, "connect_timeout": 1},
        },
    )
    with pytest.raises(TransientError, match="cannot reach the S3 endpoint") as err:
        FerryS3Hook(conn).head("s3://bucket/key")
    assert "s3://bucket/key" in str(err.value)
    assert "secret-xyz" not in str(err.value)


def test_unreachable_gcs_endpoint_is_transient(monkeypatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    conn = _conn(monkeypatch, "dead_gcs", {"conn_type": "ferry_gcs", "extra": {"endpoint_url": url}})
    with pytest.raises(TransientError, match=r"gs://bucket/key: cannot reach the server"):
        FerryGCSHook(conn).head("gs://bucket/key")


def test_bad_gcs_key_file_names_the_connection(monkeypatch, tmp_path) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "private_key": "SECRET-MATERIAL"}')
    conn = _conn(monkeypatch, "bad_key", {"conn_type": "google_cloud_platform", "extra": {"key_path": str(key)}})
    with pytest.raises(PermissionDeniedError, match="connection 'bad_key': cannot load Google credentials") as err:
        FerryGCSHook(conn).head("gs://bucket/key")
    assert "SECRET-MATERIAL" not in str(err.value)


def test_http_server_that_ignores_range(http_server) -> None:
    url, root, _ = http_server
    data = os.urandom(3000)
    with open(os.path.join(root, "plain.bin"), "wb") as f:
        f.write(data)
    hook = FerryHTTPHook()
    with pytest.raises(RangeNotSupportedError):
        hook.read_bytes(f"{url}/norange/plain.bin", 100, 200)
    assert hook.read_bytes(f"{url}/norange/plain.bin") == data  # one stream still works


def test_http_head_refused_falls_back_to_a_one_byte_get(http_server) -> None:
    url, root, _ = http_server
    with open(os.path.join(root, "nohead.bin"), "wb") as f:
        f.write(b"z" * 12345)
    with open(os.path.join(root, "empty.bin"), "wb"):
        pass
    hook = FerryHTTPHook()
    info = hook.head(f"{url}/nohead/nohead.bin")
    assert info.size == 12345
    assert info.etag == hook.head(f"{url}/nohead.bin").etag
    assert hook.head(f"{url}/nohead/empty.bin").size == 0


def test_http_credentials_go_only_to_the_connection_host(http_server, monkeypatch) -> None:
    url, root, _ = http_server
    with open(os.path.join(root, "auth.bin"), "wb") as f:
        f.write(b"a")
    conn = _conn(
        monkeypatch, "web", {"conn_type": "ferry_http", "host": "other.example", "login": "u", "password": "p4ss"}
    )
    hook = FerryHTTPHook(conn)
    assert hook._get("GET", f"{url}/auth.bin").request.headers.get("Authorization") is None
    conn2 = _conn(
        monkeypatch,
        "web2",
        {"conn_type": "ferry_http", "host": "127.0.0.1", "password": "tok", "extra": {"auth_type": "bearer"}},
    )
    sent = FerryHTTPHook(conn2)._get("GET", f"{url}/auth.bin").request.headers.get("Authorization")
    assert sent == "Bearer tok"


def test_http_errors_never_show_url_credentials(http_server) -> None:
    url, _, _ = http_server
    secret_url = url.replace("http://", "http://user:hunter2@") + "/missing.bin"
    with pytest.raises(NotFoundError) as err:
        FerryHTTPHook().head(secret_url)
    assert "hunter2" not in str(err.value)
    assert "missing.bin" in str(err.value)


def test_local_directory_is_not_an_object(tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        FerryLocalHook().head(str(tmp_path))


def test_local_put_leaves_nothing_behind_on_a_short_stream(tmp_path) -> None:
    import io

    dest = tmp_path / "out.bin"
    with pytest.raises(InvalidArgumentError, match="body ended after 3 of 10 bytes"):
        FerryLocalHook().put(str(dest), io.BytesIO(b"abc"), size=10)
    assert os.listdir(tmp_path) == []


def test_local_listing_skips_ferry_work_files(tmp_path) -> None:
    for name in [
        "data.bin",
        "data.bin.ferry-tmp",
        "data.bin.ferry-tracker",
        "src.bin.0123.ferry-upload-tracker",
        "out.bin.ferry-put-abc",
        ".ferry-tracker-xyz",
        "data.bin.ferry-lock",
        "data.bin.ferry-tracker.new",
    ]:
        (tmp_path / name).write_bytes(b"x")
    assert [os.path.basename(i.url) for i in FerryLocalHook().list(str(tmp_path) + "/")] == ["data.bin"]


def test_amazon_connection_fields_are_honoured_or_refused_by_name(seaweedfs: S3Endpoint, monkeypatch) -> None:
    """service_config.s3 (endpoint, region) is honoured; config_kwargs and a missing profile are
    refused naming the field, where they used to be ignored (one request went to real AWS).
    role_arn is carried out: tests/test_assume_role.py."""
    make_s3_bucket(seaweedfs, "ferry-errors")
    base = {"conn_type": "aws", "login": seaweedfs.access_key, "password": seaweedfs.secret_key}
    nested = _conn(
        monkeypatch,
        "svc_cfg",
        {**base, "extra": {"service_config": {"s3": {"endpoint_url": seaweedfs.url, "region_name": "us-east-1"}}}},
    )
    FerryS3Hook(nested).put("s3://ferry-errors/svc-cfg", b"via service_config")
    assert FerryS3Hook(nested).read_bytes("s3://ferry-errors/svc-cfg") == b"via service_config"
    tuned = _conn(
        monkeypatch, "with_config", {**base, "extra": {"endpoint_url": seaweedfs.url, "config_kwargs": {"x": 1}}}
    )
    with pytest.raises(InvalidArgumentError, match=r"'with_config': extra config_kwargs not supported"):
        FerryS3Hook(tuned).head("s3://ferry-errors/svc-cfg")
    profile = _conn(monkeypatch, "with_profile", {**base, "extra": {"profile_name": "no-such-profile-here"}})
    with pytest.raises(InvalidArgumentError, match=r"connection 'with_profile': .*no-such-profile-here"):
        FerryS3Hook(profile).head("s3://ferry-errors/svc-cfg")
