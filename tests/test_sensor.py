"""FerryArtifactSensor and its trigger against SeaweedFS and the GCS emulator."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import zlib

import awscrt.checksums
import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.hooks.factory import hook_for
from ferry_provider.hooks.gcs import FerryGCSHook
from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.sensors.artifact import FerryArtifactSensor
from ferry_provider.transfer.artifact_check import INVALID, OKAY, WAITING, ArtifactCheck
from ferry_provider.transfer.download import DownloadOptions, download
from ferry_provider.transfer.manifest import ERROR, OK, ManifestRow, TransferError
from ferry_provider.transfer.manifest_file import append_rows
from ferry_provider.triggers.artifact import FerryArtifactTrigger
from tests.conftest import GCS_CONN, S3_CONN, make_gcs_bucket, make_s3_bucket, run_dag
from tests.stores import crc32c_hex, unique_prefix

BUCKET = "ferry-sensor"


@pytest.fixture(params=["s3", "gcs"])
def store(request):
    """(hook, conn id, prefix) on each store."""
    if request.param == "s3":
        make_s3_bucket(request.getfixturevalue("seaweedfs"), BUCKET)
        return FerryS3Hook(S3_CONN), S3_CONN, f"s3://{BUCKET}/{unique_prefix()}"
    make_gcs_bucket(request.getfixturevalue("gcs_endpoint"), BUCKET)
    return FerryGCSHook(GCS_CONN), GCS_CONN, f"gs://{BUCKET}/{unique_prefix()}"


def check(url: str, conn: str, **kw) -> ArtifactCheck:
    return ArtifactCheck(url=url, conn_id=conn, **kw)


def test_missing_then_present_and_valid(store) -> None:
    hook, conn, prefix = store
    data = os.urandom(5000)
    c = check(
        prefix + "a.bin",
        conn,
        expected_digests={"crc32c": crc32c_hex(data), "sha256": hashlib.sha256(data).hexdigest()},
    )
    assert c.run(hook_for).state == WAITING
    hook.put(prefix + "a.bin", data, crc32c=crc32c_hex(data))
    result = c.run(hook_for)
    assert result.state == OKAY
    assert result.objects[0]["size"] == 5000 and result.objects[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_wrong_checksum_is_invalid_with_both_values(store) -> None:
    hook, conn, prefix = store
    data = b"the real bytes"
    hook.put(prefix + "b.bin", data, crc32c=crc32c_hex(data))
    result = check(prefix + "b.bin", conn, expected_digests={"crc32c": "deadbeef"}).run(hook_for)
    assert result.state == INVALID
    assert f"crc32c mismatch: expected deadbeef, got {crc32c_hex(data)}" in result.reason
    assert (
        check(prefix + "b.bin", conn, expected_digests={"crc32c": "deadbeef"}, wait_for_valid=True).run(hook_for).state
        == WAITING
    )
    sensor = FerryArtifactSensor(task_id="s", url=prefix + "b.bin", conn_id=conn, expected_digests={"md5": "00" * 16})
    with pytest.raises(AirflowFailException, match=f"md5 mismatch: expected {'00' * 16}, got "):
        sensor.poke({})


def test_crc32_and_crc64nvme_are_checked(store) -> None:
    hook, conn, prefix = store
    data = os.urandom(70_000)
    hook.put(prefix + "c.bin", data, crc32c=crc32c_hex(data))
    crc64 = f"{awscrt.checksums.crc64nvme(data):016x}"
    good = check(prefix + "c.bin", conn, expected_digests={"crc32": f"{zlib.crc32(data):08x}", "crc64nvme": crc64})
    assert good.run(hook_for).state == OKAY
    bad = check(prefix + "c.bin", conn, expected_digests={"crc64nvme": "0" * 16}).run(hook_for)
    assert bad.state == INVALID and f"crc64nvme mismatch: expected {'0' * 16}, got {crc64}" in bad.reason


def test_growing_object_is_accepted_only_when_stable(store) -> None:
    hook, conn, prefix = store
    url = prefix + "growing.bin"
    c = check(url, conn, stable_checks=2)
    hook.put(url, b"a" * 100)
    r1 = c.run(hook_for)
    hook.put(url, b"a" * 200)  # still being written
    r2 = c.run(hook_for, r1.observation)
    r3 = c.run(hook_for, r2.observation)
    r4 = c.run(hook_for, r3.observation)
    assert [r.state for r in (r1, r2, r3, r4)] == [WAITING, WAITING, WAITING, OKAY]
    assert "unchanged for 1 of 2" in r3.reason
    assert r4.objects[0]["size"] == 200


def test_sizes_markers_and_prefix_counts(store) -> None:
    hook, conn, prefix = store
    hook.put(prefix + "part-0.csv", b"x" * 10)
    assert check(prefix + "part-*.csv", conn, min_count=2).run(hook_for).state == WAITING
    hook.put(prefix + "part-1.csv", b"y" * 20)
    hook.put(prefix + "other.txt", b"z")
    result = check(prefix + "part-*.csv", conn, min_count=2, min_size=5).run(hook_for)
    assert result.state == OKAY and sorted(o["size"] for o in result.objects) == [10, 20]
    assert check(prefix, conn, min_count=3).run(hook_for).state == OKAY  # a prefix
    with pytest.raises(InvalidArgumentError, match=r"min_count=2: .* names one object"):
        check(prefix + "part-0.csv", conn, min_count=2)  # could never be met: refused, not waited out
    assert check(prefix + "part-0.csv", conn, expected_size=50).run(hook_for).state == WAITING  # still short
    assert check(prefix + "part-1.csv", conn, expected_size=5).run(hook_for).state == INVALID  # too big
    marker = check(prefix + "part-*.csv", conn, min_count=2, marker=prefix + "_SUCCESS")
    beside = check(prefix + "part-*.csv", conn, min_count=2, marker="_SUCCESS")  # a bare name: same folder
    assert marker.run(hook_for).state == WAITING
    waiting = beside.run(hook_for)
    assert waiting.state == WAITING and f"marker {prefix}_SUCCESS is not there yet" in waiting.reason
    hook.put(prefix + "_SUCCESS", b"")
    assert marker.run(hook_for).state == OKAY and beside.run(hook_for).state == OKAY


def test_manifest_row_gates(store, tmp_path) -> None:
    hook, conn, prefix = store
    data = os.urandom(300)
    url = prefix + "m.bin"
    hook.put(url, data, crc32c=crc32c_hex(data))
    manifest = str(tmp_path / "manifest.csv")
    c = check(url, conn, manifest=manifest)
    assert c.run(hook_for).state == WAITING  # no manifest yet
    append_rows(manifest, [ManifestRow("/src", url, "t").finish("error", "failed")])
    assert c.run(hook_for).state == WAITING  # only an error row
    ok = ManifestRow("/src", url, "t", crc32c=crc32c_hex(data))
    append_rows(manifest, [ok.finish("OK")])
    assert c.run(hook_for).state == OKAY
    wrong = str(tmp_path / "wrong.csv")
    append_rows(wrong, [ManifestRow("/src", url, "t", crc32c="00000000").finish("OK")])
    assert check(url, conn, manifest=wrong).run(hook_for).state == INVALID


def test_download_manifest_rows_gate_their_source(seaweedfs, tmp_path) -> None:
    """A download's row names the watched object as its source (s3://b/k fetched to a local path)."""
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    data = os.urandom(3 << 20)
    url = f"s3://{BUCKET}/{unique_prefix()}fetched.bin"
    hook.put(url, data, crc32c=crc32c_hex(data))
    manifest = str(tmp_path / "downloads.csv")
    with pytest.raises(TransferError) as failed:  # a real failed download of the object: an error row
        download(hook, url, str(tmp_path / "short.bin"), DownloadOptions(expected_size=1))
    assert (failed.value.row.source, failed.value.row.result) == (url, ERROR)
    append_rows(manifest, [failed.value.row])
    watch = check(url, S3_CONN, manifest=manifest)
    rejected = watch.run(hook_for)
    assert rejected.state == WAITING and f"no OK row for {url}" in rejected.reason
    sensor = FerryArtifactSensor(task_id="s", url=url, conn_id=S3_CONN, manifest=manifest)
    assert sensor.poke({}) is False

    dest = str(tmp_path / "fetched.bin")
    row = download(hook, url, dest)
    assert (row.source, row.destination, row.result, row.crc32c) == (url, dest, OK, crc32c_hex(data))
    append_rows(manifest, [row])
    accepted = watch.run(hook_for)
    assert accepted.state == OKAY and accepted.objects[0]["url"] == url
    poked = sensor.poke({})
    assert isinstance(poked, PokeReturnValue) and poked.is_done
    # The same row also vouches for the downloaded file, its destination, however the path is spelt.
    assert check("file://" + dest, None, manifest=manifest).run(hook_for).state == OKAY
    # An OK row that disagrees with the object's CRC32C still fails, whichever end matched.
    stale = str(tmp_path / "stale.csv")
    append_rows(stale, [ManifestRow(url, dest, "t", crc32c="00000000").finish(OK)])
    assert check(url, S3_CONN, manifest=stale).run(hook_for).state == INVALID


