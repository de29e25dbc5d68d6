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
import secrets
import stat as stat_module
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ferry_provider.hooks.base import ObjectInfo, PartInfo, StorageHook
from ferry_provider.hooks.errors import (
    ChecksumMismatchError,
    FerryError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
    SourceChangedError,
)
from ferry_provider.hooks.url import ObjectURL, local_path
from ferry_provider.transfer import checksums
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.file_slice import FileSlice
from ferry_provider.transfer.interrupt import SIGNAL_PENDING, Interrupted, deferred_signals
from ferry_provider.transfer.manifest import OK, SKIP, ManifestRow, now, run_for_row
from ferry_provider.transfer.options import TransferOptions
from ferry_provider.transfer.plan import MiB, Part, RangePlan, choose_part_size
from ferry_provider.transfer.pool import Stopped, run_parts
from ferry_provider.transfer.progress import Progress
from ferry_provider.transfer.shared_fd import SharedFd
from ferry_provider.transfer.verification import Check, digest_of_file
from ferry_provider.transfer.writer_lock import LOCK_SUFFIX, WriterLock

log = logging.getLogger("ferry_provider.transfer")

COMPONENT_PREFIX = ".ferry/tmp/"  # temporary components live here, in the destination bucket
HASH_BUFFER = 4 * MiB
IN_FLIGHT_GRACE = 3.0  # seconds an abort waits for part requests under way to end


