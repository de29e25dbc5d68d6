"""FerryDownloadOperator: one object from any store to a local file, verified, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from ferry_provider.operators.transfer import FerryTransferOperator
from ferry_provider.transfer.download import DownloadOptions, download


class FerryDownloadOperator(FerryTransferOperator):
    """Download ``source`` (s3://, gs://, http(s)://, file://) to the local ``destination``.

    Parts are fetched in parallel, hashed as they arrive and checked against the store's digest
    (CRC32C, CRC64NVME, CRC32, MD5, or S3's per-part composite CRC or multipart ETag) or
    ``expected_digests``; the file appears at ``destination`` only when verified. A
    retried task resumes from the tracker file beside the destination. Manifest rows, request
    retries and the shared arguments are described on FerryTransferOperator.
    """

    template_fields: Sequence[str] = (*FerryTransferOperator.template_fields, "expected_digests", "expected_size")

    def __init__(
        self,
        *,
        check_hashes: str = "if_fast_else_fail",
        verify_on_resume: bool = False,
        restart_on_change: bool = False,
        expected_digests: dict[str, str] | None = None,
        expected_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.check_hashes = check_hashes
        self.verify_on_resume = verify_on_resume
        self.restart_on_change = restart_on_change
        self.expected_digests = expected_digests or {}
        self.expected_size = expected_size

    def execute(self, context: Context) -> dict[str, Any]:
        options = DownloadOptions(
            **self.common_options(),
            check_hashes=self.check_hashes,
            verify_on_resume=self.verify_on_resume,
            restart_on_change=self.restart_on_change,
            expected_size=int(self.expected_size) if self.expected_size not in (None, "") else None,
            expected_digests=dict(self.expected_digests),
        )
        return self.run_transfer(
            context, self.source, options.parallelism, lambda hook, src, dst: download(hook, src, dst, options)
        )
