"""FerryUploadOperator: one local file to S3 or GCS, in parallel parts, verified, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from ferry_provider.hooks.factory import hook_for
from ferry_provider.operators.manifest_rows import run_and_report
from ferry_provider.transfer.download import default_parallelism
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.upload import UploadOptions, upload


class FerryUploadOperator(BaseOperator):
    """Upload the local file ``source`` to ``destination`` (s3:// or gs://).

    Large files go up as S3 multipart parts or GCS composite components, each checked by the
    store against its CRC32C; the object is completed with a full-object CRC32C (S3) or checked
    against ours after compose (GCS). A retried task resumes: the parts already on the server
    are verified and only the rest are sent. The manifest row (with the S3 upload id) is the
    return value; on failure the ``error`` row is pushed as XCom ``manifest_row`` first.
    """

    template_fields: Sequence[str] = (
        "source",
        "destination",
        "conn_id",
        "content_type",
        "metadata",
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
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        no_clobber: bool = False,
        skip_identical: bool = True,
        resume: bool = True,
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
        self.content_type = content_type
        self.metadata = metadata or {}
        self.no_clobber = no_clobber
        self.skip_identical = skip_identical
        self.resume = resume
        self.state_dir = state_dir
        self.manifest_path = manifest_path
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait

    def execute(self, context: Context) -> dict[str, Any]:
        options = UploadOptions(
            parallelism=self.parallelism or default_parallelism(),
            part_size=self.part_size,
            content_type=self.content_type,
            metadata=dict(self.metadata),
            no_clobber=self.no_clobber,
            skip_identical=self.skip_identical,
            resume=self.resume,
            state_dir=self.state_dir,
            retry=RetryPolicy(attempts=self.retry_attempts, max_wait=self.retry_max_wait),
        )
        hook = hook_for(self.destination, self.conn_id, max_connections=options.parallelism)
        return run_and_report(
            self, context, lambda: upload(hook, self.source, self.destination, options), self.manifest_path
        )