@dataclass(frozen=True)
class UploadOptions(TransferOptions):
    """Upload options. ``no_clobber`` also makes the final write conditional on the store;
    ``state_dir`` defaults to beside the source, else ~/.local/state/ferry; ``check_hashes='always'``
    reads the object back when the store keeps no full-object CRC32C to compare with."""

    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def upload(hook: StorageHook, source: str, destination: str, options: UploadOptions | None = None) -> ManifestRow:
    """Upload the local file ``source`` to ``destination``; return its manifest row.

    A ``destination`` ending in ``/`` is a folder: the file's name is appended, as downloads do.
    Raises TransferError (carrying the ``error`` row) when the upload fails.
    """
    opts = options or UploadOptions()
    row = ManifestRow(source=source, destination=destination, start=now())
    return run_for_row(row, lambda: _Upload(hook, source, destination, opts, row).run(), blame="source")


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
    def __init__(self, hook: StorageHook, source: str, destination: str, opts: UploadOptions, row: ManifestRow) -> None:
        self.hook = hook
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
        self._local = threading.local()
        self._stop = threading.Event()
        self._notes: list[str] = []  # what the row's description says besides the verification
        self._interrupted_aftermath = ""
        self._in_flight = 0  # part requests under way, which an abort must outwait
        self._in_flight_changed = threading.Condition()

    def _buffer(self) -> memoryview:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = self._local.buf = memoryview(bytearray(HASH_BUFFER))
        return buf

    def _crc(self, fd: int, start: int, size: int) -> checksums.CrcHasher:
        """CRC32C of ``size`` bytes of the source at ``start``, through this thread's buffer."""
        return checksums.hash_file_range(fd, start, start + size, checksums.CrcHasher(checksums.CRC32C), self._buffer())

    def _call(self, what: str, fn: Callable[[], Any], stop: threading.Event | None = None) -> Any:
        return self.opts.retry.run(fn, what=f"{self.dst.raw}: {what}", stop=stop)

    # -- the steps ---------------------------------------------------------------------------
    def run(self) -> ManifestRow:
        fd, st = self._open_source()
        self._shared_fd = SharedFd(fd)  # closed by whoever is last: us, or a part still running
        try:
            return self._run(fd, st)
        except SourceChangedError:
            if not self.opts.restart_on_change:
                raise
            log.warning("%s changed during the upload; starting over once", self.source)
            self._notes = ["the source changed during the upload: restarted once (restart_on_change)"]
        finally:
            self._shared_fd.release()
        fd, st = self._open_source()
        self._shared_fd = SharedFd(fd)
        try:
            return self._run(fd, st)
        finally:
            self._shared_fd.release()

    def _run(self, fd: int, st: os.stat_result) -> ManifestRow:
        self.row.source_size = st.st_size
        self._check_source(fd, st)
        skip = self._skip_reason(fd, st.st_size)
        if skip:
            self._forget_earlier_attempt()
            log.info("%s -> %s: skipped (%s)", self.source, self.dst.raw, skip)
            return self.row.finish(SKIP, skip)
        caps = self.hook.capabilities
        part_size = choose_part_size(
            st.st_size,
            self.opts.parallelism,
            requested=self.opts.part_size,
            min_part=caps.min_part_size,
            max_part=caps.max_part_size,
            max_parts=caps.max_parts,
        )
        parted = st.st_size > part_size and (caps.multipart_upload or caps.composite_upload)
        if not parted:
            return self._single_put(fd, st)
        return self._parted(fd, st, part_size)

    def _strategy(self) -> _Strategy:
        return _Multipart(self) if self.hook.capabilities.multipart_upload else _Compose(self)

    def _forget_earlier_attempt(self) -> None:
        """A skip makes an earlier interrupted upload of this file useless: remove it and its
        tracker, which nothing would remove otherwise."""
        tracker = upload_tracker_path(self.source, self.dst.raw, self.opts.state_dir)
        if not os.path.exists(tracker):
            return
        with WriterLock(tracker + LOCK_SUFFIX, self.dst.raw):
            earlier = Checkpoint.peek(tracker)
            if self._strategy().discard(earlier.extra, list(earlier.parts)):
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

    def _skip_reason(self, fd: int, size: int) -> str:
        try:
            existing = self._call("head", lambda: self.hook.head(self.dst.raw))
        except NotFoundError:
            return ""
        if self.opts.no_clobber:
            return "destination exists (no_clobber); nothing compared"
        if not self.opts.skip_identical or existing.size != size or not existing.crc32c or "-" in existing.crc32c:
            return ""
        if self._crc(fd, 0, size).hexdigest() != existing.crc32c:
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
        crc = self._crc(fd, 0, st.st_size).hexdigest()
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
    def _parted(self, fd: int, st: os.stat_result, part_size: int) -> ManifestRow:
        plan = RangePlan(st.st_size, part_size)
        identity = {
            "source": self.source,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino,
            "destination": self.dst.raw,
            "part_size": part_size,
        }
        tracker = upload_tracker_path(self.source, self.dst.raw, self.opts.state_dir)
        # One upload of this file to this destination at a time: two would share the tracker.
        with WriterLock(tracker + LOCK_SUFFIX, self.dst.raw):
            try:
                return self._parted_locked(fd, st, plan, identity, tracker)
            except Interrupted as exc:
                exc.aftermath = self._interrupted_aftermath
                raise

    def _parted_locked(
        self, fd: int, st: os.stat_result, plan: RangePlan, identity: dict[str, Any], tracker: str
    ) -> ManifestRow:
        checkpoint = Checkpoint.load(tracker, identity)
        strategy = self._strategy()
        if checkpoint.stale_extra:
            log.info("%s: an earlier upload of another version of this file is abandoned and cleaned up", self.source)
            strategy.discard(checkpoint.stale_extra, [])
        if not self.opts.resume:
            # No resume: what an earlier run left (its multipart upload or components) goes now,
            # or nobody would ever remove it.
            if checkpoint.extra:
                log.info("%s: resume is off; removing the earlier run's unfinished upload", self.source)
                strategy.discard(checkpoint.extra, list(checkpoint.parts))
            checkpoint.delete()
            checkpoint = Checkpoint(tracker, identity)
        progress = self._progress(st.st_size)
        try:
            strategy.begin(checkpoint)
            reused = strategy.verify_existing(checkpoint)
            if reused and self.opts.verify_on_resume:
                reused = self._reverify_parts(fd, plan, checkpoint)
            progress = self._progress(st.st_size, already=sum(p["size"] for p in checkpoint.parts.values()))
            self.row.upload_id = strategy.upload_id
            self._send_parts(fd, plan, checkpoint, strategy, progress)
            self._check_unchanged(fd, st)
            crc = checksums.hex32(
                checksums.combine_all((checkpoint.parts[p.index]["crc32c"], p.size) for p in plan.parts)
            )
            with deferred_signals(finishing=True):  # completed with its tracker removed, or neither
                info = strategy.complete(checkpoint, plan, crc, st.st_size)
                checkpoint.delete()
        except BaseException as exc:
            self.row.bytes_transferred = progress.transferred
            if not (self.opts.resume and _resumable(exc)):
                self._discard(strategy, checkpoint)
            else:
                self._interrupted_aftermath = f"unfinished upload {strategy.upload_id or ''} kept for a rerun to resume"
            raise
        checkpoint.delete()
        notes = [f"{len(plan.parts)} parts; {self._verified(info, crc)}"]
        if reused:
            notes.append(f"resumed: {reused} part(s) reused")
        return self._finish(info, crc, progress, "; ".join(notes))

    def _discard(self, strategy: _Strategy, checkpoint: Checkpoint) -> None:
        """Remove the unfinished upload. A part still being sent can land after an abort and
        bring it back (S3 says as much: abort again once the part uploads have ended), so when
        parts were in flight, wait briefly for them and remove it again. If they do not end in
        time, the tracker keeps the upload's name, so the next run removes it."""
        self._stop.set()  # no part request starts from now on
        removed = strategy.discard(checkpoint.extra, list(checkpoint.parts))
        with self._in_flight_changed:
            had_in_flight = self._in_flight > 0
            settled = self._in_flight_changed.wait_for(lambda: self._in_flight == 0, IN_FLIGHT_GRACE)
        if had_in_flight:
            removed = strategy.discard(checkpoint.extra, list(checkpoint.parts))
        if settled and removed:
            checkpoint.delete()
            self._interrupted_aftermath = "the unfinished upload was removed (resume is off)"
        else:  # the tracker keeps its name, so the next run removes it
            why = "parts were still in flight" if not settled else "the store refused to remove it"
            self._interrupted_aftermath = (
                f"the unfinished upload is still on the server ({why}); the next run, or ferry cleanup, removes it"
            )

    def _reverify_parts(self, fd: int, plan: RangePlan, checkpoint: Checkpoint) -> int:
        """Re-hash the source's bytes for each reused part: a part whose bytes no longer match
        what was sent (the file was rewritten in place, keeping its size and mtime) is sent again."""
        parts = plan.parts
        for index in list(checkpoint.parts):
            part = parts[index]
            if self._crc(fd, part.start, part.size).value != checkpoint.parts[index]["crc32c"]:
                log.warning("%s: part %d no longer matches the file; sending it again", self.source, index + 1)
                checkpoint.forget(index)
        return len(checkpoint.parts)

    def _send_parts(
        self, fd: int, plan: RangePlan, checkpoint: Checkpoint, strategy: _Strategy, progress: Progress
    ) -> None:
        pending = [p for p in plan.parts if p.index not in checkpoint.parts]
        if not pending:
            return

        def send(part: Part) -> None:
            if self._stop.is_set():
                raise Stopped()
            crc = self._crc(fd, part.start, part.size).value
            with self._in_flight_changed:  # checked under the lock _discard() counts parts with
                if self._stop.is_set():
                    raise Stopped()
                self._in_flight += 1
            attempts = 0

            def attempt() -> PartInfo:
                nonlocal attempts
                attempts += 1
                if attempts > 1 and self._crc(fd, part.start, part.size).value != crc:
                    # The store refused the bytes (BadDigest, a CRC32C mismatch) or the link broke:
                    # if the file itself now holds other bytes, resending cannot help.
                    raise SourceChangedError(
                        f"{self.source} changed while uploading (part {part.index + 1} holds other bytes now); "
                        "nothing was published",
                        url=self.source,
                    )
                return strategy.send(part, FileSlice(fd, part.start, part.size), checksums.hex32(crc))

            try:
                info = self._call(f"part {part.index + 1}", attempt, stop=self._stop)
            finally:
                with self._in_flight_changed:
                    self._in_flight -= 1
                    self._in_flight_changed.notify_all()
            checkpoint.record(part.index, crc32c=crc, size=part.size, etag=info.etag)
            progress.add(part.size)

        def job(part: Part) -> None:
            with self._shared_fd:  # an abandoned part keeps the file open until it stops
                send(part)

        run_parts(job, pending, self.opts.parallelism, self._stop, "ferry-put")

    # -- the end ----------------------------------------------------------------------------
    def _verified(self, info: ObjectInfo, crc: str) -> str:
        """Compare what the store reports with what was sent; a mismatch deletes the object.

        With check_hashes='always' and a store that keeps no full-object CRC32C, the object is
        read back and hashed; with 'never', only the size is compared."""
        if info.size != self.row.source_size:
            self._delete_bad(f"size mismatch: sent {self.row.source_size} bytes, the store has {info.size}")
        if self.opts.check_hashes == "never":
            return "size verified (check_hashes='never')"
        if info.crc32c and "-" not in info.crc32c:
            if info.crc32c != crc:
                self._delete_bad(f"crc32c mismatch: sent {crc}, the store has {info.crc32c}")
            return "stored crc32c verified"
        if self.opts.check_hashes == "always":
            stored = self._read_back_crc32c()
            if stored != crc:
                self._delete_bad(f"crc32c mismatch: sent {crc}, read back {stored}")
            return "crc32c verified by reading the object back (the store reports no full-object crc32c)"
        return "size verified (the store reports no full-object crc32c)"

    def _read_back_crc32c(self) -> str:
        def read() -> str:
            hasher = checksums.CrcHasher(checksums.CRC32C)
            buf = self._buffer()
            with self.hook.open_range(self.dst.raw, 0, None) as reader:
                while n := reader.readinto(buf):
                    hasher.update(buf[:n])
            return hasher.hexdigest()

        return self._call("read back", read)

    def _delete_bad(self, why: str) -> None:
        with contextlib.suppress(FerryError):
            self._call("delete", lambda: self.hook.delete(self.dst.raw))
        raise ChecksumMismatchError(f"{self.dst.raw}: {why}; the object was deleted", url=self.dst.raw)

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

    def _progress(self, total: int, already: int = 0) -> Progress:
        """Progress of this run; ``already`` bytes (reused parts) count as done, not as moved."""
        return Progress(
            f"{self.source} -> {self.dst.raw}",
            total,
            already=already,
            interval=self.opts.progress_interval,
            callback=self.opts.progress_callback,
        )


