"""A DAG the tests run with dag.test(): one FerryArtifactSensor in the mode FERRY_TEST_MODE names."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag

from ferry_provider.sensors.artifact import FerryArtifactSensor

MODE = os.environ.get("FERRY_TEST_MODE", "poke")


@dag(dag_id="ferry_test_sensor", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False)
def ferry_test_sensor() -> None:
    FerryArtifactSensor(
        task_id="wait",
        url=os.environ.get("FERRY_TEST_URL", "s3://unset/unset"),
        conn_id=os.environ.get("FERRY_TEST_CONN"),
        expected_digests={"crc32c": os.environ.get("FERRY_TEST_CRC32C", "")},
        mode="reschedule" if MODE == "reschedule" else "poke",
        deferrable=MODE == "deferrable",
        poke_interval=1,
        timeout=float(os.environ.get("FERRY_TEST_TIMEOUT", "60")),
    )


ferry_test_sensor()
