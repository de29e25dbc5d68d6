"""FerryCopyOperator: one object from one object store to another, verified, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from ferry_provider.operators.transfer import FerryTransferOperator
from ferry_provider.transfer.copy import CopyOptions, copy
from ferry_provider.transfer.manifest import ManifestRow


class FerryCopyOperator(FerryTransferOperator):
    """Copy the object ``source`` to ``destination`` (s3://, gs://; an http(s):// source too).

    Within one store and one set of credentials the store copies the bytes itself (S3
    CopyObject, or parallel UploadPartCopy above ``multipart_copy_threshold``; GCS rewrite);
    otherwise ranged reads feed part uploads in parallel, CRC32C-checked on the bytes in
    flight, with memory bounded by parallelism x part size. ``conn_id`` serves both sides;
    ``source_conn_id`` and ``destination_conn_id`` each one side and win over it.
    ``delete_source=True`` makes it a move: the source is deleted once the destination is
    verified. ``content_type`` and ``metadata`` replace the source's (default: carried over).
    ``server_side='never'`` sends the bytes through the worker even within one store. The row's
    description says ``server-side`` or ``pipeline``. Manifest rows, request retries and the
    shared arguments are described on FerryTransferOperator.

    Takes every argument of FerryTransferOperator, plus:

    :param source_conn_id: Connection for the source side (templated); wins over ``conn_id``.
        Default ``None``: ``conn_id``.
    :param destination_conn_id: Connection for the destination side (templated); wins over
        ``conn_id``. Default ``None``: ``conn_id``.
    :param delete_source: When ``True``, a move: the source is deleted once the destination is
        verified, and also when the copy is skipped because the destination is already identical
        (not when ``no_clobber`` skipped it). A read-only source store (HTTP) is refused. Default
        ``False``.
    :param content_type: ``Content-Type`` the copy gets (templated). Default ``None``: the source's.
    :param metadata: User metadata the copy gets instead of the source's (templated), as
        ``{name: value}`` strings; S3 accepts ASCII only. Default ``None``: the source's.
    :param server_side: ``"auto"`` (default): when both sides are one store reached with the same
        credentials, the store copies the bytes itself (falling back to the worker when it refuses);
        ``"never"``: the bytes always pass through the worker. Other values are refused when the
        DAG is parsed.
    :param multipart_copy_threshold: Size in bytes (>= 0) above which a server-side copy goes as
        parallel part copies, resumable, where the destination store supports them (S3
        UploadPartCopy); up to it, one request. Default ``None``: 256 MiB. No effect on copies
        through the worker.
    """

    template_fields: Sequence[str] = (
        *FerryTransferOperator.template_fields,
        "source_conn_id",
        "destination_conn_id",
        "content_type",
        "metadata",
    )

    def __init__(
        self,
        *,
        source_conn_id: str | None = None,
        destination_conn_id: str | None = None,
        delete_source: bool = False,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        server_side: str = "auto",
        multipart_copy_threshold: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.destination_conn_id = destination_conn_id
        self.delete_source = delete_source
        self.content_type = content_type
        self.metadata = metadata
        self.server_side = server_side
        self.multipart_copy_threshold = multipart_copy_threshold
        # Untemplated values are checked when the DAG is parsed.
        CopyOptions(server_side=server_side, multipart_copy_threshold=multipart_copy_threshold)

    def copy_options(self) -> CopyOptions:
        return CopyOptions(
            **self.common_options(),
            delete_source=self.delete_source,
            content_type=self.content_type,
            metadata=dict(self.metadata) if self.metadata is not None else None,
            server_side=self.server_side,
            multipart_copy_threshold=self.multipart_copy_threshold,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        def transfer() -> ManifestRow:
            options = self.copy_options()
            source_conn = self.source_conn_id or self.conn_id
            destination_conn = self.destination_conn_id or self.conn_id
            # Two hooks on one store with the same credentials copy server-side (same_store).
            source_hook = self.open_hook(self.source, source_conn, options.parallelism)
            destination_hook = self.open_hook(self.destination, destination_conn, options.parallelism)
            return copy(source_hook, destination_hook, self.source, self.destination, options)

        return self.run_transfer(context, transfer)
