"""Part sources: where a part's bytes come from on their way to a sink.

- ``FileParts``: a local file, hashed with pread and streamed from a pread-backed slice (no copy
  of the part in memory).
- ``RemoteParts``: a remote object, each part fetched by a ranged read pinned to the version
  ``head`` saw into a per-worker buffer, its CRCs computed as the bytes arrive.
- ``StreamParts``: a remote object that cannot be read by ranges: one stream, parts taken from it
  in order.
- ``ServerSideParts``: no bytes at all; the destination store copies each part from the source
  (S3 UploadPartCopy with a source range pinned by ETag).

A source ``prepare``s a part (fetches and hashes it, when bytes pass through the worker), then
``transmit``s it to a sink; the job around them retries, records and counts.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ferry_provider.hooks.base import Body, ObjectInfo, PartInfo, RangeReader, StorageHook
from ferry_provider.hooks.errors import SourceChangedError, TruncatedBodyError
from ferry_provider.transfer import checksums
from ferry_provider.transfer.file_slice import FileSlice
from ferry_provider.transfer.ordered_digest import OrderedDigests
from ferry_provider.transfer.plan import MiB, Part
from ferry_provider.transfer.pool import Stopped
from ferry_provider.transfer.range_progress import RangeProgress
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.shared_fd import SharedFd
from ferry_provider.transfer.sinks import ObjectSink

HASH_BUFFER = 4 * MiB
# One hashing buffer per thread for every FileParts: a buffer per instance, held by a thread-local
# inside a reference cycle, lived until the cyclic collector ran, so a bulk upload of 5,000 small
# files grew to 1 GiB of resident memory.
_HASH_BUFFERS = threading.local()
READ_CHUNK = 1 * MiB  # one recv into the part buffer: large enough to be cheap, small enough to stop fast


@dataclass
class PreparedPart:
    """A part ready to send: its body (None when the store copies it itself) and its CRCs, by
    algorithm name (empty when only the store will know them)."""

    part: Part
    body: Body | None = None
    crcs: dict[str, int] = field(default_factory=dict)


class PartSource:
    """Where parts come from; ``bytes_through_worker`` says whether they pass through this process."""

    bytes_through_worker = True

    def hold(self) -> contextlib.AbstractContextManager[object]:
        """Held by a part for as long as it runs (the file it reads must stay open)."""
        return contextlib.nullcontext()

    def prepare(self, part: Part, stop: threading.Event) -> PreparedPart:
        raise NotImplementedError

    def transmit(self, prepared: PreparedPart, sink: ObjectSink) -> PartInfo:
        return sink.send(prepared.part, prepared.body, checksums.hex32(prepared.crcs["crc32c"]))  # type: ignore[arg-type]

    def before_resend(self, prepared: PreparedPart) -> None:
        """Called before a part is sent again: raise when resending cannot help."""

    def still_matches(self, part: Part, crc32c: int) -> bool:
        """Whether a part a resume reuses still holds the bytes recorded for it."""
        return True

    def check_unchanged(self) -> None:
        """Raise SourceChangedError when the source changed since the transfer began."""


class FileParts(PartSource):
    """A local file: each part hashed with pread into a reused buffer, then sent from a slice."""

    def __init__(self, shared: SharedFd, path: str, check_unchanged: Callable[[], None]) -> None:
        self.shared = shared
        self._check_unchanged = check_unchanged
        self.fd = shared.fd
        self.path = path

    def hold(self) -> contextlib.AbstractContextManager[object]:
        return self.shared  # an abandoned part keeps the file open until it stops

    def crc(self, start: int, size: int) -> int:
        """CRC32C of ``size`` bytes of the file at ``start``, through this thread's buffer."""
        need = checksums.buffer_size(size, HASH_BUFFER)  # a 64 KiB file: 64 KiB per worker, not 4 MiB
        buf = getattr(_HASH_BUFFERS, "buf", None)
        if buf is None or len(buf) < need:
            buf = _HASH_BUFFERS.buf = memoryview(bytearray(need))
        hasher = checksums.CrcHasher(checksums.CRC32C)
        return checksums.hash_file_range(self.fd, start, start + size, hasher, buf).value

    def prepare(self, part: Part, stop: threading.Event) -> PreparedPart:
        if stop.is_set():
            raise Stopped()
        crc = self.crc(part.start, part.size)
        return PreparedPart(part, FileSlice(self.fd, part.start, part.size), {"crc32c": crc})

    def before_resend(self, prepared: PreparedPart) -> None:
        # The store refused the bytes (BadDigest, a CRC32C mismatch) or the link broke: if the
        # file itself now holds other bytes, resending cannot help.
        part = prepared.part
        if self.crc(part.start, part.size) != prepared.crcs["crc32c"]:
            raise SourceChangedError(
                f"{self.path} changed while uploading (part {part.index + 1} holds other bytes now); "
                "nothing was published",
                url=self.path,
            )

    def still_matches(self, part: Part, crc32c: int) -> bool:
        return self.crc(part.start, part.size) == crc32c

    def check_unchanged(self) -> None:
        self._check_unchanged()


