"""FerryDownloadOperator: one object from any store to a local file, verified, resumable."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context

from ferry_provider.operators.transfer import FerryTransferOperator
from ferry_provider.transfer.download import DownloadOptions, download
from ferry_provider.transfer.manifest import ManifestRow


class FerryDownloadOperator(FerryTransferOperator):
    """Download ``source`` (s3://, gs://, http(s)://, file://) to the local ``destination``.

    Parts are fetched in parallel, hashed as they arrive and checked against the store's digest
    (CRC32C, CRC64NVME, CRC32, MD5, or S3's per-part composite CRC or multipart ETag) or
    ``expected_digests``; the file appears at ``destination`` only when verified. A
    retried task resumes from the tracker file beside the destination. The file gets ``file_mode``
    (e.g. ``0o640``), else 0666 less the umask. Manifest rows, request retries and the shared
    arguments are described on FerryTransferOperator.

    Takes every argument of FerryTransferOperator, plus:

    :param file_mode: Permission bits the published file gets, between ``0`` and ``0o7777`` (e.g.
        ``0o640``); a value outside that range fails the task when it runs. Default ``None``: 0666
        less the process umask, as for any new file. The temp file is 0600 until then.
    """

    def __init__(self, *, file_mode: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.file_mode = file_mode
        DownloadOptions(file_mode=file_mode)  # checked when the DAG is parsed

    def execute(self, context: Context) -> dict[str, Any]:
        def transfer() -> ManifestRow:
            options = DownloadOptions(**self.common_options(), file_mode=self.file_mode)
            hook = self.open_hook(self.source, self.conn_id, options.parallelism)
            return download(hook, self.source, self.destination, options)

        return self.run_transfer(context, transfer)