def _resumable(exc: BaseException) -> bool:
    """Failures a later run can finish: not a changed source, bad bytes, bad input or a lost race."""
    return not isinstance(
        exc, (SourceChangedError, ChecksumMismatchError, InvalidArgumentError, PreconditionFailedError, NotFoundError)
    )


class _Strategy:
    """How parts become one object on this store."""

    upload_id = ""
    resumed = False  # the upload (id or components) was taken over from the tracker

    def __init__(self, up: _Upload) -> None:
        self.up = up
        self.hook = up.hook
        self.dst: ObjectURL = up.dst

    def begin(self, checkpoint: Checkpoint) -> None:
        raise NotImplementedError

    def verify_existing(self, checkpoint: Checkpoint) -> int:
        raise NotImplementedError

    def send(self, part: Part, body: FileSlice, crc32c: str) -> PartInfo:
        raise NotImplementedError

    def complete(self, checkpoint: Checkpoint, plan: RangePlan, crc32c: str, size: int) -> ObjectInfo:
        raise NotImplementedError

    def discard(self, extra: dict[str, Any], indexes: list[int]) -> bool:
        """Remove what ``extra`` names on the server; False when that failed (it is still there)."""
        raise NotImplementedError


class _Multipart(_Strategy):
    """S3 multipart: parts with CRC32C, completed with a FULL_OBJECT CRC32C and the size."""

    def begin(self, checkpoint: Checkpoint) -> None:
        upload_id = checkpoint.extra.get("upload_id")
        self.resumed = bool(upload_id)
        if not upload_id:
            with deferred_signals():  # an upload whose id was lost could never be aborted
                upload_id = self.up._call(
                    "create multipart upload",
                    lambda: self.hook.create_multipart(
                        self.dst.raw, content_type=self.up.opts.content_type, metadata=self.up.opts.metadata or None
                    ),
                    stop=SIGNAL_PENDING,  # after a signal, no second attempt: the run is stopping
                )
                checkpoint.clear_parts()
                checkpoint.set_extra(upload_id=upload_id)
                self.upload_id = upload_id
        self.upload_id = upload_id

    def verify_existing(self, checkpoint: Checkpoint) -> int:
        """Keep only tracker parts the server still has with the same size and ETag. The upload
        itself is checked even when no part was recorded: it may have been aborted (``ferry
        cleanup``) or expired, and then a new one starts now rather than failing at the first part."""
        if not self.resumed:
            return 0
        try:
            listed = {
                p.number: p
                for p in self.up._call("list parts", lambda: self.hook.list_parts(self.dst.raw, self.upload_id))
            }
        except NotFoundError:  # the upload expired or was aborted: start a new one
            log.info("%s: upload %s is gone on the server; starting a new one", self.dst.raw, self.upload_id)
            checkpoint.extra.pop("upload_id", None)
            self.begin(checkpoint)
            return 0
        for index, info in list(checkpoint.parts.items()):
            server = listed.get(index + 1)
            if server is None or server.size != info["size"] or server.etag != info["etag"]:
                checkpoint.forget(index)
        return len(checkpoint.parts)

    def send(self, part: Part, body: FileSlice, crc32c: str) -> PartInfo:
        body.seek(0)
        return self.hook.upload_part(self.dst.raw, self.upload_id, part.index + 1, body, size=part.size, crc32c=crc32c)

    def complete(self, checkpoint: Checkpoint, plan: RangePlan, crc32c: str, size: int) -> ObjectInfo:
        parts = [
            PartInfo(i + 1, info["etag"], info["size"], checksums.hex32(info["crc32c"]))
            for i, info in sorted(checkpoint.parts.items())
        ]
        return self.up._call(
            "complete multipart upload",
            lambda: self.hook.complete_multipart(
                self.dst.raw, self.upload_id, parts, crc32c=crc32c, size=size, if_absent=self.up.opts.no_clobber
            ),
            stop=SIGNAL_PENDING,
        )

    def discard(self, extra: dict[str, Any], indexes: list[int]) -> bool:
        upload_id = extra.get("upload_id")
        if not upload_id:
            return True
        try:
            self.up._call("abort multipart upload", lambda: self.hook.abort_multipart(self.dst.raw, upload_id))
        except NotFoundError:
            return True  # already gone
        except FerryError as exc:
            log.info("%s: could not abort upload %s: %s", self.dst.raw, upload_id, exc)
            return False
        return True


