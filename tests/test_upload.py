"""Composite upload against SeaweedFS and the GCS emulator, with faults through a real proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError, PreconditionFailedError
from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.cleanup import find_leftovers, remove_leftovers
from ferry_provider.transfer.manifest import OK, SKIP, TransferError
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.upload import UploadOptions, upload
from tests.conftest import GCS_CONN, PROXY_BUCKET, S3_CONN, make_gcs_bucket, make_s3_bucket
from tests.stores import MiB, crc32c_hex, unique_prefix

BUCKET = "ferry-upload"
FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.05, max_wait=0.2)
S3_PART = 5 * MiB  # S3's minimum: 5 MiB + 1 is two parts
GCS_PART = 1 * MiB


def opts(**kw) -> UploadOptions:
    kw.setdefault("parallelism", 4)
    kw.setdefault("retry", FAST_RETRY)
    return UploadOptions(**kw)


@pytest.fixture(params=["s3", "gcs"])
def target(request):
    """(hook, destination prefix, part size) for each store that takes uploads."""
    if request.param == "s3":
        make_s3_bucket(request.getfixturevalue("seaweedfs"), BUCKET)
        return FerryS3Hook(S3_CONN), f"s3://{BUCKET}/{unique_prefix()}", S3_PART
    make_gcs_bucket(request.getfixturevalue("gcs_endpoint"), BUCKET)
    return FerryGCSHook(GCS_CONN), f"gs://{BUCKET}/{unique_prefix()}", GCS_PART


def write(tmp_path, data: bytes, name: str = "src.bin") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def assert_no_leftovers(hook, bucket_url: str) -> None:
    assert find_leftovers(hook, bucket_url, older_than=__import__("datetime").timedelta(0)) == []


@pytest.mark.parametrize("size", [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1], ids=["0", "1", "5MiB-1", "5MiB", "5MiB+1"])
def test_round_trip_and_stored_checksum(target, tmp_path, size: int) -> None:
    hook, prefix, part = target
    data = os.urandom(size)
    url = prefix + "obj.bin"
    row = upload(
        hook,
        write(tmp_path, data),
        url,
        opts(part_size=part, content_type="application/x-ferry", metadata={"origin": "test"}),
    )
    assert row.result == OK and row.source_size == size
    assert hook.read_bytes(url) == data
    info = hook.head(url)
    assert info.crc32c == crc32c_hex(data) == row.crc32c  # the store keeps a full-object CRC32C
    assert info.content_type == "application/x-ferry" and info.metadata.get("origin") == "test"
    if size > part and isinstance(hook, FerryS3Hook):
        assert info.checksum_type == "FULL_OBJECT" and row.upload_id
        assert "2 parts; stored crc32c verified" in row.description
    assert_no_leftovers(hook, prefix)


def test_large_file_and_a_compose_tree(target, tmp_path) -> None:
    hook, prefix, _ = target
    size = 200 * MiB + 123
    data = os.urandom(size)
    url = prefix + "large.bin"
    # GCS: 5 MiB components make 41 of them, more than one compose takes: a tree of composes.
    row = upload(hook, write(tmp_path, data), url, opts(part_size=5 * MiB))
    assert row.result == OK and "41 parts" in row.description
    assert hook.head(url).crc32c == crc32c_hex(data)
    assert hook.read_bytes(url) == data
    assert_no_leftovers(hook, prefix)


def test_identical_destination_is_skipped_and_no_clobber_respected(target, tmp_path) -> None:
    hook, prefix, part = target
    data = os.urandom(2 * part + 10)
    src = write(tmp_path, data)
    url = prefix + "same.bin"
    assert upload(hook, src, url, opts(part_size=part)).result == OK
    again = upload(hook, src, url, opts(part_size=part))
    assert again.result == SKIP and again.bytes_transferred == 0 and "identical" in again.description
    other = write(tmp_path, os.urandom(100), "other.bin")
    kept = upload(hook, other, url, opts(no_clobber=True))
    assert kept.result == SKIP and "no_clobber" in kept.description
    assert hook.read_bytes(url) == data


def test_no_clobber_is_enforced_by_the_store_at_commit(seaweedfs, tmp_path) -> None:
    """The existence check and the write race; S3's If-None-Match closes the gap."""
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    url = f"s3://{BUCKET}/{unique_prefix()}race.bin"
    upload_id = hook.create_multipart(url)
    part = hook.upload_part(url, upload_id, 1, b"x" * 100, size=100)
    hook.put(url, b"the other writer won")
    with pytest.raises(PreconditionFailedError):
        hook.complete_multipart(url, upload_id, [part], if_absent=True)
    assert hook.read_bytes(url) == b"the other writer won"
    hook.abort_multipart(url, upload_id)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
    ],
)
def test_bad_sources(seaweedfs, tmp_path, setup: str, message: str) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    path = tmp_path / "thing"
    if setup == "directory":
        path.mkdir()
    with pytest.raises(TransferError, match=message):
        upload(FerryS3Hook(S3_CONN), str(path), f"s3://{BUCKET}/x", opts())


