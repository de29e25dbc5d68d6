"""Parallel ranged download into a local file, validated end to end, resumable byte for byte.

The object is fetched in parts on a pool of threads sharing the hook's connection pool; each
worker reads into one reused buffer and writes at its offset into a preallocated temporary file
beside the destination, hashing as it goes (CRC32C, plus the CRC the store keeps when that is
CRC32 or CRC64NVME; combined across parts). Memory is
parallelism x buffer, whatever the object's size. Every read is pinned to the version ``head``
saw. A tracker file records finished parts, so a killed or retried run refetches only the rest.
The destination appears, by an atomic rename, only once size and digests have been checked.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import (
    ChecksumMismatchError,
    FerryError,
    InvalidArgumentError,
    NotFoundError,
    RangeNotSupportedError,
    SourceChangedError,
    TruncatedBodyError,
)
from ferry_provider.hooks.url import ObjectURL, local_path, redact
from ferry_provider.transfer import checksums
from ferry_provider.transfer.checkpoint import REWRITE_SUFFIX, Checkpoint, tracker_path
from ferry_provider.transfer.file_mode import publish_mode
from ferry_provider.transfer.interrupt import Interrupted, deferred_signals
from ferry_provider.transfer.link_controller import link_controller_for, throttle_watch
from ferry_provider.transfer.manifest import OK, SKIP, ManifestRow, now, run_for_row
from ferry_provider.transfer.options import TransferOptions
from ferry_provider.transfer.own_file import own_single_file
from ferry_provider.transfer.plan import MiB, Part, RangePlan, choose_part_size
from ferry_provider.transfer.pool import Stopped, run_parts
from ferry_provider.transfer.progress import Progress
from ferry_provider.transfer.range_progress import RangeProgress
from ferry_provider.transfer.shared_fd import SharedFd
from ferry_provider.transfer.verification import (
    Check,
    Selection,
    choose_checks,
    digest_of_file,
    multipart_etag,
)
from ferry_provider.transfer.writeback import start_writeback
from ferry_provider.transfer.writer_lock import LOCK_SUFFIX, WriterLock

log = logging.getLogger("ferry_provider.transfer")

TEMP_SUFFIX = ".ferry-tmp"
# A multipart ETag is an MD5 per upload part, and MD5s cannot be joined: upload parts are then
# hashed as they stream only when ranges can be whole upload parts, none so big that it holds a
# worker for long, with enough ranges for every worker. Otherwise the file is read again at the end.
STREAMED_MD5_MAX_PART = 128 << 20
# Ranges smaller than this are raised to it: each range is a request (a round trip, a signature,
# a tracker line), so below 1 MiB the per-request cost outweighs the bytes it moves.
MIN_DOWNLOAD_PART = 1 * MiB
# Space is reserved up front for files above this (a full disk then fails early, with the space
# needed in the message); a smaller file is written in one or two calls anyway.
PREALLOCATE_ABOVE = 1 * MiB
# Names of Ferry's own files beside a destination: never a destination themselves.
RESERVED_SUFFIXES = (TEMP_SUFFIX, ".ferry-tracker", ".ferry-tracker.new", ".ferry-lock")


@dataclass(frozen=True)
class DownloadOptions(TransferOptions):
    buffer_size: int = 1 << 20  # per worker, reused: the only per-worker memory (1 and 4 MiB measured alike)
    file_mode: int | None = None  # the published file's mode; None: 0666 less the umask, like any new file

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buffer_size < checksums.SMALLEST_BUFFER:
            raise InvalidArgumentError(f"buffer_size must be >= {checksums.SMALLEST_BUFFER}, got {self.buffer_size}")
        mode = self.file_mode
        if mode is not None and (not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777):
            raise InvalidArgumentError(f"file_mode must be a permission mode such as 0o644, got {self.file_mode!r}")


def resolve_destination(destination: str, source: ObjectURL) -> str:
    """A directory (existing, or named with a trailing slash) receives the key's basename.

    ``destination`` is a path or a file:// URL, parsed by the one URL parser."""
    path = local_path(destination, "destination")
    if destination.endswith(("/", os.sep)) or os.path.isdir(path):
        name = os.path.basename(source.key.rstrip("/"))
        if not name:
            raise InvalidArgumentError(
                f"destination {destination!r} is a directory and {source.raw!r} has no file name to use in it"
            )
        path = os.path.join(path, name)
    return path


