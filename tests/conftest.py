"""Session fixtures: an isolated Airflow home and the real local servers the tests talk to."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import tempfile

from tests.servers.process import interrupt_on_sigterm

# Airflow reads its configuration on first import: isolate it before anything imports airflow.
_HOME = tempfile.mkdtemp(prefix="ferry-airflow-home-")
# Removed at exit, after Airflow's own exit handlers (registered later, so run earlier), also
# when the run is interrupted: Ctrl-C, or SIGTERM, which unwinds the same way.
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
interrupt_on_sigterm()
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dags")
os.environ.pop("STORAGE_EMULATOR_HOST", None)
# Never let boto3's credential chain or google-auth probe cloud metadata servers off this machine.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["GCE_METADATA_HOST"] = "127.0.0.1:9"
os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402

from ferry_provider.hooks.s3 import FerryS3Hook  # noqa: E402
from tests.servers.fault_proxy import FaultProxy  # noqa: E402
from tests.servers.gcs_emulator import start_gcs_emulator  # noqa: E402
from tests.servers.http_range_server import start_http_server  # noqa: E402
from tests.servers.seaweedfs import S3Endpoint, start_seaweedfs  # noqa: E402
from tests.stores import crc32c_hex, unique_prefix  # noqa: E402

S3_CONN = "ferry_test_s3"
S3_B_CONN = "ferry_test_s3_b"  # a second SeaweedFS with other credentials: another store
S3_B_KEYS = ("FERRYTESTKEYB", "ferry/test+secret/b")
GCS_CONN = "ferry_test_gcs"
GCS_PROJECT = "ferry-test"
PROXY_BUCKET = "ferry-proxied"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("servers"))


@pytest.fixture(scope="session")
def seaweedfs(workdir: str) -> Iterator[S3Endpoint]:
    proc, endpoint = start_seaweedfs(os.path.join(workdir, "seaweedfs"))
    os.environ[f"AIRFLOW_CONN_{S3_CONN.upper()}"] = endpoint.connection_json()
    try:
        yield endpoint
    finally:
        proc.stop(grace=3)  # SeaweedFS takes 20-30 s to exit on SIGTERM; its data is throwaway


@pytest.fixture(scope="session")
def seaweedfs_b(workdir: str) -> Iterator[S3Endpoint]:
    """Another SeaweedFS, signing with other keys: what ``seaweedfs``'s credentials cannot reach.
    Started only for the tests that ask for it."""
    proc, endpoint = start_seaweedfs(os.path.join(workdir, "seaweedfs-b"), *S3_B_KEYS)
    os.environ[f"AIRFLOW_CONN_{S3_B_CONN.upper()}"] = endpoint.connection_json()
    try:
        yield endpoint
    finally:
        os.environ.pop(f"AIRFLOW_CONN_{S3_B_CONN.upper()}", None)
        proc.stop(grace=3)


@pytest.fixture(scope="session")
def gcs_endpoint(workdir: str) -> Iterator[str]:
    path = os.path.join(workdir, "gcs")
    os.makedirs(path)
    proc, url = start_gcs_emulator(path)
    os.environ[f"AIRFLOW_CONN_{GCS_CONN.upper()}"] = json.dumps(
        {"conn_type": "ferry_gcs", "extra": {"endpoint_url": url, "anonymous": True}}
    )
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def http_server(workdir: str) -> Iterator[tuple[str, str, str]]:
    """(base URL, document root, access log path)."""
    root = os.path.join(workdir, "http-root")
    os.makedirs(root)
    proc, url, log = start_http_server(root, workdir)
    try:
        yield url, root, log
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A real Airflow metadata database (SQLite) for ``dag.test()``."""
    from airflow.utils import db

    db.initdb()


def run_dag(dag_id: str) -> object:
    """Parse ``tests/dags`` and run one DAG in-process; return its DagRun."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id].test()


@pytest.fixture
def state_dir(tmp_path) -> str:
    """Trackers and manifest spools go here, never to ~/.local/state."""
    path = tmp_path / "state"
    path.mkdir()
    return str(path)


@pytest.fixture
def s3_proxy(seaweedfs: S3Endpoint, monkeypatch):
    """(hook through the proxy, direct hook, proxy): the same S3 store, one path with faults."""
    make_s3_bucket(seaweedfs, PROXY_BUCKET)
    proxy = FaultProxy(seaweedfs.url)
    url = proxy.start()
    conn = json.loads(seaweedfs.connection_json())
    conn["extra"]["endpoint_url"] = url
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_PROXY_S3", json.dumps(conn))
    yield FerryS3Hook("ferry_proxy_s3"), FerryS3Hook(S3_CONN), proxy
    proxy.stop()


def put_object(hook: FerryS3Hook, size: int, name: str = "obj") -> tuple[str, bytes]:
    data = os.urandom(size)
    url = f"s3://{PROXY_BUCKET}/{unique_prefix()}{name}"
    hook.put(url, data, crc32c=crc32c_hex(data))
    return url, data


def make_s3_bucket(endpoint: S3Endpoint, name: str) -> None:
    client = FerryS3Hook(S3_CONN).client
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=name)


def make_gcs_bucket(endpoint: str, name: str) -> None:
    resp = requests.post(f"{endpoint}/storage/v1/b", params={"project": GCS_PROJECT}, json={"name": name}, timeout=10)
    assert resp.status_code in (200, 409), resp.text


def bucket_hooks(bucket: str) -> tuple[object, object]:
    """A module's ``s3`` and ``gcs`` fixtures: the test connections' hooks, with ``bucket`` made
    on SeaweedFS and on the GCS emulator (``s3, gcs = bucket_hooks(BUCKET)``)."""
    from ferry_provider.hooks.gcs import FerryGCSHook

    @pytest.fixture(scope="module")
    def s3(seaweedfs: S3Endpoint) -> FerryS3Hook:
        make_s3_bucket(seaweedfs, bucket)
        return FerryS3Hook(S3_CONN)

    @pytest.fixture(scope="module")
    def gcs(gcs_endpoint: str) -> FerryGCSHook:
        make_gcs_bucket(gcs_endpoint, bucket)
        return FerryGCSHook(GCS_CONN)

    return s3, gcs
