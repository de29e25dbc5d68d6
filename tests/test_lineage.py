"""OpenLineage: each operator reports the datasets it read and wrote, named per the spec
(``s3://bucket`` + key, ``gs://bucket`` + key, ``file`` + path), after a real transfer."""

from __future__ import annotations

import os

import pytest

from ferry_provider.hooks.s3 import FerryS3Hook
from ferry_provider.operators.bulk import FerryBulkTransferOperator
from ferry_provider.operators.copy import FerryCopyOperator
from ferry_provider.operators.download import FerryDownloadOperator
from ferry_provider.operators.upload import FerryUploadOperator
from tests.conftest import GCS_CONN, S3_CONN, make_gcs_bucket, make_s3_bucket
from tests.stores import crc32c_hex, unique_prefix

pytest.importorskip("airflow.providers.openlineage")
BUCKET = "ferry-lineage"


def names(datasets: list) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_single_object_operators_report_what_they_read_and_wrote(seaweedfs, gcs_endpoint, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    make_gcs_bucket(gcs_endpoint, BUCKET)
    prefix = unique_prefix()
    local = tmp_path / "in.bin"
    local.write_bytes(os.urandom(1000))
    state = str(tmp_path)
    up = FerryUploadOperator(
        task_id="up", source=str(local), destination=f"s3://{BUCKET}/{prefix}in.bin", conn_id=S3_CONN, state_dir=state
    )
    assert up.execute({})["result"] == "OK"
    lineage = up.get_openlineage_facets_on_complete(None)
    assert names(lineage.inputs) == [("file", str(local))]
    assert names(lineage.outputs) == [(f"s3://{BUCKET}", f"{prefix}in.bin")]

    cp = FerryCopyOperator(
        task_id="cp",
        source=f"s3://{BUCKET}/{prefix}in.bin",
        destination=f"gs://{BUCKET}/{prefix}copy.bin",
        source_conn_id=S3_CONN,
        destination_conn_id=GCS_CONN,
        state_dir=state,
    )
    assert cp.execute({})["result"] == "OK"
    lineage = cp.get_openlineage_facets_on_complete(None)
    assert names(lineage.inputs) == [(f"s3://{BUCKET}", f"{prefix}in.bin")]
    assert names(lineage.outputs) == [(f"gs://{BUCKET}", f"{prefix}copy.bin")]

    down = FerryDownloadOperator(
        task_id="down",
        source=f"gs://{BUCKET}/{prefix}copy.bin",
        destination=str(tmp_path / "out") + "/",
        conn_id=GCS_CONN,
    )
    assert down.execute({})["result"] == "OK"
    lineage = down.get_openlineage_facets_on_complete(None)
    assert names(lineage.outputs) == [("file", str(tmp_path / "out" / "copy.bin"))]


def test_a_bulk_transfer_reports_its_prefixes_and_objects_up_to_the_row_limit(seaweedfs, tmp_path) -> None:
    make_s3_bucket(seaweedfs, BUCKET)
    prefix = unique_prefix()
    hook = FerryS3Hook(S3_CONN)
    for i in range(5):
        data = os.urandom(100 + i)
        hook.put(f"s3://{BUCKET}/{prefix}d/o{i}", data, crc32c=crc32c_hex(data))
    op = FerryBulkTransferOperator(
        task_id="bulk",
        source=f"s3://{BUCKET}/{prefix}d/",
        destination=str(tmp_path / "out") + "/",
        conn_id=S3_CONN,
        row_limit=3,
    )
    summary = op.execute({})
    assert summary["counts"]["OK"] == 5 and summary["rows_truncated"]
    lineage = op.get_openlineage_facets_on_complete(None)
    inputs, outputs = names(lineage.inputs), names(lineage.outputs)
    assert inputs[0] == (f"s3://{BUCKET}", f"{prefix}d/") and outputs[0] == ("file", str(tmp_path / "out"))
    assert len(inputs) == len(outputs) == 4  # the prefix, then the 3 objects the summary keeps
    assert all(ns == f"s3://{BUCKET}" and name.startswith(f"{prefix}d/o") for ns, name in inputs[1:])
    assert all(ns == "file" and name.startswith(str(tmp_path / "out" / "o")) for ns, name in outputs[1:])


def test_outlets_get_asset_events_for_what_was_written(seaweedfs, tmp_path) -> None:
    """An Asset outlet gets the row's digests as its event's extra; an AssetAlias outlet gets
    an event for the asset the real (templated) destination names."""
    from airflow.sdk import Asset, AssetAlias
    from airflow.sdk.execution_time.context import OutletEventAccessors

    make_s3_bucket(seaweedfs, BUCKET)
    prefix = unique_prefix()
    local = tmp_path / "in.bin"
    data = os.urandom(2000)
    local.write_bytes(data)
    lake, alias = Asset("s3://ferry-lineage/lake/"), AssetAlias("ferry-lineage-drops")
    up = FerryUploadOperator(
        task_id="up",
        source=str(local),
        destination=f"s3://{BUCKET}/{prefix}in.bin",
        conn_id=S3_CONN,
        state_dir=str(tmp_path),
        outlets=[lake, alias],
    )
    events = OutletEventAccessors()
    up.execute({"outlet_events": events})
    assert events[lake].extra["crc32c"] == crc32c_hex(data) and events[lake].extra["source"] == str(local)
    (event,) = events[alias].asset_alias_events
    assert event.dest_asset_key.uri == f"s3://{BUCKET}/{prefix}in.bin"
    assert event.extra["crc32c"] == crc32c_hex(data)
