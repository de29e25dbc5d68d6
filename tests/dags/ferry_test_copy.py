"""A DAG the tests run with dag.test(): two FerryCopyOperator tasks, set up through the environment.

``same_store`` copies within one store over one connection (FERRY_COPY_CONN), server-side;
``cross_store`` copies between two connections (FERRY_COPY_SRC_CONN -> FERRY_COPY_DST_CONN)
through the pipeline. Trackers go to FERRY_COPY_STATE_DIR; no Airflow retries, few request
retries, so a failure is fast.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag

from ferry_provider.operators.copy import FerryCopyOperator

MiB = 1 << 20


@dag(dag_id="ferry_test_copy", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False)
def ferry_test_copy() -> None:
    common = {
        "state_dir": os.environ.get("FERRY_COPY_STATE_DIR"),
        "part_size": 5 * MiB,
        "parallelism": 2,
        "retry_attempts": 2,
        "retry_max_wait": 0.1,
        "retries": 0,
    }
    FerryCopyOperator(
        task_id="same_store",
        source=os.environ.get("FERRY_COPY_SAME_SOURCE", "s3://unset/unset"),
        destination=os.environ.get("FERRY_COPY_SAME_DEST", "s3://unset/unset-copy"),
        conn_id=os.environ.get("FERRY_COPY_CONN"),
        multipart_copy_threshold=5 * MiB,
        **common,
    )
    FerryCopyOperator(
        task_id="cross_store",
        source=os.environ.get("FERRY_COPY_CROSS_SOURCE", "s3://unset/unset"),
        destination=os.environ.get("FERRY_COPY_CROSS_DEST", "gs://unset/unset"),
        source_conn_id=os.environ.get("FERRY_COPY_SRC_CONN"),
        destination_conn_id=os.environ.get("FERRY_COPY_DST_CONN"),
        **common,
    )


ferry_test_copy()