def download(
    hook: StorageHook,
    source: str,
    destination: str,
    options: DownloadOptions | None = None,
    *,
    listed: ObjectInfo | None = None,
    exact: bool = False,
) -> ManifestRow:
    """Download ``source`` to the local path ``destination``; return its manifest row.

    ``listed`` is what a listing just said of the source (size, ETag): a bulk transfer passes
    it so a small object costs no HEAD; reads are still pinned to that ETag. ``exact``: the
    destination is the file's path even when a folder is there (then it is refused), never a
    folder to put the file in (bulk transfers, where a key ``a`` must not land in ``a/a``).
    Raises TransferError (carrying the ``error`` row) when the transfer fails.
    """
    opts = options or DownloadOptions()
    row = ManifestRow(source=redact(source), destination=destination, start=now())
    return run_for_row(
        row, lambda: _Download(hook, source, destination, opts, row, exact).run(listed), blame="destination"
    )


class _Download:
    def __init__(
        self,
        hook: StorageHook,
        source: str,
        destination: str,
        opts: DownloadOptions,
        row: ManifestRow,
        exact: bool = False,
    ) -> None:
        self.hook = hook
        self.src = hook.parse(source).require_key()
        self.opts = opts
        self.row = row
        self.dest = local_path(destination, "destination") if exact else resolve_destination(destination, self.src)
        row.destination = self.dest
        self.tmp = self.dest + TEMP_SUFFIX
        self.tracker = tracker_path(self.dest, opts.state_dir)
        self._notes: list[str] = []  # what the row's description says besides the verification
        self._reverified = False  # reused parts were re-hashed from the temp file
        self._progress_now: Progress | None = None  # this run's, once the transfer has begun
        self._stop = threading.Event()
        self._selection = Selection(())  # what the bytes must match, chosen once the source is pinned
        self._crcs: tuple[checksums.CrcAlgorithm, ...] = (checksums.CRC32C,)  # computed while streaming
        self._composites: dict[str, str] = {}  # per-part values recomputed from the ranges' digests
        self._md5_ends: list[int] = []  # where upload parts end, when each one's MD5 is streamed
        self._whole_md5 = ""  # the whole object's MD5, when one stream computed it in passing
        # Connections chosen by the link (adaptive), else exactly opts.parallelism.
        self._link = link_controller_for(opts)

    # -- the steps ---------------------------------------------------------------------------
    def run(self, listed: ObjectInfo | None = None) -> ManifestRow:
        parent_ready = self._check_destination_path()
        pin = listed or self.opts.retry.run(lambda: self.hook.head(self.src.raw), what=f"{self.src.raw}: head")
        self.row.source_size = pin.size
        self._check_expectations_before(pin)
        self._select_checks(pin)
        if not parent_ready:
            os.makedirs(os.path.dirname(self.dest), exist_ok=True)
        # One writer per destination from here to the rename: a second transfer to the same path
        # would share the temp file and tracker (see writer_lock).
        with WriterLock(self.dest + LOCK_SUFFIX, self.dest):
            skip = self._skip_reason(pin)
            if skip:
                self._discard()  # an earlier interrupted run's partial data is of no use now
                log.info("%s -> %s: skipped (%s)", self.row.source, self.dest, skip)
                return self.row.finish(SKIP, skip)
            try:
                return self._transfer_or_restart(pin)
            except Interrupted as exc:
                exc.aftermath = f"partial download kept for a rerun to resume ({self.tmp})"
                raise

    def _check_destination_path(self) -> bool:
        """Refuse destinations that cannot become a file, naming the real culprit. True when the
        destination's folder exists already. (Two stats in the common case: a bulk run does
        this once per object.)"""
        if self.dest.endswith(RESERVED_SUFFIXES):
            raise InvalidArgumentError(f"destination {self.dest!r} ends in a name Ferry keeps for its own files")
        try:
            st: os.stat_result | None = os.lstat(self.dest)
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            try:
                st = os.stat(self.dest)
            except OSError:
                raise InvalidArgumentError(
                    f"destination {self.dest!r} is a dangling symbolic link (to {os.readlink(self.dest)!r})",
                    url=self.dest,
                ) from None
        if st is not None and not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            # A FIFO, a device, a socket (or a link to one): replacing it with a file is never meant.
            raise InvalidArgumentError(f"destination {self.dest!r} exists and is not a regular file", url=self.dest)
        parent = os.path.dirname(self.dest)
        if not parent or os.path.isdir(parent):
            return True
        while parent and not os.path.lexists(parent):
            parent = os.path.dirname(parent)
        if parent and not os.path.isdir(parent):
            raise InvalidArgumentError(f"destination {self.dest!r}: {parent!r} is not a directory", url=self.dest)
        return False

    def _transfer_or_restart(self, pin: ObjectInfo) -> ManifestRow:
        try:
            return self._transfer(pin)
        except SourceChangedError:
            self._discard()
            if not self.opts.restart_on_change:
                raise
            log.warning("%s changed during the download; starting over once", self.row.source)
            self._notes.append("the source changed during the download: restarted once (restart_on_change)")
            pin = self.opts.retry.run(lambda: self.hook.head(self.src.raw), what=f"{self.src.raw}: head")
            self.row.source_size = pin.size
            self._select_checks(pin)
            return self._transfer(pin)

    def _check_expectations_before(self, pin: ObjectInfo) -> None:
        expected = self.opts.expected_size
        if expected is not None and pin.size is not None and pin.size != expected:
            raise ChecksumMismatchError(
                f"{self.row.source}: expected {expected} bytes, the source has {pin.size}", url=self.row.source
            )

    def _select_checks(self, pin: ObjectInfo) -> None:
        """Choose the digests to verify; the CRCs among them are computed as the bytes stream."""

        def part_sizes() -> list[int] | None:
            return self.opts.retry.run(
                lambda: self.hook.part_sizes(self.src.raw, pin), what=f"{self.row.source}: part layout"
            )

        self._selection = choose_checks(pin, self.opts.check_hashes, self.opts.expected_digests, part_sizes)
        extra = {c.algorithm for c in self._selection.checks if c.streamed} - {"crc32c"}
        self._crcs = (checksums.CRC32C, *(checksums.CRCS[name] for name in sorted(extra)))

    def _skip_reason(self, pin: ObjectInfo) -> str:
        if not os.path.lexists(self.dest):
            return ""
        if os.path.isdir(self.dest):
            raise InvalidArgumentError(f"destination {self.dest!r} is a directory")
        if self.opts.no_clobber:
            return "destination exists (no_clobber); nothing compared"
        if not self.opts.skip_identical or os.path.getsize(self.dest) != pin.size:
            return ""
        if not self._selection.checks:
            return ""  # equal sizes alone prove nothing: transfer again
        check = self._selection.checks[0]
        if digest_of_file(self.dest, check, self.opts.parallelism) != check.expected:
            return ""
        # The row carries the digests compared, so a DAG templating them checks something on reruns.
        if check.algorithm == "crc32c" and not check.per_part:
            self.row.crc32c = check.expected
        elif check.algorithm == "md5" and not check.per_part:
            self.row.md5 = check.expected
        else:
            self.row.crc32c = checksums.file_digest(self.dest, "crc32c")
        return f"destination is identical (same size and {check.describe()})"

    def _transfer(self, pin: ObjectInfo) -> ManifestRow:
        size = pin.size
        ranged = self.hook.capabilities.ranged_reads and size is not None
        if ranged and not pin.pinnable and not self.opts.expected_digests:
            # Ranges fetched at different moments could come from different versions, and
            # nothing would tell: one stream is one version.
            ranged = False
            self._notes.append("read as one stream: the source gives no version or strong ETag to pin ranges to")
        plan = self._plan(size or 0, ranged)
        part_size = plan.part_size
        identity = {
            "source": self.row.source,
            "size": size,
            "etag": pin.etag,
            "version": pin.version,
            "part_size": part_size,
        }
        if plan.layout:  # ranges then follow the upload's parts: a tracker without them does not fit
            identity["layout"] = len(plan.layout)
        if len(self._crcs) > 1:  # parts then carry these CRCs too
            identity["crcs"] = [c.name for c in self._crcs]
        if self._md5_ends:  # ...and their upload parts' MD5s
            identity["md5"] = True
        checkpoint = self._load_checkpoint(identity)
        fd = self._open_temp(size, fresh=not checkpoint.parts)
        self._shared_fd = SharedFd(fd)  # closed by whoever is last: us, or a part still running
        try:
            in_parts = ranged and size is not None and (size > part_size or plan.layout)
            if not checkpoint.parts and in_parts:
                # Claims the temp file for this source before any byte lands. One stream needs
                # no tracker: it always starts from byte 0 (and small objects go faster without).
                checkpoint.save()
            if in_parts:
                reused = self._reuse_parts(checkpoint, plan)
                progress = self._progress(size, sum(p["size"] for p in checkpoint.parts.values()))
                try:
                    crcs = self._fetch_parts(fd, plan, checkpoint, pin, progress)
                except RangeNotSupportedError:
                    log.info("%s: the server does not serve ranges; reading it as one stream", self.row.source)
                    checkpoint.clear_parts()
                    progress = self._progress(size, 0)
                    crcs = self._fetch_stream(fd, pin, progress)
                    reused = 0
            else:
                progress = self._progress(size, 0)
                crcs = self._fetch_stream(fd, pin, progress)
                reused = 0
            os.fsync(fd)
            written = self._check_still_ours(fd)
            os.fchmod(fd, publish_mode(self.opts.file_mode))
        except BaseException as exc:
            self._shared_fd.release()
            if self._progress_now is not None:
                self.row.bytes_transferred = self._progress_now.transferred
            # Bytes that can never become the object are deleted, and so are those no tracker
            # vouches for (it could not be written: a full disk); after a transient failure, a
            # kill or a full disk, the temp file and tracker stay so the next run resumes.
            unusable = isinstance(exc, (ChecksumMismatchError, NotFoundError, InvalidArgumentError))
            if unusable or not os.path.exists(self.tracker):
                self._discard()
            raise
        self._shared_fd.release()
        return self._finish(pin, crcs, progress, reused, checkpoint, written)

    def _check_still_ours(self, fd: int) -> int:
        """The temp path must still be the file these bytes were written to and hashed in, or the
        rename would publish something else (the writer lock keeps Ferry's own transfers out;
        this catches anything else that replaced or truncated it)."""
        mine = os.fstat(fd)
        try:
            there = os.stat(self.tmp)
        except FileNotFoundError:
            there = None
        if there is None or (there.st_dev, there.st_ino) != (mine.st_dev, mine.st_ino):
            raise ChecksumMismatchError(
                f"{self.dest}: the temp file {self.tmp} was replaced or removed by another process during the "
                "download; nothing was published",
                url=self.dest,
            )
        return mine.st_size

    def _plan(self, size: int, ranged: bool) -> RangePlan:
        """Ranges of the adaptive (or requested) size; within the upload's parts when a per-part
        CRC is checked; whole upload parts when a multipart ETag can be hashed as it streams."""
        requested = self.opts.part_size
        if requested is not None and requested < MIN_DOWNLOAD_PART < size:
            self._notes.append(f"part size {requested} raised to the minimum of {MIN_DOWNLOAD_PART} bytes")
            log.warning("%s: part size %d raised to %d bytes", self.row.source, requested, MIN_DOWNLOAD_PART)
            requested = MIN_DOWNLOAD_PART
        part_size = choose_part_size(size, self.opts.parallelism, requested=requested)
        self._md5_ends = []
        if not ranged:
            return RangePlan(size, part_size)
        etag = next((c for c in self._selection.checks if c.per_part and c.algorithm == "md5"), None)
        if etag is not None and max(etag.part_sizes) <= STREAMED_MD5_MAX_PART:
            plan = RangePlan(size, part_size, etag.part_sizes, whole_parts=True)
            if len(plan.parts) >= self.opts.parallelism:
                self._md5_ends = [end for _, end in plan.spans]
                return plan
        return RangePlan(size, part_size, self._selection.layout)

    # -- temp file and checkpoint -------------------------------------------------------------
    def _load_checkpoint(self, identity: dict[str, Any]) -> Checkpoint:
        if not self.opts.resume:
            self._discard()
            return Checkpoint(self.tracker, identity)
        checkpoint = Checkpoint.load(self.tracker, identity)
        if checkpoint.parts and _resumable(self.tmp):
            return checkpoint
        if not checkpoint.on_disk:
            # No tracker: a temp file an earlier run left (one stream keeps none) is removed
            # by _open_temp when its exclusive create meets it. Saves a bulk run of small
            # objects four syscalls per object.
            return checkpoint
        # Whatever a killed run (or anyone) left at these names goes, links included: the
        # temp file is then created anew, never opened through what was there.
        self._discard()
        return Checkpoint(self.tracker, identity)

    def _open_temp(self, size: int | None, fresh: bool) -> int:
        try:
            return self._open_temp_once(size, fresh)
        except FileExistsError:
            if not fresh:
                raise
            self._discard()  # left by an earlier run, with no tracker to resume it by
            return self._open_temp_once(size, fresh)

    def _open_temp_once(self, size: int | None, fresh: bool) -> int:
        # A new file (O_EXCL) when starting fresh, and never through a symbolic link.
        fd = os.open(self.tmp, os.O_RDWR | os.O_NOFOLLOW | (os.O_CREAT | os.O_EXCL if fresh else 0), 0o600)
        if size and size > PREALLOCATE_ABOVE:
            try:
                os.posix_fallocate(fd, 0, size)  # reserve the space now: a full disk fails here, early
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    os.close(fd)
                    self._discard()
                    free = _free_bytes(os.path.dirname(self.tmp))
                    raise FerryError(
                        f"{self.dest}: not enough disk space: need {size} bytes, {free} free", url=self.dest
                    ) from exc
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    os.close(fd)
                    raise
                os.ftruncate(fd, size)
                # sparse: pwrite reports ENOSPC if the disk fills
        return fd

    def _reuse_parts(self, checkpoint: Checkpoint, plan: RangePlan) -> int:
        """Parts the tracker says are done; re-hashed from disk first, and only those that match
        kept, with verify_on_resume or when the tracker predates a reboot (a crash or power loss
        may have dropped bytes that were only in the page cache)."""
        if checkpoint.parts and (self.opts.verify_on_resume or not checkpoint.written_this_boot):
            if not checkpoint.written_this_boot:
                log.info("%s: the tracker predates this boot; re-checking its parts on disk", self.dest)
            parts = plan.parts
            fitting = [
                parts[index]
                for index, info in checkpoint.parts.items()
                if index < len(parts) and parts[index].size == info.get("size")
            ]
            spans = [(part.start, part.end) for part in fitting]
            on_disk = checksums.span_digests(self.tmp, "crc32c", spans, self.opts.parallelism)
            good = {
                part.index
                for part, crc in zip(fitting, on_disk, strict=True)
                if int(crc, 16) == checkpoint.parts[part.index].get("crc32c")
            }
            for index in [i for i in checkpoint.parts if i not in good]:
                log.warning("%s: part %d failed re-verification; fetching it again", self.dest, index)
                checkpoint.forget(index)
            checkpoint.vouch_for_parts()
            self._reverified = True
        if checkpoint.parts:
            log.info("%s: resuming, %d part(s) already on disk", self.dest, len(checkpoint.parts))
        return len(checkpoint.parts)

    def _discard(self) -> None:
        for path in (self.tmp, self.tracker, self.tracker + REWRITE_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _progress(self, total: int | None, already: int) -> Progress:
        self._progress_now = Progress(
            f"{self.row.source} -> {self.dest}",
            total,
            interval=self.opts.progress_interval,
            callback=self.opts.progress_callback,
            already=already,
        )
        return self._progress_now

    # -- fetching -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _buffer(self, span: int | None) -> Iterator[memoryview]:
        """This thread's read buffer, taken for the duration: a download started meanwhile on
        the same thread (from a progress callback) gets one of its own. No bigger than the
        ``span`` of bytes to copy: a 64 KiB object in a bulk run then costs no 1 MiB allocation
        (zeroed pages, faulted in and unmapped again, for each object)."""
        need = self.opts.buffer_size if span is None else checksums.buffer_size(span, self.opts.buffer_size)
        buf: memoryview | None = _buffers.__dict__.pop("buf", None)
        if buf is None or len(buf) < need:
            buf = memoryview(bytearray(need))
        try:
            yield buf[:need]
        finally:
            _buffers.buf = buf

    def _fetch_parts(
        self, fd: int, plan: RangePlan, checkpoint: Checkpoint, pin: ObjectInfo, progress: Progress
    ) -> dict[str, int]:
        """Fetch the parts not yet done; return each streamed CRC of the whole object."""
        pending = [p for p in plan.parts if p.index not in checkpoint.parts]

        def job(part: Part) -> None:
            with self._shared_fd:  # an abandoned part keeps the file open until it stops
                self._fetch_part(fd, part, checkpoint, pin, progress)

        run_parts(job, pending, self.opts.parallelism, self._stop, "ferry-get", gate=self._link)
        done = checkpoint.parts

        def crc_of(algorithm: checksums.CrcAlgorithm, ranges: list[Part]) -> int:
            return algorithm.combine_all((done[p.index][algorithm.name], p.size) for p in ranges)

        for check in self._selection.checks:
            if plan.layout and check.per_part and check.streamed:
                algorithm = checksums.CRCS[check.algorithm]
                per_part = [crc_of(algorithm, span) for span in plan.parts_by_span()]
                self._composites[algorithm.name] = algorithm.composite(per_part)
        if self._md5_ends:
            self._composites["md5"] = multipart_etag(
                [bytes.fromhex(md5) for p in plan.parts for md5 in done[p.index]["md5"]]
            )
        return {algorithm.name: crc_of(algorithm, plan.parts) for algorithm in self._crcs}

    def _fetch_part(self, fd: int, part: Part, checkpoint: Checkpoint, pin: ObjectInfo, progress: Progress) -> None:
        inside = None
        if self._md5_ends:  # the upload parts this range holds, each hashed from its first byte
            ends = self._md5_ends
            inside = ends[bisect.bisect_right(ends, part.start) : bisect.bisect_right(ends, part.end)]
        state = RangeProgress.at(part.start, len(self._crcs), inside)

        def attempt() -> None:
            # A retry continues at the last byte written, with the digests of the bytes before it.
            with throttle_watch(self._link), self.hook.open_range(self.src.raw, state.pos, part.end, pin) as reader:
                self._copy(reader, fd, state, part.end, progress)

        self.opts.retry.run(
            attempt, what=f"{self.row.source}: part {part.index} (bytes {part.start}-{part.end - 1})", stop=self._stop
        )
        start_writeback(fd, part.start, part.size)
        digests: dict[str, Any] = dict(zip(self._names(), state.crcs, strict=True))
        if state.hashes_md5:
            digests["md5"] = state.md5s
        checkpoint.record(part.index, size=part.size, **digests)

    def _names(self) -> list[str]:
        return [algorithm.name for algorithm in self._crcs]

    def _copy(self, reader: Any, fd: int, state: RangeProgress, end: int | None, progress: Progress) -> None:
        # Received into a buffer that stays in the cache, hashed there, then written: on tmpfs
        # this cost 0.3 s less system time per GiB than receiving into an mmap of the temp file
        # (page faults), at 1 to 32 connections alike (measured with -j 1, 4, 16, 32).
        with self._buffer(None if end is None else end - state.pos) as buf:
            while end is None or state.pos < end:
                at = state.pos
                want = len(buf) if end is None else min(len(buf), end - at)
                n = self._take(reader, buf[:want], state, end, progress)
                if n == 0:  # the end of a stream of unknown length
                    return
                written = 0
                while written < n:
                    written += os.pwrite(fd, buf[written:n], at + written)

    def _take(self, reader: Any, view: memoryview, state: RangeProgress, end: int | None, progress: Progress) -> int:
        """Read once into ``view``, hash it and count it; 0 only at the end of an unsized stream.

        An early end of a sized range is a TruncatedBodyError (retried from ``state.pos``)."""
        if self._stop.is_set():
            raise Stopped()
        n = reader.readinto(view)
        if n == 0:
            if end is None:
                return 0
            raise TruncatedBodyError(
                f"{self.row.source}: stream ended at byte {state.pos}, expected {end}", url=self.row.source
            )
        state.feed(self._crcs, view[:n])
        progress.add(n)
        if self._link is not None:  # the link's rate, as bytes arrive
            self._link.observe(n)
        return n

    def _fetch_stream(self, fd: int, pin: ObjectInfo, progress: Progress) -> dict[str, int]:
        """One stream from byte 0 (small objects, servers without ranges, unknown sizes);
        return each streamed CRC of it."""
        # A whole-object MD5 is hashed as the one stream passes, instead of reading the file again.
        whole_md5 = pin.size is not None and any(
            c.algorithm == "md5" and not c.per_part for c in self._selection.checks
        )

        def fresh() -> RangeProgress:
            return RangeProgress.at(0, len(self._crcs), [pin.size] if whole_md5 and pin.size is not None else None)

        state = fresh()

        def attempt() -> None:
            nonlocal state
            if state.pos:  # no ranges to continue with: start again from zero
                progress.add(-state.pos)
                state = fresh()
            with self.hook.open_range(self.src.raw, 0, None, pin) as reader:
                self._copy(reader, fd, state, pin.size if reader.length is None else reader.length, progress)

        self.opts.retry.run(attempt, what=f"{self.row.source}: download")
        if state.pos != pin.size:  # a stream of unknown or other length: the file ends where it did
            os.ftruncate(fd, state.pos)
        if whole_md5 and state.md5s:
            self._whole_md5 = state.md5s[0]
        elif whole_md5 and pin.size == 0:
            self._whole_md5 = hashlib.md5().hexdigest()
        return dict(zip(self._names(), state.crcs, strict=True))

    # -- validation and the final rename ----------------------------------------------------
    def _finish(
        self,
        pin: ObjectInfo,
        crcs: dict[str, int],
        progress: Progress,
        reused: int,
        checkpoint: Checkpoint,
        actual_size: int,
    ) -> ManifestRow:
        expected_size = pin.size if pin.size is not None else self.opts.expected_size
        if expected_size is not None and actual_size != expected_size:
            self._discard()
            raise ChecksumMismatchError(
                f"{self.row.source}: size mismatch: expected {expected_size} bytes, got {actual_size}",
                url=self.row.source,
            )
        md5 = ""
        for check in self._selection.checks:
            actual = self._actual(check, crcs)
            if check.algorithm == "md5" and not check.per_part:
                md5 = actual
            if actual != check.expected:
                self._discard()
                raise ChecksumMismatchError(
                    f"{self.row.source}: {check.describe()} mismatch: expected {check.expected}, got {actual}; "
                    f"the downloaded bytes were deleted",
                    url=self.row.source,
                )
        with deferred_signals(finishing=True):  # published with the tracker removed, or neither
            try:
                published = self._publish()
            except OSError:  # a folder appeared at the path, a read-only folder: the bytes can go nowhere
                self._discard()
                raise
            checkpoint.delete()
        self.row.bytes_transferred = progress.transferred
        if not published:
            return self.row.finish(SKIP, "the destination appeared during the download (no_clobber); left as it was")
        self.row.crc32c = checksums.CRC32C.hex(crcs["crc32c"])
        self.row.md5 = md5 or (pin.md5 or "" if self._selection.checks else "")
        checked = ", ".join(check.describe() for check in self._selection.checks)
        notes = [f"verified size and {checked}" if checked else self._selection.why_none, *self._notes]
        if reused:
            verified = " (re-hashed on disk)" if self._reverified else ""
            notes.append(f"resumed: {reused} part(s) reused{verified}")
        rate = progress.transferred / max(progress.elapsed, 1e-9) / 2**20
        log.info(
            "%s -> %s: %d bytes in %.2fs (%.1f MiB/s), %s",
            self.row.source,
            self.dest,
            actual_size,
            progress.elapsed,
            rate,
            "; ".join(notes),
        )
        return self.row.finish(OK, "; ".join(notes))

    def _publish(self) -> bool:
        """Rename the verified temp file into place. With no_clobber a hard link does it, which
        fails if the destination appeared meanwhile (a rename would replace it); then the temp
        file goes and False is returned."""
        if self.opts.no_clobber:
            try:
                os.link(self.tmp, self.dest)
            except FileExistsError:
                self._discard()
                return False
            except OSError:  # no hard links on this file system: check, then rename
                if os.path.lexists(self.dest):
                    self._discard()
                    return False
                os.replace(self.tmp, self.dest)
            else:
                os.unlink(self.tmp)
        else:
            os.replace(self.tmp, self.dest)
        _fsync_dir(os.path.dirname(self.dest))
        return True

    def _actual(self, check: Check, crcs: dict[str, int]) -> str:
        """``check``'s digest of the downloaded bytes: from what was computed while they streamed
        when it is one of those, else by reading the temp file again."""
        if check.streamed and not check.per_part:
            return checksums.CRCS[check.algorithm].hex(crcs[check.algorithm])
        if check.per_part and check.algorithm in self._composites:
            return self._composites[check.algorithm]
        if check.algorithm == "md5" and not check.per_part and self._whole_md5:
            return self._whole_md5
        return digest_of_file(self.tmp, check, self.opts.parallelism)


def _resumable(tmp: str) -> bool:
    """Whether the temp file may be written on (see own_file)."""
    try:
        return own_single_file(os.lstat(tmp))
    except FileNotFoundError:
        return False


# Each thread's read buffer, kept from one object to the next (a bulk worker moves thousands).
_buffers = threading.local()


def _free_bytes(path: str) -> int:
    st = os.statvfs(path or ".")
    return st.f_bavail * st.f_frsize


def _fsync_dir(path: str) -> None:
    """Make the rename durable: fsync the directory entry."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
