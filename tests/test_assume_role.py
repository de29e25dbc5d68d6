"""An Amazon connection's role_arn, against SeaweedFS's own STS (AssumeRole on its S3 port).

The connection's keys may write; the role they assume may only read. So a write refused proves
the requests were signed with the role's keys and not the connection's.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError, PermissionDeniedError
from ferry_provider.hooks.s3 import FerryS3Hook
from tests.conftest import run_dag
from tests.servers.seaweedfs import S3Endpoint, start_seaweedfs
from tests.stores import crc32c_hex, unique_prefix

READER = "arn:aws:iam::role/FerryReader"
BUCKET = "ferry-roles"


def _role(name: str, policy: str) -> dict:
    return {
        "roleName": name,
        "roleArn": f"arn:aws:iam::role/{name}",
        "trustPolicy": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["sts:AssumeRole"]}],
        },
        "attachedPolicies": [policy],
    }


def _policy(name: str, actions: list[str]) -> dict:
    statement = [{"Effect": "Allow", "Action": actions, "Resource": ["*"]}]
    return {"name": name, "document": {"Version": "2012-10-17", "Statement": statement}}


IAM = {
    "sts": {
        "tokenDuration": "15s",  # sessions short enough to see them renewed
        "maxSessionLength": "12h",
        "issuer": "ferry-test-sts",
        "signingKey": base64.b64encode(b"ferry-tests-sts-signing-key-32b!").decode(),
    },
    "policies": [_policy("ReadOnly", ["s3:GetObject", "s3:ListBucket", "s3:ListAllMyBuckets"])],
    "roles": [_role("FerryReader", "ReadOnly")],
}


@pytest.fixture(scope="module")
def sts_store(workdir: str) -> Iterator[S3Endpoint]:
    """A SeaweedFS whose identity may do anything and may assume FerryReader (read only)."""
    proc, endpoint = start_seaweedfs(os.path.join(workdir, "seaweedfs-sts"), iam_config=IAM)
    try:
        yield endpoint
    finally:
        proc.stop(grace=3)


@pytest.fixture(scope="module")
def stored(sts_store: S3Endpoint) -> tuple[str, bytes]:
    """One object, written with the connection's own keys."""
    os.environ["AIRFLOW_CONN_FERRY_STS_ADMIN"] = _aws(sts_store, {})
    admin = FerryS3Hook("ferry_sts_admin")
    admin.client.create_bucket(Bucket=BUCKET)
    data = os.urandom(3 << 20)
    url = f"s3://{BUCKET}/{unique_prefix()}object.bin"
    admin.put(url, data, crc32c=crc32c_hex(data))
    yield url, data
    os.environ.pop("AIRFLOW_CONN_FERRY_STS_ADMIN")


def _aws(store: S3Endpoint, extra: dict) -> str:
    """An Amazon provider ``aws`` connection to the store, with ``extra`` added."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": store.access_key,
            "password": store.secret_key,
            "extra": {"endpoint_url": store.url, "region_name": "us-east-1", **extra},
        }
    )


def _conn(monkeypatch, conn_id: str, store: S3Endpoint, extra: dict) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", _aws(store, extra))
    return conn_id


def test_requests_are_signed_with_the_assumed_roles_keys(sts_store, stored, monkeypatch) -> None:
    url, data = stored
    hook = FerryS3Hook(_conn(monkeypatch, "as_reader", sts_store, {"role_arn": READER}))
    assert hook.read_bytes(url) == data
    assert hook.head(url).size == len(data)
    with pytest.raises(PermissionDeniedError, match=r"AccessDenied.*connection 'as_reader'"):
        hook.put(f"{url}.copy", b"the role may not write")
    # The store's identity is the role, never a key: hooks on the same role share a store.
    assert READER in hook.store_identity() and sts_store.access_key not in hook.store_identity()
    assert hook.same_store(FerryS3Hook("as_reader"))
    assert not hook.same_store(FerryS3Hook("ferry_sts_admin"))


def test_role_keys_are_renewed_before_they_expire_and_not_before_each_request(sts_store, stored, monkeypatch) -> None:
    """The store issues 15-second sessions: renewal comes at a third of the life left (botocore's
    own 15 minutes would renew before every request), so a transfer outlives its sessions."""
    url, data = stored
    hook = FerryS3Hook(_conn(monkeypatch, "short_session", sts_store, {"role_arn": READER}))
    signer_keys = hook.native_client()._request_signer._credentials  # what botocore signs with
    first = signer_keys.get_frozen_credentials().access_key
    for _ in range(5):
        assert hook.read_bytes(url) == data
    assert signer_keys.get_frozen_credentials().access_key == first  # 10 s left: no renewal yet
    time.sleep(11)  # into the last third of the session
    assert hook.read_bytes(url) == data
    assert signer_keys.get_frozen_credentials().access_key != first


def test_no_key_reaches_a_debug_log(sts_store, stored, monkeypatch, caplog) -> None:
    """botocore logs AssumeRole's answer and request headers at DEBUG, urllib3 the presigned URLs."""
    url, data = stored
    hook = FerryS3Hook(_conn(monkeypatch, "debug_role", sts_store, {"role_arn": READER}))
    with caplog.at_level("DEBUG"):
        assert hook.read_bytes(url) == data
        keys = hook.native_client()._request_signer._credentials.get_frozen_credentials()
    assert "AssumeRole" in caplog.text and "Signature=***" in caplog.text  # the loggers did speak
    for secret in (keys.secret_key, keys.token, sts_store.secret_key):
        assert secret not in caplog.text


