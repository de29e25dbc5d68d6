"""Copies between objects: server-side when one store holds both ends, else a parallel pipeline.

- **Server-side** (the same store and credentials on both ends): no byte passes through the
  worker. Up to ``multipart_copy_threshold`` one request (S3 CopyObject pinned by ETag and
  version; GCS rewrite, its token kept in the tracker); above it, parallel S3 UploadPartCopy
  parts on the shared parted-write job, checkpointed like an upload.
- **Pipeline** (different stores or credentials): ranged GET of part *i* feeds the upload of part
  *i*, several parts in flight; memory is parallelism x part size. CRC32C is computed on the
  bytes in flight and combined; digests that need the bytes in order (MD5, SHA-*) are fed part
  by part in order. The source's digest is checked before the object is completed, so a mismatch
  never publishes it; the destination's stored CRC32C is checked after.

The row's description starts with ``server-side`` or ``pipeline``, then says what proved the copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import (
    ChecksumMismatchError,
    FerryError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RangeNotSupportedError,
    SourceChangedError,
)
from ferry_provider.hooks.url import redact
from ferry_provider.transfer import checksums
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.interrupt import deferred_signals
from ferry_provider.transfer.link_controller import link_controller_for
from ferry_provider.transfer.manifest import OK, SKIP, ManifestRow, now, run_for_row, run_settling_races
from ferry_provider.transfer.options import TransferOptions
from ferry_provider.transfer.ordered_digest import OrderedDigests
from ferry_provider.transfer.part_sources import PartSource, RemoteParts, ServerSideParts, StreamParts
from ferry_provider.transfer.parted_write import PartedWrite, Written
from ferry_provider.transfer.plan import MiB, RangePlan, sink_part_size
from ferry_provider.transfer.progress import Progress
from ferry_provider.transfer.sinks import sink_for
from ferry_provider.transfer.verification import Selection, choose_checks
from ferry_provider.transfer.writer_lock import LOCK_SUFFIX, WriterLock
from ferry_provider.transfer.written_check import delete_bad, read_back_crc32c, verify_written

log = logging.getLogger("ferry_provider.transfer")

# Server-side copies up to this size are one request; above it, parallel part copies are faster
# (each part is copied by the store on its own) and resumable.
DEFAULT_MULTIPART_COPY_THRESHOLD = 256 * MiB
# Bytes through the worker are held one part per worker: 8 MiB parts keep a pipeline at
# parallelism 8 within 64 MiB of buffers, and S3 parts above its 5 MiB minimum.
PIPELINE_PART = 8 * MiB
SERVER_SIDE_MODES = ("auto", "never")
# The most part buffers a pipeline copy holds when the link chooses its connections (8 of 8 MiB):
# with the interpreter's own ~60 MiB a 1 GiB copy stays near 128 MiB of RSS. On loopback, 16
# connections were no faster than 4 (two SeaweedFS, 1 GiB: 10.2 s against 9.7 s).
PIPELINE_MEMORY = 64 * MiB


@dataclass(frozen=True)
class CopyOptions(TransferOptions):
    """Copy options. ``content_type`` and ``metadata`` replace the source's (None: carried
    over); ``server_side='never'`` sends the bytes through the worker even within one store."""

    delete_source: bool = False  # a move: the source goes once the destination is verified
    content_type: str | None = None
    metadata: dict[str, str] | None = None
    server_side: str = "auto"
    multipart_copy_threshold: int | None = None  # None: DEFAULT_MULTIPART_COPY_THRESHOLD
    extra_notes: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.server_side not in SERVER_SIDE_MODES:
            raise InvalidArgumentError(
                f"server_side must be one of {', '.join(SERVER_SIDE_MODES)}, got {self.server_side!r}"
            )
        threshold = self.multipart_copy_threshold
        if threshold is not None and (not isinstance(threshold, int) or threshold < 0):
            raise InvalidArgumentError(f"multipart_copy_threshold must be a number of bytes >= 0, got {threshold!r}")


def copy(
    source_hook: StorageHook,
    destination_hook: StorageHook,
    source: str,
    destination: str,
    options: CopyOptions | None = None,
    *,
    known_absent: bool = False,
) -> ManifestRow:
    """Copy the object ``source`` to ``destination``; return its manifest row.

    A ``destination`` ending in ``/`` is a folder: the source's name is appended.
    ``known_absent``: as for upload(), the destination was just listed and is not there.
    Raises TransferError (carrying the ``error`` row) when the copy fails.
    """
    opts = options or CopyOptions()
    row = ManifestRow(source=redact(source), destination=redact(destination), start=now())

    def run() -> ManifestRow:
        return _Copy(source_hook, destination_hook, source, destination, opts, row, known_absent).run()

    return run_for_row(row, run, blame="destination")


def copy_tracker_path(source: str, destination: str, state_dir: str | None) -> str:
    """In ``state_dir``, else the user's state folder: a copy has no local file to sit beside."""
    digest = hashlib.sha1(f"{source}\0{destination}".encode()).hexdigest()[:16]
    name = f"{os.path.basename(destination)[:60]}.{digest}.ferry-copy-tracker"
    folder = state_dir or os.path.expanduser("~/.local/state/ferry")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, name)


