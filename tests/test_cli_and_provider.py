"""The ``ferry`` command and Airflow's discovery of the provider, run as real subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import GCS_CONN, S3_CONN, make_gcs_bucket, make_s3_bucket
from tests.servers.seaweedfs import S3Endpoint
from tests.stores import crc32c_hex

FERRY = [sys.executable, "-m", "ferry_provider.cli"]
AIRFLOW = [os.path.join(os.path.dirname(sys.executable), "airflow")]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=os.environ.copy())


def test_stat_prints_object_info_as_json(seaweedfs: S3Endpoint) -> None:
    from ferry_provider.hooks.s3 import FerryS3Hook

    make_s3_bucket(seaweedfs, "ferry-cli")
    FerryS3Hook(S3_CONN).put("s3://ferry-cli/hello.txt", b"hello ferry", crc32c=crc32c_hex(b"hello ferry"))
    out = run([*FERRY, "stat", "s3://ferry-cli/hello.txt", "--conn", S3_CONN])
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["size"] == 11
    assert info["md5"] == hashlib.md5(b"hello ferry").hexdigest()
    assert info["crc32c"] == crc32c_hex(b"hello ferry")
    assert seaweedfs.secret_key not in out.stdout + out.stderr


def test_stat_local_file(tmp_path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"12345")
    out = run([*FERRY, "stat", str(path)])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["size"] == 5


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["stat", "ftp://host/x"], 2, "unsupported scheme 'ftp'"),
        (["stat"], 2, "the following arguments are required: url"),
        (["bogus"], 2, "invalid choice"),
        (["stat", "/nonexistent/ferry/file"], 1, "stat failed: /nonexistent/ferry/file: no such file"),
    ],
)
def test_exit_codes_and_one_line_errors(argv: list[str], code: int, message: str) -> None:
    out = run([*FERRY, *argv])
    assert out.returncode == code
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_stat_missing_object_on_s3_exits_1(seaweedfs: S3Endpoint) -> None:
    make_s3_bucket(seaweedfs, "ferry-cli")
    out = run([*FERRY, "stat", "s3://ferry-cli/absent", "--conn", S3_CONN])
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("ferry: stat failed: s3://ferry-cli/absent")


def test_airflow_lists_the_provider_and_its_connection_types() -> None:
    providers = run([*AIRFLOW, "providers", "list", "--output", "json"])
    assert providers.returncode == 0, providers.stderr
    names = {p["package_name"] for p in json.loads(providers.stdout)}
    assert "airflow-provider-ferry" in names
    hooks = run([*AIRFLOW, "providers", "hooks", "--output", "json"])
    assert hooks.returncode == 0, hooks.stderr
    by_type = {h["connection_type"]: h for h in json.loads(hooks.stdout)}
    for conn_type, cls in [
        ("ferry_s3", "FerryS3Hook"),
        ("ferry_gcs", "FerryGCSHook"),
        ("ferry_http", "FerryHTTPHook"),
        ("ferry_local", "FerryLocalHook"),
    ]:
        assert conn_type in by_type, sorted(by_type)
        assert by_type[conn_type]["class"].endswith(cls)
        assert by_type[conn_type]["package_name"] == "airflow-provider-ferry"


def test_cp_downloads_and_prints_the_manifest_row(seaweedfs: S3Endpoint, tmp_path) -> None:
    from ferry_provider.hooks.s3 import FerryS3Hook

    make_s3_bucket(seaweedfs, "ferry-cli")
    data = os.urandom(3 << 20)
    FerryS3Hook(S3_CONN).put("s3://ferry-cli/cp.bin", data, crc32c=crc32c_hex(data))
    out = run(
        [
            *FERRY,
            "cp",
            "s3://ferry-cli/cp.bin",
            str(tmp_path) + "/",
            "--conn",
            S3_CONN,
            "--part-size",
            "1MiB",
            "-j",
            "3",
            "--json",
        ]
    )
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["result"] == "OK" and row["crc32c"] == crc32c_hex(data)
    assert (tmp_path / "cp.bin").read_bytes() == data
    again = run([*FERRY, "cp", "s3://ferry-cli/cp.bin", str(tmp_path / "cp.bin"), "--conn", S3_CONN])
    assert again.returncode == 0 and again.stdout.startswith("skip: ")


def test_cp_errors(seaweedfs: S3Endpoint, tmp_path) -> None:
    make_s3_bucket(seaweedfs, "ferry-cli")
    missing = run([*FERRY, "cp", "s3://ferry-cli/absent", str(tmp_path / "x"), "--conn", S3_CONN, "--json"])
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["result"] == "error"  # the row is printed even on failure
    assert "ferry: cp failed: s3://ferry-cli/absent" in missing.stderr
    bad_size = run([*FERRY, "cp", "s3://ferry-cli/absent", str(tmp_path / "x"), "--part-size", "lots"])
    assert bad_size.returncode == 2 and "not a size: 'lots'" in bad_size.stderr
    no_source = run([*FERRY, "cp", str(tmp_path / "x"), "s3://ferry-cli/up", "--conn", S3_CONN])
    assert no_source.returncode == 1 and "x does not exist" in no_source.stderr
    onto_itself = run([*FERRY, "cp", "s3://ferry-cli/a", "s3://ferry-cli/a", "--conn", S3_CONN])
    assert onto_itself.returncode == 2 and "source and destination are the same object" in onto_itself.stderr
    mode_on_copy = run([*FERRY, "cp", "s3://ferry-cli/a", "gs://ferry-cli/b", "--mode", "0600"])
    assert mode_on_copy.returncode == 2 and "--mode does not apply to copies" in mode_on_copy.stderr
    local_move = run([*FERRY, "mv", "s3://ferry-cli/a", str(tmp_path / "y")])
    assert local_move.returncode == 2 and "ferry mv moves between object stores" in local_move.stderr


# Runs the CLI in a fresh interpreter, then fails if any Airflow module was loaded on the way.
_WITHOUT_AIRFLOW = """
import sys
from ferry_provider.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
if loaded:
    sys.exit(f"Airflow was loaded: {loaded[:5]}")
