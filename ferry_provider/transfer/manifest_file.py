"""Manifest files: one row per object, written as each object finishes, on disk or in a bucket.

Formats: CSV with gsutil's header (``Source,Destination,Start,End,Md5,UploadId,Source Size,Bytes
Transferred,Result,Description``) plus ``Crc32c``, or JSON lines with the row's field names.
Readers accept both, and CSV written with the field names as its header (older Ferry files).

A manifest on object storage is written through a local spool, uploaded whole when the run ends
(also when it fails). Object stores have no append; numbered part objects would turn one
manifest into many for every reader. A crash before the upload leaves the spool in the state
folder, and the next run with the same manifest URL starts from it, so no finished row is lost.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from typing import Any

from ferry_provider.hooks.base import StorageHook
from ferry_provider.hooks.errors import InvalidArgumentError, NotFoundError
from ferry_provider.hooks.url import parse_url
from ferry_provider.transfer.manifest import OK, SKIP, ManifestRow
from ferry_provider.transfer.writer_lock import LOCK_SUFFIX, WriterLock

# Our field names -> gsutil's manifest header (crc32c is ours, appended last).
GSUTIL_HEADER = {
    "source": "Source",
    "destination": "Destination",
    "start": "Start",
    "end": "End",
    "md5": "Md5",
    "upload_id": "UploadId",
    "source_size": "Source Size",
    "bytes_transferred": "Bytes Transferred",
    "result": "Result",
    "description": "Description",
    "crc32c": "Crc32c",
}
_FIELD_OF = {header: field for field, header in GSUTIL_HEADER.items()}
FORMATS = ("csv", "jsonl")


def format_of(location: str, requested: str | None = None) -> str:
    """The format asked for, else the one the name says (``.jsonl``/``.json``: JSON lines)."""
    if requested is not None:
        if requested not in FORMATS:
            raise InvalidArgumentError(f"manifest_format must be one of {', '.join(FORMATS)}, got {requested!r}")
        return requested
    return "jsonl" if location.lower().endswith((".jsonl", ".json")) else "csv"


def encode_rows(rows: Iterable[ManifestRow], fmt: str, *, header: bool) -> str:
    out = io.StringIO()
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row.to_dict(), sort_keys=True) + "\n")
        return out.getvalue()
    writer = csv.writer(out)
    if header:
        writer.writerow(GSUTIL_HEADER.values())
    for row in rows:
        values = row.to_dict()
        writer.writerow(["" if values[f] is None else values[f] for f in GSUTIL_HEADER])
    return out.getvalue()


def parse_rows(text: str) -> Iterator[dict[str, str]]:
    """Rows as dicts keyed by ManifestRow's field names, whatever the format."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        for line in text.splitlines():
            if line.strip():
                with contextlib.suppress(ValueError):  # a torn last line from a crash
                    yield {k: "" if v is None else str(v) for k, v in json.loads(line).items()}
        return
    for raw in csv.DictReader(io.StringIO(text)):
        yield {_FIELD_OF.get(k, k): v for k, v in raw.items() if k is not None}


def row_from_dict(raw: dict[str, str]) -> ManifestRow:
    """A row read back from a manifest (numbers parsed, missing fields empty)."""
    values: dict[str, Any] = {f.name: raw.get(f.name) or "" for f in fields(ManifestRow)}
    values["source_size"] = int(values["source_size"]) if values["source_size"] else None
    values["bytes_transferred"] = int(values["bytes_transferred"] or 0)
    return ManifestRow(**values)


def row_key(source: str, destination: str) -> bytes:
    """A compact identity of one (source, destination) pair: 16 bytes however long the URLs."""
    return hashlib.blake2b(f"{source}\0{destination}".encode(), digest_size=16).digest()


def done_keys(text: str) -> set[bytes]:
    """The keys (row_key) of the rows in ``text`` that are ``OK`` or ``skip``."""
    return {
        row_key(row.get("source", ""), row.get("destination", ""))
        for row in parse_rows(text)
        if row.get("result") in (OK, SKIP)
    }


def read_manifest(
    location: str, *, hook_for: Callable[[str], StorageHook] | None = None, state_dir: str | None = None
) -> str:
    """What a manifest holds now, without taking it for a run: a local file, or for an object
    URL the spool an interrupted run left, else the stored object ('' when there is none)."""
    parsed = parse_url(location)
    path = parsed.key if parsed.is_local else spool_path(location, state_dir, create=False)
    remote = hook_for(location) if hook_for is not None and not parsed.is_local else None
    return _manifest_text(location, path, remote)


