"""Parallel composite upload of a local file, with stored full-object checksums and no orphans.

Large files go up in parts on a pool of threads: S3 multipart parts (each sent with its
CRC32C, the whole completed as a FULL_OBJECT CRC32C the store keeps), or GCS temporary
components joined by compose (a tree of composes beyond 32 sources). A worker hashes its part
with pread into a reused buffer, then streams it from a pread-backed slice: memory is flat in
file size. A tracker (mode 0600) holds the upload id or component prefix and the finished parts,
so a killed or retried run lists what the server has, checks it, and sends only the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import (
    ChecksumMismatchError,
    FerryError,
    InvalidArgumentError,
    NotFoundError,
    SourceChangedError,
)
from ferry_provider.hooks.url import local_path
from ferry_provider.transfer import checksums
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.file_slice import FileSlice
from ferry_provider.transfer.link_controller import link_controller_for
from ferry_provider.transfer.manifest import OK, SKIP, ManifestRow, now, run_for_row, run_settling_races
from ferry_provider.transfer.options import TransferOptions
from ferry_provider.transfer.part_sources import FileParts
from ferry_provider.transfer.parted_write import PartedWrite
from ferry_provider.transfer.plan import MiB, RangePlan, sink_part_size
from ferry_provider.transfer.progress import Progress
from ferry_provider.transfer.shared_fd import SharedFd
from ferry_provider.transfer.sinks import ObjectSink, sink_for
from ferry_provider.transfer.verification import Check, digest_of_file
from ferry_provider.transfer.writer_lock import LOCK_SUFFIX, WriterLock
from ferry_provider.transfer.written_check import verify_written

log = logging.getLogger("ferry_provider.transfer")
T = TypeVar("T")


@dataclass(frozen=True)
class UploadOptions(TransferOptions):
    """Upload options. ``no_clobber`` also makes the final write conditional on the store;
    ``state_dir`` defaults to beside the source, else ~/.local/state/ferry; ``check_hashes='always'``
    reads the object back when the store keeps no full-object CRC32C to compare with."""

    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def upload(
    hook: StorageHook,
    source: str,
    destination: str,
    options: UploadOptions | None = None,
    *,
    known_absent: bool = False,
) -> ManifestRow:
    """Upload the local file ``source`` to ``destination``; return its manifest row.

    A ``destination`` ending in ``/`` is a folder: the file's name is appended, as downloads do.
    ``known_absent``: the caller has just listed the destination and no object was there, so the
    lookup for skip_identical / no_clobber is spared (no_clobber still holds: the write is
    conditional). Raises TransferError (carrying the ``error`` row) when the upload fails.
    """
    opts = options or UploadOptions()
    row = ManifestRow(source=source, destination=destination, start=now())
    return run_for_row(row, lambda: _Upload(hook, source, destination, opts, row, known_absent).run(), blame="source")


def upload_tracker_path(source: str, destination: str, state_dir: str | None) -> str:
    """Beside the source when its folder is writable, else in the user's state folder."""
    digest = hashlib.sha1(f"{os.path.abspath(source)}\0{destination}".encode()).hexdigest()[:16]
    name = f"{os.path.basename(source)[:60]}.{digest}.ferry-upload-tracker"
    folder = state_dir
    if folder is None:
        beside = os.path.dirname(os.path.abspath(source))
        folder = beside if os.access(beside, os.W_OK) else os.path.expanduser("~/.local/state/ferry")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, name)


