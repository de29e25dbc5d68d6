"""Manifest rows: one per object, gsutil's manifest columns plus crc32c and the upload id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ferry_provider.hooks.errors import FerryError, PreconditionFailedError, SourceChangedError
from ferry_provider.transfer.interrupt import Interrupted

if TYPE_CHECKING:
    from ferry_provider.transfer.options import TransferOptions

log = logging.getLogger("ferry_provider.transfer")
OK, SKIP, ERROR = "OK", "skip", "error"


def now() -> str:
    # isoformat is C; strftime with %f goes through Python code (measurable at 3 rows' worth of
    # timestamps per object in a bulk run).
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass
class ManifestRow:
    source: str
    destination: str
    start: str
    end: str = ""
    source_size: int | None = None
    bytes_transferred: int = 0
    md5: str = ""
    crc32c: str = ""
    upload_id: str = ""
    result: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def finish(self, result: str, description: str = "") -> ManifestRow:
        self.result = result
        self.description = description.replace("\n", "\\n")
        self.end = now()
        return self


class TransferError(FerryError):
    """A transfer failed; ``row`` is its ``error`` manifest row, so no row is ever dropped."""

    def __init__(self, message: str, row: ManifestRow, cause: BaseException | None = None) -> None:
        super().__init__(message, url=row.source)
        self.row = row
        self.cause = cause


def run_settling_races(
    run_once: Callable[[], ManifestRow], row: ManifestRow, what: str, opts: TransferOptions, notes: list[str]
) -> ManifestRow:
    """Run a write (``what``: upload, copy) and settle the two races it can lose.

    A source that changed under it is started over once with ``opts.restart_on_change``, and
    ``notes`` (the row's) then say only that. A conditional write refused because the destination
    appeared after it was looked up (or listed) is what ``opts.no_clobber`` asked for: a skip row."""
    try:
        try:
            return run_once()
        except SourceChangedError:
            if not opts.restart_on_change:
                raise
            log.warning("%s changed during the %s; starting over once", row.source, what)
            notes[:] = [f"the source changed during the {what}: restarted once (restart_on_change)"]
        return run_once()
    except PreconditionFailedError as exc:
        if not opts.no_clobber or isinstance(exc, SourceChangedError):
            raise
        log.info("%s: the destination appeared during the %s (no_clobber); left as it was", row.destination, what)
        return row.finish(SKIP, f"the destination appeared during the {what} (no_clobber); left as it was")


def run_for_row(row: ManifestRow, transfer: Callable[[], ManifestRow], blame: str) -> ManifestRow:
    """Run ``transfer``; any failure becomes a TransferError carrying ``row`` as its error row.

    ``blame`` names the row field (``source`` or ``destination``) an OS error is reported against.
    """
    try:
        return transfer()
    except TransferError:
        raise
    except Interrupted as exc:
        exc.row = row.finish(ERROR, f"{exc}; {exc.aftermath}" if exc.aftermath else str(exc))
        raise
    except (FerryError, OSError) as exc:
        text = str(exc) if isinstance(exc, FerryError) else f"{getattr(row, blame)}: {exc.strerror or exc}"
        raise TransferError(text, row.finish(ERROR, text), exc) from exc
