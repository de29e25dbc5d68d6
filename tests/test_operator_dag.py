"""FerryDownloadOperator in a real DAG run (dag.test() on a real metadata DB)."""

from __future__ import annotations

import pytest

from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.operators.download import FerryDownloadOperator
from ferry_provider.operators.upload import FerryUploadOperator
from ferry_provider.transfer.manifest_file import parse_rows
from tests.conftest import make_s3_bucket, put_object, run_dag
from tests.stores import MiB, crc32c_hex


def test_airflow_retry_resumes_from_the_tracker(airflow_db, s3_proxy, tmp_path, monkeypatch) -> None:
    _, direct, proxy = s3_proxy
    url, data = put_object(direct, 8 * MiB)
    dest = tmp_path / "out" / "dag.bin"
    manifest = tmp_path / "manifest.csv"
    monkeypatch.setenv("FERRY_TEST_SOURCE", url)
    monkeypatch.setenv("FERRY_TEST_DEST", str(dest))
    monkeypatch.setenv("FERRY_TEST_CONN", "ferry_proxy_s3")
    monkeypatch.setenv("FERRY_TEST_MANIFEST", str(manifest))
    # Try 1: three parts arrive, then every request fails until its two attempts are spent.
    proxy.faults.error_after_requests, proxy.faults.error_status, proxy.faults.error_times = 3, 500, 2
    run = run_dag("ferry_test_download")
    assert run.state == "success"
    ti = run.get_task_instance("download")
    row = ti.xcom_pull(task_ids="download")
    assert row["result"] == "OK"
    assert row["description"] == "verified size and crc32c; resumed: 3 part(s) reused (re-hashed on disk)"
    assert row["bytes_transferred"] == 5 * MiB
    assert row["crc32c"] == crc32c_hex(data)
    assert dest.read_bytes() == data
    with open(manifest) as f:
        results = [r["result"] for r in parse_rows(f.read())]
    assert results == ["error", "OK"]  # try 1 failed and left its row; try 2 resumed
    part3 = [r.status for r in proxy.records if r.range == "bytes=3145728-4194303"]
    assert part3 == [500, 500, 206]  # part 3 was the only one asked for after the failure


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"check_hashes": "sometimes"}, "check_hashes must be one of"),
        ({"parallelism": 0}, "parallelism must be a whole number >= 1, got 0"),
        ({"part_size": -1}, "part_size must be a positive number of bytes, got -1"),
        ({"retry_attempts": 0}, "retry attempts must be >= 1, got 0"),
    ],
)
def test_bad_operator_arguments_fail_when_the_dag_is_parsed(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        FerryDownloadOperator(task_id="t", source="s3://b/k", destination="/data/k", **kwargs)
    with pytest.raises(InvalidArgumentError, match=message):
        FerryUploadOperator(task_id="t", source="/data/k", destination="s3://b/k", **kwargs)


def run_download_dag(monkeypatch, capfd, caplog, source: str, tmp_path) -> tuple[object, str, list[dict]]:
    manifest = tmp_path / "manifest.csv"
    monkeypatch.setenv("FERRY_TEST_SOURCE", source)
    monkeypatch.setenv("FERRY_TEST_DEST", str(tmp_path / "out.bin"))
    monkeypatch.setenv("FERRY_TEST_CONN", "ferry_test_s3")
    monkeypatch.setenv("FERRY_TEST_MANIFEST", str(manifest))
    with caplog.at_level("INFO"):
        run = run_dag("ferry_test_download")
    out, err = capfd.readouterr()
    with open(manifest, newline="") as f:
        return run, caplog.text + out + err, list(parse_rows(f.read()))


def test_a_malformed_url_is_named_and_still_gets_an_error_row(
    airflow_db, seaweedfs, monkeypatch, capfd, caplog, tmp_path
):
    run, log, rows = run_download_dag(monkeypatch, capfd, caplog, "s3:/raw/x", tmp_path)
    assert run.state == "failed"
    assert [r["result"] for r in rows] == ["error"]  # bad input: no retry
    assert "URL 's3:/raw/x' is malformed: expected s3://BUCKET/KEY" in rows[0]["description"]
    assert "s3:/raw/x -> " in log and "unsupported scheme" not in log


def test_a_missing_object_fails_in_one_line_per_try(airflow_db, seaweedfs, monkeypatch, capfd, caplog, tmp_path):
    """A 404 used to log about 96 lines with three chained tracebacks."""
    make_s3_bucket(seaweedfs, "ferry-download")
    url = "s3://ferry-download/no/such/object.bin"
    run, log, rows = run_download_dag(monkeypatch, capfd, caplog, url, tmp_path)
    assert run.state == "failed"
    assert [r["result"] for r in rows] == ["error", "error"]  # retried once: a 404 may yet appear
    assert f"{url} -> {tmp_path / 'out.bin'} failed (connection 'ferry_test_s3'): {url}: 404" in log
    assert "The above exception was the direct cause" not in log and "botocore" not in log


@pytest.mark.parametrize(
    ("operator", "kwargs", "message"),
    [
        ("download", {"file_mode": 0o77777}, "file_mode must be a permission mode"),
        ("download", {"file_mode": "0644"}, "file_mode must be a permission mode"),
        ("download", {"file_mode": True}, "file_mode must be a permission mode"),
        ("sensor", {"url": "s3://b/data/part-0.csv", "min_count": 2}, "min_count=2: .* names one object"),
        ("bulk", {"regex": "("}, "regex '\\(' is not a valid regular expression"),
        ("bulk", {"min_size": "lots"}, "min_size must be a number of bytes >= 0, got 'lots'"),
        ("bulk", {"min_size": -5}, "min_size must be a number of bytes >= 0"),
        ("bulk", {"modified_since": "yesterday"}, "modified_since must be an ISO 8601 time"),
        ("bulk", {"modified_since": "2026-01-01T00:00"}, "modified_since must carry a time zone"),
        ("plan", {"min_size": "lots"}, "min_size must be a number of bytes >= 0, got 'lots'"),
        ("sensor", {"url": "s3://b/data/", "marker": ".."}, "marker '..' names a folder"),
        ("bulk", {"file_mode": 0o77777}, "file_mode must be a permission mode"),
        ("bulk", {"server_side": "bogus"}, "server_side must be one of"),
        (
            "bulk",
            {"source_listing": "s3://work/shard-00000.jsonl", "include": "*.csv", "min_size": 1},
            "include, min_size: a shard's source_listing is already filtered",
        ),
    ],
)
def test_values_the_run_would_refuse_fail_when_the_dag_is_parsed(operator: str, kwargs: dict, message: str) -> None:
    """Not once per object at run time, as error rows, nor silently (filters on a planned shard)."""
    from ferry_provider.operators.bulk import FerryBulkPlanOperator, FerryBulkTransferOperator
    from ferry_provider.sensors.artifact import FerryArtifactSensor

    with pytest.raises(InvalidArgumentError, match=message):
        if operator == "download":
            FerryDownloadOperator(task_id="t", source="s3://b/k", destination="/data/k", **kwargs)
        elif operator == "sensor":
            FerryArtifactSensor(task_id="t", **kwargs)
        elif operator == "plan":
            FerryBulkPlanOperator(task_id="t", source="s3://b/p/", listing_location="s3://w/l/", **kwargs)
        else:
            FerryBulkTransferOperator(task_id="t", source="s3://b/p/", destination="gs://c/q/", **kwargs)


def test_templated_sensor_values_wait_for_the_run() -> None:
    from ferry_provider.sensors.artifact import FerryArtifactSensor

    FerryArtifactSensor(task_id="t", url="s3://b/out/{{ ds }}", min_count=3)  # may render to a prefix


def test_templated_filters_wait_for_the_run() -> None:
    from ferry_provider.operators.bulk import FerryBulkTransferOperator

    FerryBulkTransferOperator(
        task_id="t", source="s3://b/p/", destination="gs://c/q/", modified_since="{{ data_interval_start }}"
    )
