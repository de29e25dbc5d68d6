"""What every one-object Ferry transfer operator shares: its arguments and its manifest row."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ferry_provider.hooks.base import StorageHook
from ferry_provider.hooks.errors import FerryError, InvalidArgumentError, scrub
from ferry_provider.hooks.factory import hook_for
from ferry_provider.hooks.url import redact
from ferry_provider.operators.lineage import emit_asset_events
from ferry_provider.transfer.manifest import ERROR, OK, ManifestRow, TransferError, now
from ferry_provider.transfer.manifest_file import append_rows
from ferry_provider.transfer.options import TransferOptions, adaptive_options, default_parallelism
from ferry_provider.transfer.retry import RetryPolicy


class FerryTransferOperator(BaseOperator):
    """Base of the transfer operators: ``source`` to ``destination`` through connection ``conn_id``.

    The manifest row is the task's return value (XCom ``return_value``); when the transfer
    fails, the ``error`` row is pushed as XCom ``manifest_row`` before the task fails, so no row
    is lost. With ``manifest_path`` rows are also appended to a CSV file. ``retry_attempts``
    bounds the retries of each request within one try; Airflow's ``retries`` then start a new
    try, which resumes from the tracker. ``check_hashes``, ``verify_on_resume``,
    ``restart_on_change``, ``expected_digests`` and ``expected_size`` mean the same in both
    directions (for an upload the expectations are checked on the local file before a byte is
    sent). ``connect_timeout`` and ``read_timeout`` (seconds) win over the connection's extras.

    A failure is one line in the task log naming both ends, the connection and the cause (the
    traceback is logged at debug level); bad arguments fail without retries, anything else
    leaves Airflow's retries to resume.

    :param source: What is read (templated): an ``s3://``, ``gs://`` or ``http(s)://`` URL, a local
        path or a ``file://`` URL. Which of these each operator accepts is said on the operator.
    :param destination: What is written (templated), spelled like ``source``. One ending in ``/``
        is a folder: the source's file name is appended.
    :param conn_id: Airflow connection for the remote side (templated; both sides of a copy unless
        overridden). Default: the store's default connection (``aws_default``,
        ``google_cloud_default``; none for HTTP), whose absence means credentials from the
        environment. A named connection that does not exist fails the task.
    :param parallelism: Connections (parts in flight) per transfer, a whole number >= 1. Default
        ``None``: the transfer starts with 16 and doubles them while the throughput grows, up to
        32, backing off when the store throttles. A number is used as it is.
    :param part_size: Bytes per part, a positive whole number. Default ``None``: chosen from the
        object's size and the parallelism (8 to 64 MiB; 8 MiB for copies through the worker).
        Downloads raise a smaller value to 1 MiB; writes refuse one below the store's minimum part
        (5 MiB on S3) and raise one that would need more parts than the store allows.
    :param no_clobber: When ``True``, an existing destination is left alone and the row is ``skip``,
        with nothing compared; the final write is also conditional, so a destination that appears
        during the transfer is not replaced. Default ``False``.
    :param skip_identical: When ``True`` (default), an existing destination with the same size and
        the same digest (CRC32C, or MD5 or another digest the source states) is a ``skip`` row
        carrying that digest. Equal sizes alone never count; ``False`` always transfers.
    :param resume: When ``True`` (default), a failed try keeps its partial state (temp file and
        tracker, multipart upload or components) so the next try sends only what is missing.
        ``False`` starts from scratch and removes what an earlier try left.
    :param check_hashes: How digests are verified: ``"if_fast_else_fail"`` (default: fail when only
        a slow CRC32C implementation is installed), ``"if_fast_else_skip"`` (then verify without
        CRC32C), ``"always"`` (even when slow; writes read the object back when the store reports
        no full-object CRC32C) or ``"never"`` (sizes only). Other values are refused when the DAG
        is parsed.
    :param verify_on_resume: When ``True`` (default), the parts a resumed try reuses are hashed
        again before they are trusted (the local file's bytes for an upload, the temp file's for a
        download); a part that no longer matches is transferred again. ``False`` trusts the tracker,
        except that downloads still re-hash when the tracker predates the last reboot.
    :param restart_on_change: When ``True``, a source that changes during the transfer makes it
        start over once, and the row says so; default ``False``: the try fails.
    :param expected_digests: Digests the source must match (templated), as ``{algorithm: hex}``
        with algorithms ``crc32c``, ``crc32``, ``crc64nvme``, ``md5``, ``sha1``, ``sha256`` and
        ``sha512``. They replace the store's own digest as the proof of a download or copy; an
        upload checks them on the local file before sending anything. Refused with
        ``check_hashes="never"``. Default: none.
    :param expected_size: Exact size in bytes the source must have (templated); a mismatch fails
        before any byte is transferred. Default ``None``: not checked.
    :param state_dir: Existing, writable directory for tracker files (templated; checked when the
        task runs). Default ``None``: beside the destination file for a download, beside the source
        file (else ``~/.local/state/ferry``) for an upload, ``~/.local/state/ferry`` for a copy.
    :param manifest_path: Local file the manifest row is also appended to, whatever its result
        (templated): CSV with a header line when the file is new, or JSON lines when the name ends
        in ``.jsonl`` or ``.json``. Default ``None``: the row is only returned as XCom.
    :param retry_attempts: Attempts per request within one try, the first included (>= 1, default
        5). Only transient failures are retried: connection errors, timeouts, 429 and 5xx answers,
        truncated bodies.
    :param retry_max_wait: Longest wait between two attempts, in seconds (default 20.0); waits grow
        exponentially with jitter from 0.5 s. A server's ``Retry-After`` is honoured up to three
        times this value.
    :param connect_timeout: Seconds allowed to open a connection (between 0 and 86400). Default
        ``None``: the connection's ``connect_timeout`` extra, else 10 s.
    :param read_timeout: Seconds allowed for each wait for bytes (between 0 and 86400); a stall
        fails that attempt, which is then retried. Default ``None``: the connection's
        ``read_timeout`` (or ``timeout``) extra, else 30 s.
    """

    template_fields: Sequence[str] = (
        "source",
        "destination",
        "conn_id",
        "manifest_path",
        "state_dir",
        "expected_digests",
        "expected_size",
    )

    def __init__(
        self,
        *,
        source: str,
        destination: str,
        conn_id: str | None = None,
        parallelism: int | None = None,
        part_size: int | None = None,
        no_clobber: bool = False,
        skip_identical: bool = True,
        resume: bool = True,
        check_hashes: str = "if_fast_else_fail",
        verify_on_resume: bool = True,
        restart_on_change: bool = False,
        expected_digests: dict[str, str] | None = None,
        expected_size: int | None = None,
        state_dir: str | None = None,
        manifest_path: str | None = None,
        retry_attempts: int = 5,
        retry_max_wait: float = 20.0,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.destination = destination
        self.conn_id = conn_id
        self.parallelism = parallelism
        self.part_size = part_size
        self.no_clobber = no_clobber
        self.skip_identical = skip_identical
        self.resume = resume
        self.check_hashes = check_hashes
        self.verify_on_resume = verify_on_resume
        self.restart_on_change = restart_on_change
        self.expected_digests = expected_digests or {}
        self.expected_size = expected_size
        self.state_dir = state_dir
        self.manifest_path = manifest_path
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # Values that are not templated are checked now, when the DAG is parsed, so a typo is an
        # import error rather than a failure at run time.
        TransferOptions(
            parallelism=default_parallelism() if parallelism is None else parallelism,
            part_size=part_size,
            check_hashes=check_hashes,
            retry=RetryPolicy(attempts=retry_attempts, max_wait=retry_max_wait),
        )

    def common_options(self) -> dict[str, Any]:
        """The engine options every transfer takes, as keyword arguments."""
        return {
            **adaptive_options(self.parallelism),
            "part_size": self.part_size,
            "no_clobber": self.no_clobber,
            "skip_identical": self.skip_identical,
            "resume": self.resume,
            "check_hashes": self.check_hashes,
            "verify_on_resume": self.verify_on_resume,
            "restart_on_change": self.restart_on_change,
            "expected_digests": dict(self.expected_digests),
            "expected_size": int(self.expected_size) if self.expected_size not in (None, "") else None,
            "state_dir": self.state_dir,
            "retry": RetryPolicy(attempts=self.retry_attempts, max_wait=self.retry_max_wait),
        }

    def open_hook(self, url: str, conn_id: str | None, parallelism: int) -> StorageHook:
        """The hook for ``url`` through ``conn_id`` (else the store's default connection), with
        this operator's timeouts."""
        return hook_for(
            url,
            conn_id,
            max_connections=parallelism,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )

    def run_transfer(self, context: Context, transfer: Callable[[], ManifestRow]) -> dict[str, Any]:
        """Run ``transfer`` (which builds its options and hooks) and report its manifest row.
        Every failure on the way, a malformed URL or a bad templated value included, ends in
        an ``error`` row."""
        try:
            row = transfer()
        except TransferError as exc:
            self._fail(context, exc.row, exc.cause or exc)
        except (FerryError, ValueError, TypeError) as exc:  # before any transfer began
            row = ManifestRow(source=redact(str(self.source)), destination=redact(str(self.destination)), start=now())
            self._fail(context, row.finish(ERROR, scrub(str(exc))), exc)
        if self.manifest_path:
            append_rows(self.manifest_path, [row])
        self.log.info("%s -> %s: %s (%s)", row.source, row.destination, row.result, row.description)
        self._row = row.to_dict()
        if row.result == OK:
            extra = {
                k: self._row[k] for k in ("source", "crc32c", "md5", "source_size") if self._row[k] not in ("", None)
            }
            emit_asset_events(context, self.outlets, row.destination, extra)
        return self._row

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the object read and the object written (as the row names them)."""
        from ferry_provider.operators.lineage import operator_lineage

        row = getattr(self, "_row", None) or {}
        return operator_lineage([row.get("source") or self.source], [row.get("destination") or self.destination])

    # Operators where two stores meet set these (source_conn_id / destination_conn_id arguments).
    source_conn_id: str | None = None
    destination_conn_id: str | None = None

    def connections(self) -> str:
        """The connections in use, for the failure line: each side's, else ``conn_id``."""
        source = self.source_conn_id or self.conn_id
        destination = self.destination_conn_id or self.conn_id
        if source == destination:
            return f" (connection {source!r})" if source else ""
        return f" (connections {source!r} -> {destination!r})"

    def _fail(self, context: Context, row: ManifestRow, cause: BaseException) -> NoReturn:
        context["ti"].xcom_push(key="manifest_row", value=row.to_dict())
        if self.manifest_path:
            append_rows(self.manifest_path, [row])
        message = f"{row.source} -> {row.destination} failed{self.connections()}: {row.description}"
        self.log.error("%s", message)
        self.log.debug("what failed, in full", exc_info=cause)
        if isinstance(cause, (InvalidArgumentError, ValueError, TypeError)):
            raise AirflowFailException(message) from None  # retrying bad input cannot help
        raise AirflowException(message) from None
