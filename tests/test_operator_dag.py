"""FerryDownloadOperator in a real DAG run (dag.test() on a real metadata DB)."""

from __future__ import annotations

import csv

from tests.conftest import put_object, run_dag
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
        results = [r["result"] for r in csv.DictReader(f)]
    assert results == ["error", "OK"]  # try 1 failed and left its row; try 2 resumed
    part3 = [r.status for r in proxy.records if r.range == "bytes=3145728-4194303"]
    assert part3 == [500, 500, 206]  # part 3 was the only one asked for after the failure
