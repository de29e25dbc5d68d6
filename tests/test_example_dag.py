"""The example DAG end to end under dag.test(): upload -> deferrable sensor -> download."""

from __future__ import annotations

import filecmp
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
        rows = list(parse_rows(f.read()))
    assert [r["result"] for r in rows] == ["OK", "OK"]
    assert rows[0]["crc32c"] == rows[1]["crc32c"]  # what went up is what came down
    assert "stored crc32c verified" in rows[0]["description"]
    assert rows[1]["description"] == "verified size and crc32c"
    validated = run.get_task_instance("wait_until_valid").xcom_pull(task_ids="wait_until_valid")
    assert validated[0]["crc32c"] == rows[0]["crc32c"] and validated[0]["size"] == 24 << 20
