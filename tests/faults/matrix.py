"""The matrix: its rows (an operation on a store) and its columns (faults), and which cells
have no meaning, with the reason.

To add a row, write its Operation (see operations.py) and add one line to ROWS per store it
runs on. To add a column, write its Fault and add it to COLUMNS.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.faults.backends import Backend, GCSBackend, HTTPBackend, S3Backend
from tests.faults.fault import Fault
from tests.faults.faults_mid_transfer import (
    InterruptedBySigintThenRerun,
    KilledThenRerun,
    SecondWriter,
    SourceOverwritten,
)
from tests.faults.faults_on_the_wire import (
    ConnectionReset,
    FlippedByte,
    StallPastReadTimeout,
    Throttled,
    TruncatedBody,
)
from tests.faults.faults_refused import DiskFull, MissingBucket, WrongCredentials
from tests.faults.operations import (
    BulkDownload,
    BulkUpload,
    BulkUploadManifestOnStore,
    CrossStoreCopy,
    Download,
    Operation,
    ServerSideCopy,
    Upload,
)


@dataclass(frozen=True)
class Row:
    op: Operation
    backend: type[Backend]

    @property
    def id(self) -> str:
        return f"{self.op.name}-{self.backend.name}"

    @property
    def title(self) -> str:
        return self.op.title(self.backend)


DOWNLOAD, UPLOAD, SERVER_SIDE_COPY, CROSS_STORE_COPY = Download(), Upload(), ServerSideCopy(), CrossStoreCopy()
BULK_DOWNLOAD, BULK_UPLOAD, BULK_UPLOAD_MANIFEST_ON_STORE = BulkDownload(), BulkUpload(), BulkUploadManifestOnStore()
ROWS = [
    Row(DOWNLOAD, S3Backend),
    Row(DOWNLOAD, GCSBackend),
    Row(DOWNLOAD, HTTPBackend),
    Row(UPLOAD, S3Backend),
    Row(UPLOAD, GCSBackend),
    # HTTP(S) is read-only: it has no upload row, and no server-side copy; it is a copy's source.
    Row(SERVER_SIDE_COPY, S3Backend),
    Row(SERVER_SIDE_COPY, GCSBackend),
    Row(CROSS_STORE_COPY, S3Backend),  # S3 -> GCS
    Row(CROSS_STORE_COPY, GCSBackend),  # GCS -> S3
    Row(CROSS_STORE_COPY, HTTPBackend),  # HTTP -> S3
    # A prefix: HTTP(S) has no listing, so no bulk row. GCS uploads name the object in the body,
    # not the path, so the proxy cannot strike one object of several: no bulk upload row for it.
    Row(BULK_DOWNLOAD, S3Backend),
    Row(BULK_DOWNLOAD, GCSBackend),
    Row(BULK_UPLOAD, S3Backend),
    Row(BULK_UPLOAD_MANIFEST_ON_STORE, S3Backend),
]
COLUMNS: list[Fault] = [
    ConnectionReset(),
    Throttled(),
    TruncatedBody(),
    FlippedByte(),
    StallPastReadTimeout(),
    SourceOverwritten(),
    KilledThenRerun(),
    InterruptedBySigintThenRerun(),
    DiskFull(),
    WrongCredentials(),
    MissingBucket(),
    SecondWriter(),
]


@dataclass(frozen=True)
class Spec:
    """One cell: a row under a fault; ``not_applicable`` says why it has no meaning, if so."""

    row: Row
    fault: Fault

    @property
    def id(self) -> str:
        return f"{self.row.id}-{self.fault.key}"

    @property
    def not_applicable(self) -> str | None:
        op, backend = self.row.op, self.row.backend
        return op.not_applicable(self.fault.key, backend) or self.fault.not_applicable(op, backend)

    @property
    def note(self) -> str | None:
        op, backend = self.row.op, self.row.backend
        return op.note(self.fault.key, backend) or self.fault.note(op, backend)


SPECS = [Spec(row, fault) for row in ROWS for fault in COLUMNS]