def test_sts_refusing_the_connections_own_keys_names_the_reason(sts_store, stored, monkeypatch) -> None:
    conn = json.loads(_aws(sts_store, {"role_arn": READER}))
    conn["password"] = "not-the-secret-at-all"
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_SECRET", json.dumps(conn))
    with pytest.raises(PermissionDeniedError, match=r"cannot assume arn:aws:iam::role/FerryReader: SignatureDoes"):
        FerryS3Hook("wrong_secret").head(stored[0])


def test_uri_form_connection_with_json_string_extras(sts_store, stored, monkeypatch) -> None:
    url, data = stored
    query = urlencode(
        {
            "role_arn": READER,
            "assume_role_kwargs": json.dumps({"RoleSessionName": "from-uri"}),
            "service_config": json.dumps({name: {"endpoint_url": sts_store.url} for name in ("sts", "s3")}),
            "region_name": "us-east-1",
        }
    )
    secret = quote(sts_store.secret_key, safe="")
    monkeypatch.setenv("AIRFLOW_CONN_ROLE_URI", f"aws://{sts_store.access_key}:{secret}@/?{query}")
    assert FerryS3Hook("role_uri").read_bytes(url) == data


def test_a_role_sts_refuses_fails_at_once_naming_role_and_connection(sts_store, stored, monkeypatch) -> None:
    url, _ = stored
    hook = FerryS3Hook(_conn(monkeypatch, "no_such_role", sts_store, {"role_arn": "arn:aws:iam::role/Nope"}))
    with pytest.raises(PermissionDeniedError) as caught:
        hook.head(url)
    message = str(caught.value)
    assert message.startswith("connection 'no_such_role': cannot assume arn:aws:iam::role/Nope: AccessDenied")
    assert sts_store.secret_key not in message and sts_store.access_key not in message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"role_arn": READER, "assume_role_method": "assume_role_with_saml"},
            "extra assume_role_method='assume_role_with_saml' not supported by Ferry",
        ),
        ({"role_arn": READER, "assume_role_kwargs": "{not json"}, "extra assume_role_kwargs must be a JSON object"),
        ({"role_arn": READER, "assume_role_kwargs": {"DurationSeconds": 100}}, "assume_role_kwargs: .*DurationSeconds"),
        ({"role_arn": READER, "assume_role_kwargs": {"RoleArn": READER}}, "not assume_role_kwargs.RoleArn"),
        ({"role_arn": "FerryReader"}, "role_arn must be an IAM role ARN"),
        ({"external_id": "x"}, "extra external_id given without role_arn"),
        ({"config_kwargs": {"retries": {}}}, "extra config_kwargs not supported by Ferry"),
        ({"service_config": "[1]"}, "extra service_config must be a JSON object"),
        ({"role_arn": READER, "service_config": {"sts": {"endpoint_url": "not a url"}}}, "STS endpoint .*not a url"),
    ],
)
def test_bad_role_settings_are_refused_by_name(sts_store, stored, monkeypatch, extra: dict, message: str) -> None:
    hook = FerryS3Hook(_conn(monkeypatch, "bad_role", sts_store, extra))
    with pytest.raises(InvalidArgumentError, match=rf"(?s)connection 'bad_role': .*{message}"):
        hook.head(stored[0])


def test_a_download_task_on_a_role_connection(airflow_db, sts_store, stored, monkeypatch, tmp_path) -> None:
    url, data = stored
    dest = tmp_path / "out.bin"
    monkeypatch.setenv("FERRY_TEST_SOURCE", url)
    monkeypatch.setenv("FERRY_TEST_DEST", str(dest))
    monkeypatch.setenv("FERRY_TEST_CONN", _conn(monkeypatch, "dag_role", sts_store, {"role_arn": READER}))
    monkeypatch.setenv("FERRY_TEST_MANIFEST", str(tmp_path / "manifest.csv"))
    run = run_dag("ferry_test_download")
    assert run.state == "success"
    assert dest.read_bytes() == data
