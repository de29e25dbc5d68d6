"""FerryUploadOperator: one local file to S3 or GCS, in parallel parts, verified, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from ferry_provider.operators.transfer import FerryTransferOperator
from ferry_provider.transfer.manifest import ManifestRow
from ferry_provider.transfer.upload import UploadOptions, upload


class FerryUploadOperator(FerryTransferOperator):
    """Upload the local file ``source`` to ``destination`` (s3:// or gs://).

    Large files go up as S3 multipart parts or GCS composite components, each checked by the
    store against its CRC32C; the object is completed with a full-object CRC32C (S3) or checked
    against ours after compose (GCS). A retried task resumes: the parts already on the server
    are verified and only the rest are sent. The manifest row carries the S3 upload id; manifest
    rows, request retries and the shared arguments are described on FerryTransferOperator.

    Takes every argument of FerryTransferOperator, plus:

    :param content_type: ``Content-Type`` stored with the object (templated). Default ``None``: the
        store's default for binary data.
    :param metadata: User metadata stored with the object (templated), as ``{name: value}`` strings;
        S3 accepts ASCII only. Default ``None``: no metadata.
    """

    template_fields: Sequence[str] = (*FerryTransferOperator.template_fields, "content_type", "metadata")

    def __init__(
        self, *, content_type: str | None = None, metadata: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.content_type = content_type
        self.metadata = metadata or {}

    def execute(self, context: Context) -> dict[str, Any]:
        def transfer() -> ManifestRow:
            options = UploadOptions(
                **self.common_options(), content_type=self.content_type, metadata=dict(self.metadata)
            )
            hook = self.open_hook(self.destination, self.conn_id, options.parallelism)
            return upload(hook, self.source, self.destination, options)

        return self.run_transfer(context, transfer)
