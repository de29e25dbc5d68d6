"""The example DAG end to end under dag.test(): upload -> deferrable sensor -> download."""

from __future__ import annotations

import filecmp
import os
import threading

from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.transfer.manifest_file import parse_rows
from tests.conftest import S3_CONN, make_s3_bucket, run_dag


def test_example_dag_moves_and_verifies_real_bytes(airflow_db, seaweedfs, tmp_path, monkeypatch) -> None:
    make_s3_bucket(seaweedfs, "ferry-example")
    monkeypatch.setenv("FERRY_DEMO_CONN", S3_CONN)
    monkeypatch.setenv("FERRY_DEMO_BUCKET", "ferry-example")
    monkeypatch.setenv("FERRY_DEMO_DIR", str(tmp_path))
    monkeypatch.setenv("FERRY_DEMO_SIZE_MIB", "24")
    hook = FerryS3Hook(S3_CONN)
    stop = threading.Event()

    def producer() -> None:  # writes the _SUCCESS marker once the payload is up, as a producer would
        while not stop.wait(0.2):
            payloads = [i.url for i in hook.list("s3://ferry-example/runs/") if i.url.endswith("/payload.bin")]
            if payloads:
                hook.put(payloads[0].rsplit("/", 1)[0] + "/_SUCCESS", b"")
                return

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    try:
        run = run_dag("ferry_demo")
    finally:
        stop.set()
        thread.join(10)
    assert run.state == "success"
    assert filecmp.cmp(tmp_path / "payload.bin", tmp_path / "downloaded" / "payload.bin", shallow=False)
    with open(tmp_path / "manifest.csv") as f:
        rows = {r["destination"].rsplit("/", 3)[-3]: r for r in parse_rows(f.read())}  # by folder
    upload, download, publish = rows["runs"], rows[str(tmp_path.name)], rows["published"]
    assert len(rows) == 3 and {r["result"] for r in rows.values()} == {"OK"}
    # what went up is what came down and what was published
    assert upload["crc32c"] == download["crc32c"] == publish["crc32c"]
    assert "stored crc32c verified" in upload["description"]
    assert download["description"] == "verified size and crc32c"
    assert publish["description"].startswith("server-side")
    assert int(publish["bytes_transferred"]) == 0  # no byte through the worker
    assert hook.read_bytes(publish["destination"]) == (tmp_path / "payload.bin").read_bytes()
    validated = run.get_task_instance("wait_until_valid").xcom_pull(task_ids="wait_until_valid")
    assert validated[0]["crc32c"] == upload["crc32c"] and validated[0]["size"] == 24 << 20


def test_every_example_dag_imports_cleanly_and_together_they_show_every_operator() -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "dags")
    bag = DagBag(folder)
    assert not bag.import_errors, bag.import_errors
    assert set(bag.dag_ids) == {"ferry_demo", "ferry_bulk_demo"}
    shown = {type(t).__name__ for dag in bag.dags.values() for t in dag.tasks}
    assert shown >= {
        "FerryUploadOperator",
        "FerryDownloadOperator",
        "FerryCopyOperator",
        "FerryArtifactSensor",
        "FerryBulkPlanOperator",
        "FerryBulkTransferOperator",
        "FerryManifestMergeOperator",
    }