sys.exit(code)
"""


def run_without_airflow(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AWS_"))}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_AIRFLOW, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )


def test_cp_without_a_connection_uses_the_environment_and_never_loads_airflow(seaweedfs: S3Endpoint, tmp_path) -> None:
    make_s3_bucket(seaweedfs, "ferry-cli")
    env = {
        "AWS_ACCESS_KEY_ID": seaweedfs.access_key,
        "AWS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
        "AWS_ENDPOINT_URL": seaweedfs.url,
        "AWS_DEFAULT_REGION": seaweedfs.region,
    }
    data = os.urandom((6 << 20) + 1)
    (tmp_path / "up.bin").write_bytes(data)
    up = run_without_airflow(
        ["cp", str(tmp_path / "up.bin"), "s3://ferry-cli/env.bin", "--part-size", "5MiB", "--json", "-q"], env
    )
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout)["crc32c"] == crc32c_hex(data)
    down = run_without_airflow(["cp", "s3://ferry-cli/env.bin", str(tmp_path / "down.bin"), "--json", "-q"], env)
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["result"] == "OK"
    assert (tmp_path / "down.bin").read_bytes() == data
    assert seaweedfs.secret_key not in up.stdout + up.stderr + down.stdout + down.stderr
    # Without credentials in the environment the store refuses, naming where it looked.
    anonymous = run_without_airflow(
        ["stat", "s3://ferry-cli/env.bin"], {"AWS_ENDPOINT_URL": seaweedfs.url, "AWS_DEFAULT_REGION": "us-east-1"}
    )
    assert anonymous.returncode == 1
    assert "credentials from the environment" in anonymous.stderr


def test_stat_gcs_without_a_connection_reads_the_emulator_variable(gcs_endpoint: str) -> None:
    from ferry_provider.hooks.gcs import FerryGCSHook

    make_gcs_bucket(gcs_endpoint, "ferry-cli-gcs")
    FerryGCSHook(GCS_CONN).put("gs://ferry-cli-gcs/env.txt", b"from the emulator")
    out = run_without_airflow(["stat", "gs://ferry-cli-gcs/env.txt"], {"STORAGE_EMULATOR_HOST": gcs_endpoint})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["size"] == len(b"from the emulator")