class _Copy:
    def __init__(
        self,
        source_hook: StorageHook,
        destination_hook: StorageHook,
        source: str,
        destination: str,
        opts: CopyOptions,
        row: ManifestRow,
        known_absent: bool = False,
    ) -> None:
        self.known_absent = known_absent
        self.src_hook = source_hook
        self.dst_hook = destination_hook
        self.opts = opts
        self.row = row
        self.src = source_hook.parse(source).require_key()
        if destination.endswith("/"):
            name = os.path.basename(self.src.key.rstrip("/"))
            destination += name
            row.destination = redact(destination)
        self.dst = destination_hook.parse(destination).require_key()
        if self.src.is_local or self.dst.is_local:
            raise InvalidArgumentError("copy() joins two object stores; local files are downloaded or uploaded")
        if not destination_hook.capabilities.writable:
            raise InvalidArgumentError(f"destination {self.dst.raw}: this store is read-only", url=self.dst.raw)
        if opts.delete_source and not source_hook.capabilities.writable:
            raise InvalidArgumentError(f"delete_source: {self.src.raw} is on a read-only store; it cannot be moved")
        self.server_side = opts.server_side == "auto" and source_hook.same_store(destination_hook)
        if source_hook.same_store(destination_hook) and (self.src.bucket, self.src.key) == (
            self.dst.bucket,
            self.dst.key,
        ):
            raise InvalidArgumentError(f"source and destination are the same object: {self.dst.raw}", url=self.dst.raw)
        self._notes: list[str] = []

    # -- the steps ---------------------------------------------------------------------------
    def run(self) -> ManifestRow:
        return run_settling_races(self._run, self.row, "copy", self.opts, self._notes)

    def _run(self) -> ManifestRow:
        pin = self._head_source()
        selection = self._select_checks(pin)
        skip = self._skip_reason(pin)
        if skip:
            log.info("%s -> %s: skipped (%s)", self.row.source, self.dst.raw, skip)
            row = self.row.finish(SKIP, skip)
            if self.opts.delete_source and skip.startswith("destination is identical"):
                self._delete_source()
            return row
        tracker = copy_tracker_path(self.src.raw, self.dst.raw, self.opts.state_dir)
        with WriterLock(tracker + LOCK_SUFFIX, self.dst.raw):
            try:
                return self._copy(pin, selection, tracker)
            except RangeNotSupportedError:
                self._notes.append("the source serves no ranges: read as one stream")
                return self._pipeline(pin, selection, tracker, stream=True)

    def _copy(self, pin: ObjectInfo, selection: Selection, tracker: str) -> ManifestRow:
        if self.server_side:
            try:
                return self._server_side(pin, selection, tracker)
            except (InvalidArgumentError, PermissionDeniedError) as exc:
                # The store refused to copy (another region or account, a storage class, SSE-C,
                # an S3-compatible store without the call): the bytes can still go through here.
                log.warning(
                    "%s: the store refused a server-side copy (%s); copying through this worker", self.dst.raw, exc
                )
                self._notes.append(f"server-side copy refused ({exc}): copied through the pipeline instead")
                self.server_side = False
        return self._pipeline(pin, selection, tracker, stream=not self._ranged(pin))

    def _head_source(self) -> ObjectInfo:
        pin = self.opts.retry.run(lambda: self.src_hook.head(self.src.raw), what=f"{self.row.source}: head")
        if pin.size is None:
            raise InvalidArgumentError(f"{self.row.source}: the source states no length; download it instead")
        self.row.source_size = pin.size
        expected = self.opts.expected_size
        if expected is not None and pin.size != expected:
            raise ChecksumMismatchError(
                f"{self.row.source}: expected {expected} bytes, the source has {pin.size}; nothing was copied",
                url=self.row.source,
            )
        return pin

    def _select_checks(self, pin: ObjectInfo) -> Selection:
        def part_sizes() -> list[int] | None:
            return self.opts.retry.run(
                lambda: self.src_hook.part_sizes(self.src.raw, pin), what=f"{self.row.source}: part layout"
            )

        return choose_checks(pin, self.opts.check_hashes, self.opts.expected_digests, part_sizes)

    def _skip_reason(self, pin: ObjectInfo) -> str:
        if self.known_absent:
            return ""
        try:
            existing = self.opts.retry.run(lambda: self.dst_hook.head(self.dst.raw), what=f"{self.dst.raw}: head")
        except NotFoundError:
            return ""
        if self.opts.no_clobber:
            return "destination exists (no_clobber); nothing compared"
        if not self.opts.skip_identical or existing.size != pin.size:
            return ""
        for name in ("crc32c", "md5"):
            mine, theirs = getattr(pin, name), getattr(existing, name)
            if mine and theirs and "-" not in mine and mine == theirs:
                # The row carries the digest compared, so a DAG templating it checks something.
                setattr(self.row, name, mine)
                return f"destination is identical (same size and {name})"
        return ""

    def _ranged(self, pin: ObjectInfo) -> bool:
        if not self.src_hook.capabilities.ranged_reads:
            self._notes.append("the source serves no ranges: read as one stream")
            return False
        if not pin.pinnable and not self.opts.expected_digests:
            # Ranges fetched at different moments could come from different versions.
            self._notes.append("read as one stream: the source gives no version or strong ETag to pin ranges to")
            return False
        return True

    # -- server-side -------------------------------------------------------------------------
    def _server_side(self, pin: ObjectInfo, selection: Selection, tracker: str) -> ManifestRow:
        assert pin.size is not None
        self._check_expected_against_source(pin)
        caps = self.dst_hook.capabilities
        threshold = self.opts.multipart_copy_threshold
        threshold = DEFAULT_MULTIPART_COPY_THRESHOLD if threshold is None else threshold
        if caps.part_copy and pin.size > threshold:
            return self._server_side_parts(pin, tracker)
        if not caps.server_side_copy:
            raise InvalidArgumentError(f"{self.dst.raw}: this store cannot copy server-side; use server_side='never'")
        checkpoint = Checkpoint.load(tracker, self._identity(pin, 0))
        token = checkpoint.extra.get("rewrite_token")
        if token:
            self._notes.append("continued an earlier run's rewrite")
        progress = self._progress(pin.size)
        try:
            info = self.opts.retry.run(
                lambda: self.dst_hook.copy(
                    self.src.raw,
                    self.dst.raw,
                    pin=pin,
                    if_absent=self.opts.no_clobber,
                    content_type=self.opts.content_type,
                    metadata=self.opts.metadata,
                    resume_token=checkpoint.extra.get("rewrite_token"),
                    on_token=lambda t: checkpoint.set_extra(rewrite_token=t),
                    checksum=self._store_checksum,
                ),
                what=f"{self.dst.raw}: copy",
            )
        except BaseException:
            if not checkpoint.extra.get("rewrite_token"):
                checkpoint.delete()  # nothing to continue from
            raise
        checkpoint.delete()
        progress.add(pin.size, moved=False)
        verified = self._verify_server_copy(pin, info, None)
        return self._finish(info, progress, f"server-side, one request; {verified}")

    def _server_side_parts(self, pin: ObjectInfo, tracker: str) -> ManifestRow:
        assert pin.size is not None
        caps = self.dst_hook.capabilities
        part_size = sink_part_size(pin.size, self.opts.parallelism, caps, self.opts.part_size)
        progress = self._progress(pin.size)
        written = self._write_parts(ServerSideParts(self.src.raw, pin), pin, part_size, tracker, progress)
        crc = checksums.hex32(written.crcs["crc32c"]) if "crc32c" in written.crcs else None
        verified = self._verify_server_copy(pin, written.info, crc)
        return self._finish(written.info, progress, f"server-side, {written.parts} part copies; {verified}", written)

    def _check_expected_against_source(self, pin: ObjectInfo) -> None:
        """With no byte passing through, expected digests are checked against what the source
        store keeps, before anything is written (the rest after the copy, by reading it back)."""
        for name, value in self.opts.expected_digests.items():
            stored = getattr(pin, name, None) if name in ("crc32c", "md5", "crc32", "crc64nvme") else None
            if stored and "-" not in stored and stored != value.lower():
                raise ChecksumMismatchError(
                    f"{self.row.source}: {name} mismatch: expected {value.lower()}, the source has {stored}; "
                    "nothing was copied",
                    url=self.row.source,
                )

    def _verify_server_copy(self, pin: ObjectInfo, info: ObjectInfo, crc: str | None) -> str:
        """The store copied the bytes itself: its digests of the copy against the source's."""
        if info.size != pin.size:
            self._copy_differs(pin, f"size mismatch: source {pin.size}, copy {info.size}")
        done: list[str] = []
        if self.opts.check_hashes != "never":
            theirs = info.crc32c if info.crc32c and "-" not in info.crc32c else crc
            for name, mine, copied in (("crc32c", pin.crc32c, theirs), ("md5", pin.md5, info.md5)):
                if mine and copied and "-" not in mine:
                    if mine != copied:
                        self._copy_differs(pin, f"{name} mismatch: source {mine}, copy {copied}")
                    done.append(name)
                    break
            if "crc32c" not in done and self.opts.check_hashes == "always":
                done.append(self._crc32c_by_reading_back(pin, info, crc))
            done += self._expected_by_reading_back(info)
        self.row.crc32c = (info.crc32c if info.crc32c and "-" not in info.crc32c else crc) or self.row.crc32c
        self.row.md5 = info.md5 or ""
        if done:
            return f"verified size and {', '.join(done)} (the source's against the copy's)"
        if self.opts.check_hashes == "never":
            return "size verified (check_hashes='never')"
        return "size verified (the source keeps no digest the copy's can be compared with)"

    def _crc32c_by_reading_back(self, pin: ObjectInfo, info: ObjectInfo, crc: str | None) -> str:
        """check_hashes='always' and no digest kept on both sides: the source is read (pinned to
        the version copied) and hashed, and so is the copy unless the store keeps its CRC32C."""
        source_crc = read_back_crc32c(self.src_hook, self.src.raw, self.opts.retry, pin)
        copy_crc = info.crc32c if info.crc32c and "-" not in info.crc32c else crc
        copy_crc = copy_crc or read_back_crc32c(self.dst_hook, self.dst.raw, self.opts.retry)
        if source_crc != copy_crc:
            self._copy_differs(pin, f"crc32c mismatch: source read back {source_crc}, copy {copy_crc}")
        self.row.crc32c = copy_crc
        return "crc32c (the source read back)"

    def _copy_differs(self, pin: ObjectInfo, why: str) -> None:
        """A server-side copy that differs from the source: most likely the source changed under
        a store that ignores the copy's source precondition; the copy goes either way."""
        try:
            now = self.src_hook.head(self.src.raw)
        except FerryError:
            now = None
        if now is None or (now.size, now.etag, now.version) != (pin.size, pin.etag, pin.version):
            with contextlib.suppress(FerryError):
                self.opts.retry.run(lambda: self.dst_hook.delete(self.dst.raw), what=f"{self.dst.raw}: delete")
            raise SourceChangedError(
                f"{self.row.source} changed during the copy ({why}); the copy was deleted", url=self.row.source
            )
        self._delete_bad(why)

    def _delete_bad(self, why: str) -> None:
        delete_bad(self.dst_hook, self.dst.raw, why, self.opts.retry)

    def _expected_by_reading_back(self, info: ObjectInfo) -> list[str]:
        out = []
        for name, value in self.opts.expected_digests.items():
            stored = getattr(info, name, None) if name in ("crc32c", "md5", "crc32", "crc64nvme") else None
            actual = stored if stored and "-" not in stored else self._read_back(name)
            if actual != value.lower():
                self._delete_bad(f"{name} mismatch: expected {value.lower()}, the copy has {actual}")
            out.append(f"expected {name}")
        return out

    def _read_back(self, algorithm: str) -> str:
        if algorithm == "crc32c":
            return read_back_crc32c(self.dst_hook, self.dst.raw, self.opts.retry)

        def read() -> str:
            hasher = checksums.new_hasher(algorithm)
            buf = memoryview(bytearray(4 * MiB))
            with self.dst_hook.open_range(self.dst.raw, 0, None) as reader:
                while n := reader.readinto(buf):
                    hasher.update(buf[:n])
            return hasher.hexdigest()

        return self.opts.retry.run(read, what=f"{self.dst.raw}: read back")

    # -- pipeline ----------------------------------------------------------------------------
    def _pipeline(self, pin: ObjectInfo, selection: Selection, tracker: str, *, stream: bool) -> ManifestRow:
        assert pin.size is not None
        caps = self.dst_hook.capabilities
        requested = self.opts.part_size
        default = max(PIPELINE_PART, caps.min_part_size)
        part_size = sink_part_size(pin.size, self.opts.parallelism, caps, default if requested is None else requested)
        streamed = [c for c in selection.checks if c.streamed and not c.per_part]
        ordered = OrderedDigests([c for c in selection.checks if not (c.streamed and not c.per_part)])
        crcs = (checksums.CRC32C, *(checksums.CRCS[c.algorithm] for c in streamed if c.algorithm != "crc32c"))
        if ordered and self.opts.resume and os.path.exists(tracker):
            self._notes.append(
                "an earlier run's parts were not reused: the source's digest needs every byte read in order"
            )
        source_cls = StreamParts if stream else RemoteParts
        source = source_cls(
            self.src_hook, self.src.raw, pin, self.opts.retry, crcs, self.row.source, ordered if ordered else None
        )
        progress = self._progress(pin.size)
        parted = pin.size > part_size and (caps.multipart_upload or caps.composite_upload)
        try:
            if not parted:
                return self._pipeline_single(pin, selection, source, ordered, progress)

            def check_source(crc_values: dict[str, int]) -> None:
                self._check_source_digests(selection, crc_values, ordered)

            written = self._write_parts(
                source,
                pin,
                part_size,
                tracker,
                progress,
                parallelism=1 if stream else None,
                before_complete=check_source,
                fresh=bool(ordered),
            )
        finally:
            if isinstance(source, StreamParts):
                source.close()
        crc = checksums.hex32(written.crcs["crc32c"])
        verified = self._verified_pipeline(selection, written.info, crc)
        description = f"pipeline, {written.parts} parts; {verified}"
        return self._finish(written.info, progress, description, written)

    def _pipeline_single(
        self, pin: ObjectInfo, selection: Selection, source: RemoteParts, ordered: OrderedDigests, progress: Progress
    ) -> ManifestRow:
        """An object that fits one part: read it whole, check it, write it in one request."""
        assert pin.size is not None
        plan = RangePlan(pin.size, max(pin.size, 1))
        prepared = source.prepare(plan.parts[0], threading.Event()) if pin.size else None
        crc_values = prepared.crcs if prepared else {a.name: 0 for a in source.crcs}
        if not pin.size and ordered:
            ordered.feed(0, memoryview(b""), threading.Event())
        self._check_source_digests(selection, crc_values, ordered)
        crc = checksums.hex32(crc_values["crc32c"])
        body = prepared.body if prepared else b""
        info = self.opts.retry.run(
            lambda: self.dst_hook.put(
                self.dst.raw,
                body,
                size=pin.size,
                content_type=self._content_type(pin),
                metadata=self._metadata(pin),
                crc32c=crc,
                if_absent=self.opts.no_clobber,
            ),
            what=f"{self.dst.raw}: put",
        )
        progress.add(pin.size or 0)
        verified = self._verified_pipeline(selection, info, crc)
        return self._finish(info, progress, f"pipeline, one request; {verified}")

    def _check_source_digests(
        self, selection: Selection, crc_values: dict[str, int], ordered: OrderedDigests | None
    ) -> None:
        """The bytes read against the source's digests (or the caller's), before publishing."""
        sequential = ordered.results() if ordered else {}
        for check in selection.checks:
            if check in sequential:
                actual = sequential[check]
            else:
                actual = checksums.CRCS[check.algorithm].hex(crc_values[check.algorithm])
            if actual != check.expected:
                raise ChecksumMismatchError(
                    f"{self.row.source}: {check.describe()} mismatch: expected {check.expected}, read {actual}; "
                    "nothing was published",
                    url=self.row.source,
                )
            if check.algorithm == "md5" and not check.per_part:
                self.row.md5 = actual

    def _verified_pipeline(self, selection: Selection, info: ObjectInfo, crc: str) -> str:
        stored = verify_written(
            self.dst_hook, self.dst.raw, info, self.row.source_size, crc, self.opts.check_hashes, self.opts.retry
        )
        self.row.crc32c = crc
        checked = ", ".join(c.describe() for c in selection.checks)
        source_part = f"source's {checked} verified on the bytes read" if checked else selection.why_none
        return f"{source_part}; {stored} at the destination"

    # -- shared ------------------------------------------------------------------------------
    def _write_parts(
        self,
        source: PartSource,
        pin: ObjectInfo,
        part_size: int,
        tracker: str,
        progress: Progress,
        *,
        parallelism: int | None = None,
        before_complete: Callable[[dict[str, int]], None] | None = None,
        fresh: bool = False,
    ) -> Written:
        """Parts from ``source`` into the destination's sink, resumable through ``tracker``.
        ``fresh``: earlier runs' parts are not reused (in-order digests need every byte read)."""
        assert pin.size is not None
        sink = sink_for(
            self.dst_hook,
            self.dst,
            self.opts.retry,
            content_type=self._content_type(pin),
            metadata=self._metadata(pin),
            no_clobber=self.opts.no_clobber,
            checksum=self._store_checksum,
        )
        job = PartedWrite(
            source,
            sink,
            RangePlan(pin.size, part_size),
            tracker=tracker,
            identity=self._identity(pin, part_size),
            parallelism=parallelism or self.opts.parallelism,
            retry=self.opts.retry,
            resume=self.opts.resume and not fresh,
            verify_on_resume=self.opts.verify_on_resume,
            progress=progress,
            label=self.row.source,
            before_complete=before_complete,
            lock=False,  # the copy holds the tracker's lock already
            # Bytes through the worker are a part per connection: at most PIPELINE_MEMORY of them.
            link=link_controller_for(self.opts, part_size if source.bytes_through_worker else 0, PIPELINE_MEMORY),
        )
        try:
            return job.run()
        finally:
            self.row.upload_id = sink.upload_id
            self.row.bytes_transferred = progress.transferred

    def _identity(self, pin: ObjectInfo, part_size: int) -> dict[str, Any]:
        return {
            "source": self.row.source,
            "size": pin.size,
            "etag": pin.etag,
            "version": pin.version,
            "destination": self.dst.raw,
            "part_size": part_size,
            "server_side": self.server_side,
            "store_checksum": self._store_checksum,
        }

    @property
    def _store_checksum(self) -> bool:
        """Whether the destination store is asked for a CRC32C of the copy. Not in a server-side
        copy with check_hashes='never': there the store computes it for nobody to check, and
        on SeaweedFS that doubled the copy's time (2 GiB in parts: 11.5 s against 6.0 s)."""
        return not (self.server_side and self.opts.check_hashes == "never")

    def _content_type(self, pin: ObjectInfo) -> str | None:
        return self.opts.content_type if self.opts.content_type is not None else pin.content_type

    def _metadata(self, pin: ObjectInfo) -> dict[str, str] | None:
        return dict(self.opts.metadata if self.opts.metadata is not None else pin.metadata) or None

    def _progress(self, total: int) -> Progress:
        return Progress(
            f"{self.row.source} -> {self.dst.raw}",
            total,
            interval=self.opts.progress_interval,
            callback=self.opts.progress_callback,
        )

    def _finish(
        self, info: ObjectInfo, progress: Progress, description: str, written: Written | None = None
    ) -> ManifestRow:
        self.row.bytes_transferred = progress.transferred
        self.row.md5 = self.row.md5 or info.md5 or ""
        notes = [description, *self._notes]
        if written is not None and written.reused:
            notes.append(f"resumed: {written.reused} part(s) reused")
        if self.opts.delete_source:
            self._delete_source()
            notes.append("source deleted (move)")
        text = "; ".join(notes)
        log.info(
            "%s -> %s: %d bytes in %.2fs, %d through this worker, %s",
            self.row.source,
            self.dst.raw,
            info.size or 0,
            progress.elapsed,
            progress.transferred,
            text,
        )
        return self.row.finish(OK, text)

    def _delete_source(self) -> None:
        """A move: the source goes only now, after the destination was verified."""
        try:
            with deferred_signals(finishing=True):
                self.opts.retry.run(lambda: self.src_hook.delete(self.src.raw), what=f"{self.row.source}: delete")
        except FerryError as exc:
            raise FerryError(f"copied and verified, but the source could not be deleted: {exc}", url=exc.url) from exc
