"""One job for writing an object in parts: uploads and copies share it.

tracker → sink begins or takes over the earlier upload → parts the server still has are kept →
the rest go source → sink on a pool → CRCs combined → the source checked unchanged → complete
(published with the tracker removed, or neither) → on failure, everything removed unless a
rerun can resume it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferry_provider.hooks.base import ObjectInfo, PartInfo
from ferry_provider.hooks.errors import (
    ChecksumMismatchError,
    InvalidArgumentError,
    NotFoundError,
    PreconditionFailedError,
    SourceChangedError,
)
from ferry_provider.transfer import checksums
from ferry_provider.transfer.checkpoint import Checkpoint
from ferry_provider.transfer.interrupt import Interrupted, deferred_signals
from ferry_provider.transfer.link_controller import LinkController, throttle_watch
from ferry_provider.transfer.part_sources import PartSource
from ferry_provider.transfer.plan import Part, RangePlan
from ferry_provider.transfer.pool import Stopped, run_parts
from ferry_provider.transfer.progress import Progress
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.sinks import ObjectSink
from ferry_provider.transfer.writer_lock import LOCK_SUFFIX, WriterLock

log = logging.getLogger("ferry_provider.transfer")

IN_FLIGHT_GRACE = 3.0  # seconds an abort waits for part requests under way to end


@dataclass
class Written:
    """What a parted write produced: the object as the store reports it, the combined CRCs of
    the parts (by algorithm; crc32c absent when the store did not report a part's), and how
    many parts a resume reused."""

    info: ObjectInfo
    crcs: dict[str, int]
    parts: int
    reused: int


def resumable(exc: BaseException) -> bool:
    """Failures a later run can finish: not a changed source, bad bytes, bad input or a lost race."""
    return not isinstance(
        exc, (SourceChangedError, ChecksumMismatchError, InvalidArgumentError, PreconditionFailedError, NotFoundError)
    )


class PartedWrite:
    def __init__(
        self,
        source: PartSource,
        sink: ObjectSink,
        plan: RangePlan,
        *,
        tracker: str,
        identity: dict[str, Any],
        parallelism: int,
        retry: RetryPolicy,
        resume: bool,
        verify_on_resume: bool,
        progress: Progress,
        label: str,
        before_complete: Callable[[dict[str, int]], None] | None = None,
        lock: bool = True,
        link: LinkController | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.plan = plan
        self.tracker = tracker
        self.identity = identity
        self.parallelism = parallelism
        self.retry = retry
        self.resume = resume
        self.verify_on_resume = verify_on_resume
        self.progress = progress
        self.label = label
        # Checks the combined CRCs before the object is published; raising stops it.
        self.before_complete = before_complete
        self.lock = lock  # False: the caller already holds the tracker's writer lock
        self.link = link  # connections chosen by the link; None: exactly parallelism
        self.stop = threading.Event()
        self.aftermath = ""  # what an interruption left, for its one line
        self._in_flight = 0  # part requests under way, which an abort must outwait
        self._in_flight_changed = threading.Condition()

    def run(self) -> Written:
        # One writer of this source to this destination at a time: two would share the tracker.
        lock = WriterLock(self.tracker + LOCK_SUFFIX, self.sink.dst.raw) if self.lock else contextlib.nullcontext()
        with lock:
            try:
                return self._run()
            except Interrupted as exc:
                exc.aftermath = self.aftermath
                raise

    def _run(self) -> Written:
        checkpoint = Checkpoint.load(self.tracker, self.identity)
        sink = self.sink
        if checkpoint.stale_extra:
            log.info("%s: an earlier upload of another version of the source is abandoned and cleaned up", self.label)
            sink.discard(checkpoint.stale_extra, [])
        if not self.resume:
            # No resume: what an earlier run left (its multipart upload or components) goes now,
            # or nobody would ever remove it.
            if checkpoint.extra:
                log.info("%s: resume is off; removing the earlier run's unfinished upload", self.label)
                sink.discard(checkpoint.extra, list(checkpoint.parts))
            checkpoint.delete()
            checkpoint = Checkpoint(self.tracker, self.identity)
        try:
            sink.begin(checkpoint)
            reused = sink.verify_existing(checkpoint)
            if reused and self.verify_on_resume:
                reused = self._reverify(checkpoint)
            self.progress.add(sum(p["size"] for p in checkpoint.parts.values()), moved=False)
            self._send_parts(checkpoint)
            self.source.check_unchanged()
            crcs = self._combined(checkpoint)
            if self.before_complete is not None:
                self.before_complete(crcs)
            crc32c = checksums.hex32(crcs["crc32c"]) if "crc32c" in crcs else None
            with deferred_signals(finishing=True):  # completed with its tracker removed, or neither
                info = sink.complete(checkpoint, self.plan, crc32c, self.plan.size)
                checkpoint.delete()
        except BaseException as exc:
            if not (self.resume and resumable(exc)):
                self._discard(checkpoint)
            else:
                self.aftermath = f"unfinished upload {sink.upload_id or ''} kept for a rerun to resume"
            raise
        return Written(info, crcs, len(self.plan.parts), reused)

    def _combined(self, checkpoint: Checkpoint) -> dict[str, int]:
        """Each CRC every part has, combined over the whole object."""
        done = [checkpoint.parts[p.index] for p in self.plan.parts]
        names = set.intersection(*(set(d) for d in done)) if done else {"crc32c"}
        out = {}
        for name in sorted(names & set(checksums.CRCS)):
            if all(d[name] is not None for d in done):
                algorithm = checksums.CRCS[name]
                out[name] = algorithm.combine_all((d[name], d["size"]) for d in done)
        return out

    def _reverify(self, checkpoint: Checkpoint) -> int:
        """Check the source still holds each reused part's bytes (a file rewritten in place,
        keeping its size and mtime): a part that no longer matches is sent again."""
        parts = self.plan.parts
        for index in list(checkpoint.parts):
            crc = checkpoint.parts[index].get("crc32c")
            if crc is not None and not self.source.still_matches(parts[index], crc):
                log.warning("%s: part %d no longer matches the source; sending it again", self.label, index + 1)
                checkpoint.forget(index)
        return len(checkpoint.parts)

    def _send_parts(self, checkpoint: Checkpoint) -> None:
        pending = [p for p in self.plan.parts if p.index not in checkpoint.parts]

        def send(part: Part) -> None:
            with self.source.hold():
                send_held(part)

        def send_held(part: Part) -> None:
            prepared = self.source.prepare(part, self.stop)
            with self._in_flight_changed:  # checked under the lock _discard() counts parts with
                if self.stop.is_set():
                    raise Stopped()
                self._in_flight += 1
            attempts = 0

            def attempt() -> PartInfo:
                nonlocal attempts
                attempts += 1
                if attempts > 1:
                    self.source.before_resend(prepared)
                return self.source.transmit(prepared, self.sink)

            def watched() -> PartInfo:
                with throttle_watch(self.link):
                    return attempt()

            try:
                info = self.sink.call(f"part {part.index + 1}", watched, stop=self.stop)
            finally:
                with self._in_flight_changed:
                    self._in_flight -= 1
                    self._in_flight_changed.notify_all()
            crcs = dict(prepared.crcs)
            if "crc32c" not in crcs:  # copied server-side: the store's value for the part
                crcs["crc32c"] = int(info.crc32c, 16) if info.crc32c else None
            checkpoint.record(part.index, size=part.size, etag=info.etag, **crcs)
            self.progress.add(part.size, moved=self.source.bytes_through_worker)
            if self.link is not None:
                self.link.observe(part.size)

        run_parts(send, pending, self.parallelism, self.stop, "ferry-put", gate=self.link)

    def _discard(self, checkpoint: Checkpoint) -> None:
        """Remove the unfinished upload. A part still being sent can land after an abort and
        bring it back (S3 says as much: abort again once the part uploads have ended), so when
        parts were in flight, wait briefly for them and remove it again. If they do not end in
        time, the tracker keeps the upload's name, so the next run removes it."""
        self.stop.set()  # no part request starts from now on
        removed = self.sink.discard(checkpoint.extra, list(checkpoint.parts))
        with self._in_flight_changed:
            had_in_flight = self._in_flight > 0
            settled = self._in_flight_changed.wait_for(lambda: self._in_flight == 0, IN_FLIGHT_GRACE)
        if had_in_flight:
            removed = self.sink.discard(checkpoint.extra, list(checkpoint.parts))
        if settled and removed:
            checkpoint.delete()
            self.aftermath = "the unfinished upload was removed" + ("" if self.resume else " (resume is off)")
        else:  # the tracker keeps its name, so the next run removes it
            why = "parts were still in flight" if not settled else "the store refused to remove it"
            self.aftermath = (
                f"the unfinished upload is still on the server ({why}); the next run, or ferry cleanup, removes it"
            )
