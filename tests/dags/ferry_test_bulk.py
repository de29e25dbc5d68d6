"""A DAG the tests run with dag.test(): a sharded bulk transfer, set up through the environment.

``plan`` lists FERRY_BULK_SOURCE once into at most FERRY_BULK_SHARDS shards (listings under
FERRY_BULK_WORK/listing/), ``move`` is one mapped task per shard (each with its own manifest
under FERRY_BULK_WORK/manifests/), and ``merge`` joins the manifests into one and counts results,
per shard too, with the worker that ran each.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag

from ferry_provider.operators.bulk import FerryBulkPlanOperator, FerryBulkTransferOperator, FerryManifestMergeOperator

WORK = os.environ.get("FERRY_BULK_WORK", "/nonexistent")


@dag(dag_id="ferry_test_bulk", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False)
def ferry_test_bulk() -> None:
    source = os.environ.get("FERRY_BULK_SOURCE", "s3://unset/unset/")
    plan = FerryBulkPlanOperator(
        task_id="plan",
        source=source,
        conn_id=os.environ.get("FERRY_BULK_SRC_CONN"),
        listing_location=f"{WORK}/listing/{{{{ run_id }}}}/",
        manifest_location=f"{WORK}/manifests/{{{{ run_id }}}}/",
        max_shards=int(os.environ.get("FERRY_BULK_SHARDS", "4")),
        retries=0,
    )
    move = FerryBulkTransferOperator.partial(
        task_id="move",
        source=source,
        destination=os.environ.get("FERRY_BULK_DEST", "/nonexistent/"),
        source_conn_id=os.environ.get("FERRY_BULK_SRC_CONN"),
        destination_conn_id=os.environ.get("FERRY_BULK_DST_CONN"),
        state_dir=os.environ.get("FERRY_BULK_STATE_DIR"),
        concurrency=8,
        retry_attempts=2,
        retry_max_wait=0.1,
        retries=0,
    ).expand_kwargs(plan.output)
    merge = FerryManifestMergeOperator(
        task_id="merge",
        manifests=plan.output,
        shard_summaries=move.output,
        destination=f"{WORK}/merged.csv",
        fail_on_error=True,
    )
    move >> merge


ferry_test_bulk()