def test_part_size_below_the_store_minimum_names_both_values(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    src = write(tmp_path, os.urandom(3 * MiB))
    with pytest.raises(TransferError, match="part_size 1048576 is below the store's minimum part size of 5242880") as e:
        upload(FerryS3Hook(S3_CONN), src, f"s3://{BUCKET}/x", opts(part_size=MiB))
    assert isinstance(e.value.cause, InvalidArgumentError) and e.value.row.result == "error"  # the CLI's exit 2


# -- faults -----------------------------------------------------------------------------------
def test_injected_failure_without_resume_leaves_no_orphans(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    src = write(tmp_path, os.urandom(4 * S3_PART))
    proxy.faults.error_methods, proxy.faults.error_status, proxy.faults.error_times = ("PUT",), 500, 1000
    proxy.faults.error_after_requests = 2  # two parts land, then every PUT fails
    with pytest.raises(TransferError, match="gave up after 3 attempts"):
        upload(via_proxy, src, prefix + "doomed.bin", opts(part_size=S3_PART, parallelism=1, resume=False))
    assert list(direct.list_multipart_uploads(prefix)) == []
    assert [n for n in os.listdir(tmp_path) if "tracker" in n] == []


def test_injected_failure_on_gcs_leaves_no_components(gcs_endpoint, tmp_path, monkeypatch) -> None:
    from tests.servers.fault_proxy import FaultProxy

    make_gcs_bucket(gcs_endpoint, BUCKET)
    proxy = FaultProxy(gcs_endpoint)
    monkeypatch.setenv(
        "AIRFLOW_CONN_GCS_PROXY",
        json.dumps({"conn_type": "ferry_gcs", "extra": {"endpoint_url": proxy.start(), "anonymous": True}}),
    )
    try:
        prefix = f"gs://{BUCKET}/{unique_prefix()}"
        src = write(tmp_path, os.urandom(6 * GCS_PART))
        proxy.faults.error_methods, proxy.faults.error_status, proxy.faults.error_times = ("POST",), 503, 1000
        proxy.faults.error_after_requests = 3
        with pytest.raises(TransferError):
            upload(
                FerryGCSHook("gcs_proxy"),
                src,
                prefix + "doomed.bin",
                opts(part_size=GCS_PART, parallelism=1, resume=False),
            )
        assert_no_leftovers(FerryGCSHook(GCS_CONN), f"gs://{BUCKET}/")
    finally:
        proxy.stop()


def test_source_changing_during_upload_publishes_nothing(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    path = tmp_path / "growing.bin"
    path.write_bytes(os.urandom(4 * S3_PART))
    proxy.faults.request_delay = 0.2
    grower = threading.Timer(0.3, lambda: path.open("ab").write(b"more"))
    grower.start()
    with pytest.raises(TransferError, match="changed while uploading"):
        upload(via_proxy, str(path), prefix + "mixed.bin", opts(part_size=S3_PART, parallelism=1))
    grower.join()
    assert list(direct.list_multipart_uploads(prefix)) == []
    assert list(direct.list(prefix)) == []


def test_sigkill_then_rerun_sends_only_the_missing_parts(s3_proxy, tmp_path) -> None:
    via_proxy, direct, proxy = s3_proxy
    prefix = f"s3://{PROXY_BUCKET}/{unique_prefix()}"
    data = os.urandom(10 * S3_PART)
    src = write(tmp_path, data, "big.bin")
    url = prefix + "big.bin"
    proxy.faults.request_delay = 0.4
    argv = [
        sys.executable,
        "-m",
        "ferry_provider.cli",
        "cp",
        src,
        url,
        "--conn",
        "ferry_proxy_s3",
        "-j",
        "2",
        "--part-size",
        "5MiB",
        "--quiet",
    ]
    child = subprocess.Popen(argv, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    tracker = None
    while time.monotonic() < deadline:
        found = [n for n in os.listdir(tmp_path) if n.endswith(".ferry-upload-tracker")]
        if found:
            tracker = tmp_path / found[0]
            try:
                if len(Checkpoint.peek(str(tracker)).parts) >= 3:
                    break
            except ValueError:
                pass
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert tracker is not None, child.stderr.read().decode()
    state = Checkpoint.peek(str(tracker))
    done = set(state.parts)
    assert len(done) >= 3 and oct(tracker.stat().st_mode & 0o777) == "0o600"
    time.sleep(1.5)  # the dead client's in-flight PUTs still drain through the proxy's delay
    proxy.reset()
    row = upload(via_proxy, src, url, opts(part_size=S3_PART, parallelism=2))
    sent = sorted(
        int(r.path.split("partNumber=")[1].split("&")[0])
        for r in proxy.records
        if r.method == "PUT" and "partNumber=" in r.path
    )
    assert sent == [n + 1 for n in range(10) if n not in done]  # only the missing parts went up
    assert row.upload_id == state.extra["upload_id"] and f"resumed: {len(done)} part(s)" in row.description
    assert direct.read_bytes(url) == data and direct.head(url).crc32c == crc32c_hex(data)
    assert list(direct.list_multipart_uploads(prefix)) == []
    assert not tracker.exists()


def test_cleanup_finds_and_removes_leftovers(seaweedfs, gcs_endpoint, tmp_path) -> None:
    from datetime import timedelta

    make_s3_bucket(seaweedfs, BUCKET)
    make_gcs_bucket(gcs_endpoint, BUCKET)
    s3, gcs = FerryS3Hook(S3_CONN), FerryGCSHook(GCS_CONN)
    prefix = f"s3://{BUCKET}/{unique_prefix()}"
    upload_id = s3.create_multipart(prefix + "abandoned.bin")
    gcs.put(f"gs://{BUCKET}/.ferry/tmp/deadbeef_0123/00000", b"component")
    s3_left = find_leftovers(s3, prefix, timedelta(0))
    assert [(x.kind, x.upload_id) for x in s3_left] == [("multipart-upload", upload_id)]
    assert find_leftovers(s3, prefix, timedelta(hours=1)) == []  # too young to be stale
    gcs_left = find_leftovers(gcs, f"gs://{BUCKET}/", timedelta(0))
    assert [x.url for x in gcs_left] == [f"gs://{BUCKET}/.ferry/tmp/deadbeef_0123/00000"]
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "ferry_provider.cli",
            "cleanup",
            prefix,
            "--conn",
            S3_CONN,
            "--older-than",
            "0",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert dry.returncode == 0 and json.loads(dry.stdout)["upload_id"] == upload_id
    assert len(find_leftovers(s3, prefix, timedelta(0))) == 1  # dry run removed nothing
    assert remove_leftovers(s3, s3_left) == [] and remove_leftovers(gcs, gcs_left) == []
    assert find_leftovers(s3, prefix, timedelta(0)) == []
    assert find_leftovers(gcs, f"gs://{BUCKET}/", timedelta(0)) == []
