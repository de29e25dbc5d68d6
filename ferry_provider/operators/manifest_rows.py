"""What every Ferry transfer operator does with its manifest row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseOperator, Context

from ferry_provider.transfer.manifest import ManifestRow, TransferError, append_rows


def run_and_report(
    operator: BaseOperator, context: Context, transfer: Callable[[], ManifestRow], manifest_path: str | None
) -> dict[str, Any]:
    """Run ``transfer``; its row is the return value (XCom). A failed transfer's ``error`` row is
    pushed as XCom ``manifest_row`` (and appended to the manifest file) before the task fails."""
    try:
        row = transfer()
    except TransferError as exc:
        context["ti"].xcom_push(key="manifest_row", value=exc.row.to_dict())
        if manifest_path:
            append_rows(manifest_path, [exc.row])
        raise
    if manifest_path:
        append_rows(manifest_path, [row])
    operator.log.info("%s -> %s: %s (%s)", row.source, row.destination, row.result, row.description)
    return row.to_dict()