class _Upload:
    def __init__(
        self,
        hook: StorageHook,
        source: str,
        destination: str,
        opts: UploadOptions,
        row: ManifestRow,
        known_absent: bool = False,
    ) -> None:
        self.hook = hook
        self.known_absent = known_absent
        self.opts = opts
        self.row = row
        self.source = local_path(source, "source")
        row.source = self.source
        if destination.endswith("/"):
            destination += os.path.basename(self.source)
            row.destination = destination
        self.dst = hook.parse(destination).require_key()
        if not hook.capabilities.writable:
            raise InvalidArgumentError(f"{destination}: this store is read-only")
        self._notes: list[str] = []  # what the row's description says besides the verification

    def _crc(self, start: int, size: int) -> str:
        """CRC32C (hex) of ``size`` bytes of the source at ``start``."""
        return checksums.hex32(self._parts.crc(start, size))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self.opts.retry.run(fn, what=f"{self.dst.raw}: {what}")

    # -- the steps ---------------------------------------------------------------------------
    def run(self) -> ManifestRow:
        return run_settling_races(self._run_once, self.row, "upload", self.opts, self._notes)

    def _run_once(self) -> ManifestRow:
        fd, st = self._open_source()
        shared = SharedFd(fd)  # closed by whoever is last: us, or a part still running
        self._parts = FileParts(shared, self.source, lambda: self._check_unchanged(fd, st))
        try:
            return self._run(fd, st)
        finally:
            shared.release()

    def _run(self, fd: int, st: os.stat_result) -> ManifestRow:
        self.row.source_size = st.st_size
        self._check_source(fd, st)
        skip = self._skip_reason(st.st_size)
        if skip:
            self._forget_earlier_attempt()
            log.info("%s -> %s: skipped (%s)", self.source, self.dst.raw, skip)
            return self.row.finish(SKIP, skip)
        caps = self.hook.capabilities
        part_size = sink_part_size(st.st_size, self.opts.parallelism, caps, self.opts.part_size)
        parted = st.st_size > part_size and (caps.multipart_upload or caps.composite_upload)
        if not parted:
            return self._single_put(fd, st)
        return self._parted(st, part_size)

    def _sink(self) -> ObjectSink:
        return sink_for(
            self.hook,
            self.dst,
            self.opts.retry,
            content_type=self.opts.content_type,
            metadata=self.opts.metadata,
            no_clobber=self.opts.no_clobber,
        )

    def _forget_earlier_attempt(self) -> None:
        """A skip makes an earlier interrupted upload of this file useless: remove it and its
        tracker, which nothing would remove otherwise."""
        tracker = upload_tracker_path(self.source, self.dst.raw, self.opts.state_dir)
        if not os.path.exists(tracker):
            return
        with WriterLock(tracker + LOCK_SUFFIX, self.dst.raw):
            earlier = Checkpoint.peek(tracker)
            if self._sink().discard(earlier.extra, list(earlier.parts)):
                earlier.delete()

    def _check_source(self, fd: int, st: os.stat_result) -> None:
        """The caller's expectations of the source, checked before a byte is sent."""
        expected = self.opts.expected_size
        if expected is not None and st.st_size != expected:
            raise ChecksumMismatchError(
                f"{self.source}: expected {expected} bytes, the file has {st.st_size}; nothing was uploaded",
                url=self.source,
            )
        for name, value in self.opts.expected_digests.items():
            actual = digest_of_file(self.source, Check(name, value.lower()), self.opts.parallelism)
            if actual != value.lower():
                raise ChecksumMismatchError(
                    f"{self.source}: {name} mismatch: expected {value.lower()}, the file has {actual}; "
                    "nothing was uploaded",
                    url=self.source,
                )
            if name == "md5":
                self.row.md5 = actual
        if self.opts.expected_digests:
            self._notes.append(f"source matched expected {', '.join(sorted(self.opts.expected_digests))}")
        self._check_unchanged(fd, st)

    def _open_source(self) -> tuple[int, os.stat_result]:
        try:
            # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever; it is then
            # refused below as not a regular file (on which the flag has no effect).
            fd = os.open(self.source, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise NotFoundError(f"source file {self.source} does not exist", url=self.source) from None
        except IsADirectoryError:
            raise InvalidArgumentError(f"source {self.source} is a directory, not a file", url=self.source) from None
        except PermissionError:
            raise InvalidArgumentError(f"source file {self.source} is not readable", url=self.source) from None
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a directory" if stat_module.S_ISDIR(st.st_mode) else "not a regular file"
            raise InvalidArgumentError(f"source {self.source} is {kind}, not a file to upload", url=self.source)
        return fd, st

    def _skip_reason(self, size: int) -> str:
        if self.known_absent:
            return ""
        try:
            existing = self._call("head", lambda: self.hook.head(self.dst.raw))
        except NotFoundError:
            return ""
        if self.opts.no_clobber:
            return "destination exists (no_clobber); nothing compared"
        if not self.opts.skip_identical or existing.size != size or not existing.crc32c or "-" in existing.crc32c:
            return ""
        if self._crc(0, size) != existing.crc32c:
            return ""
        # The row carries the digests compared, so a DAG templating them checks something on reruns.
        self.row.crc32c = existing.crc32c
        self.row.md5 = existing.md5 or self.row.md5
        return "destination is identical (same size and crc32c)"

    def _check_unchanged(self, fd: int, st: os.stat_result) -> None:
        now_st = os.fstat(fd)
        if (now_st.st_size, now_st.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise SourceChangedError(
                f"{self.source} changed while uploading (size {st.st_size} -> {now_st.st_size}); nothing was published",
                url=self.source,
            )

    # -- one request ------------------------------------------------------------------------
    def _single_put(self, fd: int, st: os.stat_result) -> ManifestRow:
        progress = self._progress(st.st_size)
        crc = self._crc(0, st.st_size)
        if st.st_size > (self.hook.capabilities.max_single_put or st.st_size):
            raise InvalidArgumentError(f"{self.source}: {st.st_size} bytes exceed this store's single-request limit")

        def put() -> ObjectInfo:
            return self.hook.put(
                self.dst.raw,
                FileSlice(fd, 0, st.st_size),
                size=st.st_size,
                content_type=self.opts.content_type,
                metadata=self.opts.metadata or None,
                crc32c=crc,
                if_absent=self.opts.no_clobber,
            )

        info = self._call("put", put)
        try:
            self._check_unchanged(fd, st)
        except SourceChangedError:
            # The PUT published a snapshot the file no longer is: take it back, as a multipart
            # upload would never have been completed, so the row's "nothing was published" holds.
            with contextlib.suppress(FerryError):
                self._call("delete", lambda: self.hook.delete(self.dst.raw))
            raise
        progress.add(st.st_size)
        return self._finish(info, crc, progress, f"single request; {self._verified(info, crc)}")

    # -- many parts -------------------------------------------------------------------------
    def _parted(self, st: os.stat_result, part_size: int) -> ManifestRow:
        identity = {
            "source": self.source,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino,
            "destination": self.dst.raw,
            "part_size": part_size,
        }
        progress = self._progress(st.st_size)
        job = PartedWrite(
            self._parts,
            self._sink(),
            RangePlan(st.st_size, part_size),
            tracker=upload_tracker_path(self.source, self.dst.raw, self.opts.state_dir),
            identity=identity,
            parallelism=self.opts.parallelism,
            retry=self.opts.retry,
            resume=self.opts.resume,
            verify_on_resume=self.opts.verify_on_resume,
            progress=progress,
            label=self.source,
            link=link_controller_for(self.opts),
        )
        try:
            written = job.run()
        finally:
            self.row.upload_id = job.sink.upload_id
            self.row.bytes_transferred = progress.transferred
        crc = checksums.hex32(written.crcs["crc32c"])
        notes = [f"{written.parts} parts; {self._verified(written.info, crc)}"]
        if written.reused:
            notes.append(f"resumed: {written.reused} part(s) reused")
        return self._finish(written.info, crc, progress, "; ".join(notes))

    # -- the end ----------------------------------------------------------------------------
    def _verified(self, info: ObjectInfo, crc: str) -> str:
        return verify_written(
            self.hook, self.dst.raw, info, self.row.source_size, crc, self.opts.check_hashes, self.opts.retry
        )

    def _finish(self, info: ObjectInfo, crc: str, progress: Progress, description: str) -> ManifestRow:
        self.row.bytes_transferred = progress.transferred
        self.row.crc32c = crc
        self.row.md5 = info.md5 or self.row.md5
        description = "; ".join([description, *self._notes])
        rate = progress.transferred / max(progress.elapsed, 1e-9) / MiB
        log.info(
            "%s -> %s: %d bytes in %.2fs (%.1f MiB/s), %s",
            self.source,
            self.dst.raw,
            info.size,
            progress.elapsed,
            rate,
            description,
        )
        return self.row.finish(OK, description)

    def _progress(self, total: int) -> Progress:
        return Progress(
            f"{self.source} -> {self.dst.raw}",
            total,
            interval=self.opts.progress_interval,
            callback=self.opts.progress_callback,
        )
