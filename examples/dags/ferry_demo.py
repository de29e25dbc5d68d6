"""Ferry end to end: generate a file, upload it in parallel parts, wait until the stored object
is valid (deferrable sensor checking the CRC32C the upload reported, the manifest row, and the
producer's ``_SUCCESS`` marker), then at once download it in parallel ranges with verification
and publish it under ``published/`` with a server-side copy (no byte through the worker), and
print the manifest.

The marker is what a producer writes once its drop is complete. Nothing in this DAG writes it:
the sensor finds it missing, defers, and its trigger wakes when the marker appears. In the
README's demo, ``scripts/demo.py`` plays the producer and writes it once the sensor has deferred;
run the DAG by hand and write ``runs/<ds_nodash>/_SUCCESS`` yourself (or the sensor times out).

Settings come from the environment so the same DAG runs in the README's demo and elsewhere:
FERRY_DEMO_CONN (an S3 connection id), FERRY_DEMO_BUCKET, FERRY_DEMO_DIR (local work folder),
FERRY_DEMO_SIZE_MIB (size of the generated file).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag, task

from ferry_provider.operators.copy import FerryCopyOperator
from ferry_provider.operators.download import FerryDownloadOperator
from ferry_provider.operators.upload import FerryUploadOperator
from ferry_provider.sensors.artifact import FerryArtifactSensor

CONN = os.environ.get("FERRY_DEMO_CONN", "aws_default")
BUCKET = os.environ.get("FERRY_DEMO_BUCKET", "ferry-demo")
WORK = os.environ.get("FERRY_DEMO_DIR", "/tmp/ferry-demo")
SIZE_MIB = int(os.environ.get("FERRY_DEMO_SIZE_MIB", "256"))
OBJECT = f"s3://{BUCKET}/runs/{{{{ ds_nodash }}}}/payload.bin"
MARKER = f"s3://{BUCKET}/runs/{{{{ ds_nodash }}}}/_SUCCESS"
PUBLISHED = f"s3://{BUCKET}/published/{{{{ ds }}}}/payload.bin"
MANIFEST = os.path.join(WORK, "manifest.csv")


@dag(
    dag_id="ferry_demo",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ferry", "example"],
)
def ferry_demo() -> None:
    @task
    def make_payload() -> str:
        """A file of random bytes: incompressible, so every byte really moves."""
        os.makedirs(WORK, exist_ok=True)
        path = os.path.join(WORK, "payload.bin")
        with open(path, "wb") as f:
            for _ in range(SIZE_MIB):
                f.write(os.urandom(1 << 20))
        return path

    upload = FerryUploadOperator(
        task_id="upload",
        source=make_payload(),
        destination=OBJECT,
        conn_id=CONN,
        content_type="application/octet-stream",
        metadata={"producer": "ferry_demo"},
        manifest_path=MANIFEST,
    )
    wait = FerryArtifactSensor(
        task_id="wait_until_valid",
        url=OBJECT,
        conn_id=CONN,
        deferrable=True,
        poke_interval=2,
        timeout=300,
        expected_digests={"crc32c": "{{ ti.xcom_pull(task_ids='upload')['crc32c'] }}"},
        manifest=MANIFEST,
        marker=MARKER,
    )
    download = FerryDownloadOperator(
        task_id="download",
        source=OBJECT,
        destination=os.path.join(WORK, "downloaded") + "/",
        conn_id=CONN,
        manifest_path=MANIFEST,
    )
    publish = FerryCopyOperator(
        task_id="publish",
        source=OBJECT,
        destination=PUBLISHED,
        conn_id=CONN,
        metadata={"producer": "ferry_demo", "stage": "published"},
        manifest_path=MANIFEST,
    )

    @task
    def report(rows: list[dict]) -> None:
        columns = ["result", "source", "destination", "source_size", "bytes_transferred", "crc32c", "description"]
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join(str(row.get(c, "")) for c in columns))

    upload >> wait >> [download, publish]
    report([upload.output, download.output, publish.output])


ferry_demo()
