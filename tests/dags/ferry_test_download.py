"""A DAG the tests run with dag.test(): one FerryDownloadOperator, set up through the environment.

FERRY_TEST_SOURCE, FERRY_TEST_DEST and FERRY_TEST_CONN are set by the test before parsing; the
task gets one Airflow retry with no delay, and few request retries, so a failure is fast.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag

from ferry_provider.operators.download import FerryDownloadOperator


@dag(dag_id="ferry_test_download", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False)
def ferry_test_download() -> None:
    FerryDownloadOperator(
        task_id="download",
        source=os.environ.get("FERRY_TEST_SOURCE", "s3://unset/unset"),
        destination=os.environ.get("FERRY_TEST_DEST", "/nonexistent/unset"),
        conn_id=os.environ.get("FERRY_TEST_CONN"),
        parallelism=1,
        part_size=1 << 20,
        retry_attempts=2,
        retry_max_wait=0.1,
        retries=1,
        retry_delay=timedelta(seconds=0),
        manifest_path=os.environ.get("FERRY_TEST_MANIFEST"),
    )


ferry_test_download()