class _Compose(_Strategy):
    """GCS: temporary component objects, joined by a tree of composes, then deleted."""

    def begin(self, checkpoint: Checkpoint) -> None:
        prefix = checkpoint.extra.get("component_prefix")
        if not prefix:
            digest = hashlib.sha1(self.dst.key.encode()).hexdigest()[:16]
            prefix = f"{COMPONENT_PREFIX}{secrets.token_hex(8)}_{digest}/"
            checkpoint.clear_parts()
            checkpoint.set_extra(component_prefix=prefix)
        self.prefix = prefix

    def _component(self, name: str, prefix: str | None = None) -> str:
        # Names never contain the destination key, so they never outgrow the 1024-byte key limit.
        return f"{self.dst.scheme}://{self.dst.bucket}/{prefix or self.prefix}{name}"

    def verify_existing(self, checkpoint: Checkpoint) -> int:
        for index, info in list(checkpoint.parts.items()):
            try:
                existing = self.up._call("head component", lambda i=index: self.hook.head(self._component(f"{i:05d}")))
            except NotFoundError:
                checkpoint.forget(index)
                continue
            if existing.size != info["size"] or existing.crc32c != checksums.hex32(info["crc32c"]):
                checkpoint.forget(index)
        return len(checkpoint.parts)

    def send(self, part: Part, body: FileSlice, crc32c: str) -> PartInfo:
        body.seek(0)
        info = self.hook.put(self._component(f"{part.index:05d}"), body, size=part.size, crc32c=crc32c)
        return PartInfo(part.index + 1, info.etag or "", part.size, crc32c)

    def complete(self, checkpoint: Checkpoint, plan: RangePlan, crc32c: str, size: int) -> ObjectInfo:
        limit = self.hook.capabilities.max_compose_sources
        level = [self._component(f"{p.index:05d}") for p in plan.parts]
        depth = 0
        while len(level) > limit:
            nxt = []
            for g, group in enumerate(_chunks(level, limit)):
                if len(group) == 1:
                    nxt.append(group[0])
                    continue
                joined = self._component(f"tree{depth}_{g:05d}")
                self.up._call("compose", lambda grp=group, j=joined: self.hook.compose(grp, j))
                nxt.append(joined)
            level, depth = nxt, depth + 1
        info = self.up._call(
            "compose",
            lambda: self.hook.compose(
                level,
                self.dst.raw,
                content_type=self.up.opts.content_type,
                metadata=self.up.opts.metadata or None,
                if_absent=self.up.opts.no_clobber,
            ),
        )
        self.discard(checkpoint.extra, list(checkpoint.parts))
        return info

    def discard(self, extra: dict[str, Any], indexes: list[int]) -> bool:
        """Delete every temporary object under this upload's prefix (components and tree nodes)."""
        prefix = extra.get("component_prefix")
        if not prefix:
            return True
        try:
            names = [o.url for o in self.hook.list(f"{self.dst.scheme}://{self.dst.bucket}/{prefix}")]
            with ThreadPoolExecutor(max(1, min(8, len(names)))) as pool:
                list(pool.map(lambda u: self.up._call("delete component", lambda: self.hook.delete(u)), names))
        except NotFoundError:
            return True  # no bucket, no components
        except FerryError as exc:
            log.info("%s: could not delete components under %s: %s", self.dst.raw, prefix, exc)
            return False
        return True


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