def _manifest_text(location: str, path: str, remote: StorageHook | None) -> str:
    """The rows at ``path`` (a local manifest or a spool), else those stored at ``location``."""
    if os.path.exists(path):
        with open(path, newline="") as f:
            return f.read()
    if remote is None:
        return ""
    with contextlib.suppress(NotFoundError):
        return remote.read_bytes(location).decode()
    return ""


def spool_path(location: str, state_dir: str | None, *, create: bool = True) -> str:
    """Where the rows of an object-URL manifest wait for their upload."""
    folder = state_dir or os.path.expanduser("~/.local/state/ferry")
    if create:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    digest = hashlib.sha1(location.encode()).hexdigest()[:16]
    return os.path.join(folder, f"manifest.{digest}.ferry-spool")


def append_rows(path: str, rows: list[ManifestRow], fmt: str | None = None) -> None:
    """Append rows to a local manifest, writing the CSV header when the file is new."""
    fmt = format_of(path, fmt)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        f.write(encode_rows(rows, fmt, header=new))


class ManifestWriter:
    """Rows of one run, appended as objects finish, to a local file or (through a spool) to an
    object URL. ``done`` holds the keys of rows already ``OK``/``skip`` when the run began."""

    def __init__(
        self,
        location: str,
        *,
        fmt: str | None = None,
        hook_for: Callable[[str], StorageHook] | None = None,
        state_dir: str | None = None,
    ) -> None:
        self.location = location
        self.fmt = format_of(location, fmt)
        parsed = parse_url(location)
        self.remote = None if parsed.is_local else (hook_for(location) if hook_for else None)
        if not parsed.is_local and self.remote is None:
            raise InvalidArgumentError(f"manifest {location!r}: no store to write it to")
        if self.remote is not None and not self.remote.capabilities.writable:
            raise InvalidArgumentError(f"manifest {location!r}: that store is read-only")
        self.path = parsed.key if parsed.is_local else spool_path(location, state_dir)
        if parsed.is_local:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        # One run per manifest: two would each write rows for the objects both did (a local
        # file), or one would upload the spool and delete it under the other (an object URL).
        # The second fails at once, naming the holder.
        self._writer_lock: WriterLock | None = WriterLock(self.path + LOCK_SUFFIX, f"manifest {location}")
        self._writer_lock.acquire()
        self._lock = threading.Lock()
        self.done: set[bytes] = set()
        try:
            self._load()
            self._file = open(self.path, "a", newline="")  # noqa: SIM115 - kept open for the whole run
        except BaseException:
            self._release()
            raise

    def _load(self) -> None:
        """Read what the manifest already holds (a rerun skips its finished rows); for a remote
        manifest, a spool an interrupted run left wins over the uploaded copy, which it extends."""
        on_disk = os.path.exists(self.path)
        text = _manifest_text(self.location, self.path, self.remote)
        if on_disk and text and not text.endswith("\n"):
            # A row cut off by a crash: it was never whole (its object is done again), and the
            # rows appended next must not continue its line.
            text = text[: text.rfind("\n") + 1]
            with open(self.path, "r+", newline="") as f:
                f.truncate(len(text.encode()))
        elif not on_disk and text:  # the stored copy, which the spool now extends
            with open(self.path, "w", newline="") as f:
                f.write(text)
        self.done = done_keys(text)
        self._has_content = bool(text.strip())

    def write(self, row: ManifestRow) -> None:
        with self._lock:
            self._file.write(encode_rows([row], self.fmt, header=not self._has_content))
            self._has_content = True
            self._file.flush()  # a killed run keeps every finished row

    def close(self) -> None:
        """Flush, and upload a remote manifest; its spool goes once the upload succeeded."""
        with self._lock:
            if self._file.closed:
                return
            self._file.close()
        if self.remote is None:
            self._release()
            return
        try:
            with open(self.path, "rb") as f:
                data = f.read()
            self.remote.put(self.location, data, size=len(data), content_type=content_type_of(self.fmt))
            os.unlink(self.path)
        finally:
            self._release()

    def _release(self) -> None:
        if self._writer_lock is not None:
            self._writer_lock.release()
            self._writer_lock = None


def content_type_of(fmt: str) -> str:
    return "application/x-ndjson" if fmt == "jsonl" else "text/csv"
