"""FerryDownloadOperator: one object from any store to a local file, verified, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from ferry_provider.hooks.factory import hook_for
from ferry_provider.operators.manifest_rows import run_and_report
from ferry_provider.transfer.download import DownloadOptions, default_parallelism, download
from ferry_provider.transfer.retry import RetryPolicy


class FerryDownloadOperator(BaseOperator):
    """Download ``source`` (s3://, gs://, http(s)://, file://) to the local ``destination``.

    Parts are fetched in parallel, hashed as they arrive and checked against the store's CRC32C
    or MD5 (or ``expected_digests``); the file appears at ``destination`` only when verified. A
    retried task resumes from the tracker file beside the destination. The manifest row is the
    task's return value (XCom ``return_value``); when the transfer fails, the ``error`` row is
    pushed as XCom ``manifest_row`` before the task fails, so no row is lost. With
    ``manifest_path`` rows are also appended to a CSV file. ``retry_attempts`` bounds the
    retries of each request within one try (Airflow's ``retries`` then start a new try, which
    resumes).
    """

    template_fields: Sequence[str] = (
        "source",
        "destination",
        "conn_id",
        "expected_digests",
        "expected_size",
        "manifest_path",
        "state_dir",
    )

    def __init__(
        self,
        *,
        source: str,
        destination: str,
        conn_id: str | None = None,
        parallelism: int | None = None,
        part_size: int | None = None,
        check_hashes: str = "if_fast_else_fail",
        no_clobber: bool = False,
        skip_identical: bool = True,
        resume: bool = True,
        verify_on_resume: bool = False,
        restart_on_change: bool = False,
        expected_digests: dict[str, str] | None = None,
        expected_size: int | None = None,
        state_dir: str | None = None,
        manifest_path: str | None = None,
        retry_attempts: int = 5,
        retry_max_wait: float = 20.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.destination = destination
        self.conn_id = conn_id
        self.parallelism = parallelism
        self.part_size = part_size
        self.check_hashes = check_hashes
        self.no_clobber = no_clobber
        self.skip_identical = skip_identical
        self.resume = resume
        self.verify_on_resume = verify_on_resume
        self.restart_on_change = restart_on_change
        self.expected_digests = expected_digests or {}
        self.expected_size = expected_size
        self.state_dir = state_dir
        self.manifest_path = manifest_path
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait

    def execute(self, context: Context) -> dict[str, Any]:
        options = DownloadOptions(
            parallelism=self.parallelism or default_parallelism(),
            part_size=self.part_size,
            check_hashes=self.check_hashes,
            no_clobber=self.no_clobber,
            skip_identical=self.skip_identical,
            resume=self.resume,
            verify_on_resume=self.verify_on_resume,
            restart_on_change=self.restart_on_change,
            expected_size=int(self.expected_size) if self.expected_size not in (None, "") else None,
            expected_digests=dict(self.expected_digests),
            state_dir=self.state_dir,
            retry=RetryPolicy(attempts=self.retry_attempts, max_wait=self.retry_max_wait),
        )
        hook = hook_for(self.source, self.conn_id, max_connections=options.parallelism)
        return run_and_report(
            self, context, lambda: download(hook, self.source, self.destination, options), self.manifest_path
        )
