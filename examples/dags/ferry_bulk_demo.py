"""Ferry in bulk: a day's drop of a few hundred objects, sharded over mapped tasks.

generate (mixed sizes, nested keys, an empty file) -> upload the folder to
``s3://BUCKET/drops/<ds>/`` with a manifest -> a sensor waits until every object is there with
an ``OK`` manifest row -> plan (one listing, cut into shards) -> one mapped download task per
shard into a local folder, each with its own manifest -> merge the manifests into one summary.

Paths derive from the run's logical date, never from the clock: a rerun of a date skips what is
already there. Settings come from the environment (as in ferry_demo.py): FERRY_DEMO_CONN,
FERRY_DEMO_BUCKET, FERRY_DEMO_DIR, FERRY_BULK_OBJECTS (how many objects to generate).
"""

from __future__ import annotations

import os
import random

import pendulum
from airflow.sdk import dag, task

from ferry_provider.operators.bulk import FerryBulkPlanOperator, FerryBulkTransferOperator, FerryManifestMergeOperator
from ferry_provider.sensors.artifact import FerryArtifactSensor

CONN = os.environ.get("FERRY_DEMO_CONN", "aws_default")
BUCKET = os.environ.get("FERRY_DEMO_BUCKET", "ferry-demo")
WORK = os.path.join(os.environ.get("FERRY_DEMO_DIR", "/tmp/ferry-demo"), "bulk")
OBJECTS = int(os.environ.get("FERRY_BULK_OBJECTS", "300"))
DROP = f"s3://{BUCKET}/drops/{{{{ ds }}}}/"
RUN_DIR = os.path.join(WORK, "runs", "{{ ds_nodash }}")


@dag(
    dag_id="ferry_bulk_demo",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["ferry", "example"],
)
def ferry_bulk_demo() -> None:
    @task
    def generate(ds: str) -> str:
        """Objects of mixed sizes under nested folders, and one empty file (seeded: a rerun of
        the same date makes the same drop)."""
        folder = os.path.join(WORK, "source", ds)
        rng = random.Random(ds)
        for i in range(OBJECTS):
            size = rng.choice([0, 100, 4 << 10, 64 << 10, 256 << 10]) if i % 50 else rng.randint(1, 12) << 20
            path = os.path.join(folder, f"region-{i % 4}", f"hour-{i % 24:02d}", f"part-{i:05d}.bin")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(rng.randbytes(size))
        return folder + "/"

    upload = FerryBulkTransferOperator(
        task_id="upload",
        source=generate(),
        destination=DROP,
        conn_id=CONN,
        manifest=os.path.join(RUN_DIR, "upload-manifest.csv"),
    )
    wait = FerryArtifactSensor(
        task_id="wait_for_the_drop",
        url=DROP,
        conn_id=CONN,
        min_count=OBJECTS,
        manifest=os.path.join(RUN_DIR, "upload-manifest.csv"),
        poke_interval=2,
        timeout=300,
        mode="reschedule",
    )
    plan = FerryBulkPlanOperator(
        task_id="plan",
        source=DROP,
        conn_id=CONN,
        listing_location=f"s3://{BUCKET}/ferry-work/{{{{ ds_nodash }}}}/listing/",
        manifest_location=os.path.join(RUN_DIR, "manifests"),
        max_shards=8,
        min_shard_weight=16 << 20,  # small, so this small drop still makes several shards
    )
    download = FerryBulkTransferOperator.partial(
        task_id="download",
        source=DROP,
        destination=os.path.join(WORK, "downloaded", "{{ ds }}") + "/",
        conn_id=CONN,
        concurrency=16,
    ).expand_kwargs(plan.output)
    merge = FerryManifestMergeOperator(
        task_id="merge",
        manifests=plan.output,
        shard_summaries=download.output,  # the summary then says which worker ran each shard
        destination=os.path.join(RUN_DIR, "manifest.csv"),
        fail_on_error=True,
    )
    upload >> wait >> plan
    download >> merge


ferry_bulk_demo()