def test_sha256_streaming_is_capped() -> None:
    c = ArtifactCheck(url="/etc/hostname", expected_digests={"sha256": "00"}, sha256_max_bytes=1)

    with pytest.raises(InvalidArgumentError, match="exceed sha256_max_bytes=1"):
        c.run(hook_for)


def test_trigger_round_trips_and_yields_the_right_event(store) -> None:
    hook, conn, prefix = store
    data = os.urandom(1000)
    url = prefix + "t.bin"
    trigger = FerryArtifactTrigger(
        check(url, conn, expected_digests={"crc32c": crc32c_hex(data)}).to_dict(),
        poke_interval=0.2,
        exponential_backoff=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "ferry_provider.triggers.artifact.FerryArtifactTrigger"
    clone = FerryArtifactTrigger(**kwargs)
    assert clone.serialize() == trigger.serialize()
    threading.Timer(0.7, lambda: hook.put(url, data, crc32c=crc32c_hex(data))).start()

    async def first_event() -> dict:
        return (await asyncio.wait_for(clone.run().__anext__(), 20)).payload

    event = asyncio.run(first_event())
    assert event["status"] == "success" and event["objects"][0]["crc32c"] == crc32c_hex(data)
    bad = FerryArtifactTrigger(check(url, conn, expected_digests={"crc32c": "00000000"}).to_dict(), poke_interval=0.1)
    failed = asyncio.run(asyncio.wait_for(bad.run().__anext__(), 20)).payload
    assert failed["status"] == "failed" and "expected 00000000" in failed["reason"]


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_object_written_later_is_detected_in_each_mode(airflow_db, seaweedfs, monkeypatch, caplog, mode: str) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    hook = FerryS3Hook(S3_CONN)
    data = os.urandom(2048)
    url = f"s3://{BUCKET}/{unique_prefix()}late.bin"
    for key, value in {
        "FERRY_TEST_MODE": mode,
        "FERRY_TEST_URL": url,
        "FERRY_TEST_CONN": S3_CONN,
        "FERRY_TEST_CRC32C": crc32c_hex(data),
    }.items():
        monkeypatch.setenv(key, value)
    writer = threading.Timer(3.0, lambda: hook.put(url, data, crc32c=crc32c_hex(data)))
    writer.start()
    with caplog.at_level("INFO"):
        run = run_dag("ferry_test_sensor")
    writer.join()
    assert run.state == "success"
    objects = run.get_task_instance("wait").xcom_pull(task_ids="wait")
    assert objects[0]["url"] == url and objects[0]["crc32c"] == crc32c_hex(data)
    # The first check found nothing: the deferrable sensor must have handed over to its trigger.
    assert ("running trigger in line" in caplog.text) == (mode == "deferrable")


def run_sensor_dag(
    monkeypatch, capfd, caplog, mode: str, url: str, conn: str, crc32c: str = "", timeout: float = 60
) -> tuple[object, str]:
    """Run the sensor DAG; return its run and everything it logged (task logs go to stdout)."""
    for key, value in {
        "FERRY_TEST_MODE": mode,
        "FERRY_TEST_URL": url,
        "FERRY_TEST_CONN": conn,
        "FERRY_TEST_CRC32C": crc32c,
        "FERRY_TEST_TIMEOUT": str(timeout),
    }.items():
        monkeypatch.setenv(key, value)
    with caplog.at_level("INFO"):
        run = run_dag("ferry_test_sensor")
    out, err = capfd.readouterr()
    return run, caplog.text + out + err


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_a_missing_connection_fails_at_once_naming_it(
    airflow_db, seaweedfs, monkeypatch, capfd, caplog, mode: str
) -> None:
    """Used to be reported as "0 of 1 object ... not there yet" until the sensor's timeout."""
    url = f"s3://{BUCKET}/never.bin"
    run, log = run_sensor_dag(monkeypatch, capfd, caplog, mode, url, "no_such_conn", timeout=600)
    assert run.state == "failed"
    assert "Airflow connection 'no_such_conn' is not defined" in log
    assert "0 of 1 object" not in log and "running trigger in line" not in log


def test_a_bad_secret_fails_at_once_with_the_stores_answer(airflow_db, seaweedfs, monkeypatch, capfd, caplog) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    conn = json.loads(seaweedfs.connection_json())
    conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_FERRY_BAD_SECRET", json.dumps(conn))
    run, log = run_sensor_dag(
        monkeypatch, capfd, caplog, "poke", f"s3://{BUCKET}/never.bin", "ferry_bad_secret", timeout=600
    )
    assert run.state == "failed"
    assert "403" in log and "connection 'ferry_bad_secret'" in log
    assert "not-the-secret" not in log and "0 of 1 object" not in log


def test_a_deferred_sensor_times_out_on_time(airflow_db, seaweedfs, monkeypatch, capfd, caplog) -> None:
    """dag.test() runs triggers inline and enforces no deferral timeout: this used to poll forever."""
    make_s3_bucket(seaweedfs, BUCKET)
    url = f"s3://{BUCKET}/{unique_prefix()}never.bin"
    run, log = run_sensor_dag(monkeypatch, capfd, caplog, "deferrable", url, S3_CONN, timeout=3)
    assert run.state == "failed"
    assert "running trigger in line" in log and "sensor timed out after 3.0s" in log


def test_the_trigger_yields_a_timeout_event_at_its_deadline(store) -> None:
    _, conn, prefix = store
    trigger = FerryArtifactTrigger(check(prefix + "never.bin", conn).to_dict(), poke_interval=0.1, deadline=0)
    assert FerryArtifactTrigger(**trigger.serialize()[1]).deadline == 0
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), 20)).payload
    assert event["status"] == "timeout" and "0 of 1 object" in event["reason"]


def test_local_globs_and_prefixes_as_paths_or_file_urls(tmp_path) -> None:
    """A local listing names absolute paths: a file:// pattern must be matched as one, and a
    pattern whose text before the glob is itself a file still lists the whole folder."""
    for name in ("k", "k?", "k#", "other"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "k1").write_bytes(b"y")

    def names(url: str, **kw) -> list[str]:
        result = ArtifactCheck(url=url, **kw).run(hook_for)
        assert result.state == OKAY, result.reason
        return sorted(o["url"][len(str(tmp_path)) + 1 :] for o in result.objects)

    assert names(f"{tmp_path}/k*", min_count=3) == ["k", "k#", "k?"]
    assert names(f"file://{tmp_path}/k*", min_count=3) == ["k", "k#", "k?"]
    assert names(f"file://{tmp_path}/*/k1") == ["sub/k1"]
    assert names(f"file://{tmp_path}/", min_count=5) == ["k", "k#", "k?", "other", "sub/k1"]
    assert names(f"{tmp_path}/k[?]") == ["k?"]  # a glob character named literally