class RemoteParts(PartSource):
    """A remote object read by pinned ranges, one part at a time per worker, into a buffer of
    ``part_size`` bytes that the worker reuses: memory is parallelism x part size."""

    def __init__(
        self,
        hook: StorageHook,
        url: str,
        pin: ObjectInfo,
        retry: RetryPolicy,
        crcs: Sequence[checksums.CrcAlgorithm],
        label: str,
        ordered: OrderedDigests | None = None,
    ) -> None:
        self.hook = hook
        self.url = url
        self.pin = pin
        self.retry = retry
        self.crcs = tuple(crcs)
        self.label = label
        self.ordered = ordered  # digests that need the bytes in order, fed as parts come in
        self._local = threading.local()

    def _prepared(self, part: Part, view: memoryview, state: RangeProgress, stop: threading.Event) -> PreparedPart:
        if self.ordered:
            self.ordered.feed(part.index, view, stop)
        crcs = {algorithm.name: value for algorithm, value in zip(self.crcs, state.crcs, strict=True)}
        return PreparedPart(part, view, crcs)

    def _buffer(self, size: int) -> memoryview:
        buf: bytearray | None = getattr(self._local, "buf", None)
        if buf is None or len(buf) < size:
            buf = self._local.buf = bytearray(size)
        return memoryview(buf)[:size]

    def prepare(self, part: Part, stop: threading.Event) -> PreparedPart:
        view = self._buffer(part.size)
        state = RangeProgress.at(0, len(self.crcs))  # positions within the part's buffer

        def attempt() -> None:
            # A retry continues at the last byte received, with the CRCs of the bytes before it.
            if state.pos == part.size:
                return
            with self.hook.open_range(self.url, part.start + state.pos, part.end, self.pin) as reader:
                self._fill(reader, view, state, stop)

        self.retry.run(
            attempt, what=f"{self.label}: part {part.index + 1} (bytes {part.start}-{part.end - 1})", stop=stop
        )
        return self._prepared(part, view, state, stop)

    def _fill(self, reader: RangeReader, view: memoryview, state: RangeProgress, stop: threading.Event) -> None:
        while state.pos < len(view):
            if stop.is_set():
                raise Stopped()
            at = state.pos
            chunk = view[at : min(len(view), at + READ_CHUNK)]
            n = reader.readinto(chunk)
            if n == 0:
                raise TruncatedBodyError(f"{self.url}: body ended early at part byte {at}", url=self.url)
            state.feed(self.crcs, chunk[:n])


class StreamParts(RemoteParts):
    """A remote object without ranges: one stream, read part after part in order (the job runs
    one worker). A broken stream is opened again and read up to where the part starts."""

    _reader: RangeReader | None = None
    _at = 0  # where the open stream is

    def prepare(self, part: Part, stop: threading.Event) -> PreparedPart:
        view = self._buffer(part.size)
        state = RangeProgress.at(0, len(self.crcs))

        def attempt() -> None:
            if self._reader is None or self._at != part.start + state.pos:
                self.close()
                self._reader = self.hook.open_range(self.url, 0, None, self.pin)
                self._skip(part.start + state.pos, stop)
            try:
                self._fill(self._reader, view, state, stop)
            finally:
                self._at = part.start + state.pos

        def attempt_or_reopen() -> None:
            try:
                attempt()
            except BaseException:
                self.close()
                raise

        self.retry.run(attempt_or_reopen, what=f"{self.label}: part {part.index + 1} (one stream)", stop=stop)
        return self._prepared(part, view, state, stop)

    def _skip(self, count: int, stop: threading.Event) -> None:
        """Read and drop ``count`` bytes of a stream opened anew."""
        assert self._reader is not None
        scratch = memoryview(bytearray(min(count, READ_CHUNK) or 1))
        left = count
        while left:
            if stop.is_set():
                raise Stopped()
            n = self._reader.readinto(scratch[: min(left, len(scratch))])
            if n == 0:
                raise TruncatedBodyError(f"{self.url}: stream ended before byte {count}", url=self.url)
            left -= n
        self._at = count

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class ServerSideParts(PartSource):
    """The destination store copies each part from the source itself; nothing passes through
    this process. The part's CRC32C is the one the store reports for it."""

    bytes_through_worker = False

    def __init__(self, url: str, pin: ObjectInfo) -> None:
        self.url = url
        self.pin = pin

    def prepare(self, part: Part, stop: threading.Event) -> PreparedPart:
        if stop.is_set():
            raise Stopped()
        return PreparedPart(part)

    def transmit(self, prepared: PreparedPart, sink: ObjectSink) -> PartInfo:
        return sink.send_copy(prepared.part, self.url, self.pin)
