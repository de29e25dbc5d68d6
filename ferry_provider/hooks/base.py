"""The storage interface every hook implements, and the values that cross it.

No Airflow import here: the engine (``ferry_provider.transfer``) programs against this module
alone, so it runs the same under tests, the CLI and operators. A store's quirks stay in its
hook; ``Capabilities`` tells the engine what it may ask for, as rclone's backend features do.
"""

from __future__ import annotations

import io
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Protocol, Self

from ferry_provider.hooks.errors import (
    FerryError,
    InvalidArgumentError,
    InvalidRangeError,
    PreconditionFailedError,
    SourceChangedError,
    TransientError,
    TruncatedBodyError,
)
from ferry_provider.hooks.url import ObjectURL, parse_url

Body = bytes | bytearray | memoryview | BinaryIO

DEFAULT_CONNECT_TIMEOUT = 10.0
# Long enough for a loaded store's first byte, short enough that a stalled connection costs one
# retry attempt in half a minute rather than a minute (boto3's and requests' usual 60 s).
DEFAULT_READ_TIMEOUT = 30.0


def _seconds(value: object, name: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number of seconds, got {value!r}") from None
    if not 0 < seconds < 86400:
        raise InvalidArgumentError(f"{name} must be between 0 and 86400 seconds, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Capabilities:
    """What a store can do; the engine reads these instead of testing the scheme."""

    ranged_reads: bool = True
    writable: bool = True
    multipart_upload: bool = False  # S3-style create / upload part / complete / abort
    part_copy: bool = False  # UploadPartCopy: a part taken server-side from another object
    can_compose: bool = False  # join existing objects into a new one (GCS compose)
    max_compose_sources: int = 0
    composite_upload: bool = False  # worth uploading big files as temporary components + compose
    server_side_copy: bool = False
    min_part_size: int = 0
    max_part_size: int = 0  # 0: no limit
    max_parts: int = 0  # 0: no limit
    max_single_put: int = 0  # 0: no limit


@dataclass(frozen=True)
class ObjectInfo:
    """What ``head`` and ``list`` know of one object. Digests are lower-case hex.

    ``version`` is the S3 VersionId or the GCS generation. ``crc32c`` and ``crc32`` may end in
    ``-N`` when the store only keeps a composite (per-part) value; ``checksum_type`` then says
    ``COMPOSITE``.
    ``multipart_md5`` is an S3 multipart ETag that really is an MD5 of the parts' MD5s
    (``<hex>-<N>``; None for encrypted objects, whose ETags are not digests).
    ``size`` is None only for an HTTP source that states no length.
    """

    url: str
    size: int | None
    etag: str | None = None
    version: str | None = None
    last_modified: datetime | None = None
    content_type: str | None = None
    md5: str | None = None
    crc32c: str | None = None
    crc32: str | None = None
    crc64nvme: str | None = None
    checksum_type: str | None = None
    multipart_md5: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def pinnable(self) -> bool:
        """Whether reads can be tied to this version: a version id or a strong ETag. Without one,
        ranges read at different moments may come from different versions. A Last-Modified date
        alone is not enough: it has whole seconds, and a rewrite within the same second keeps it
        (RFC 9110 calls such a date weak)."""
        strong_etag = bool(self.etag) and not str(self.etag).startswith("W/")
        return bool(self.version) or strong_etag

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (datetimes as ISO 8601)."""
        out = asdict(self)
        if self.last_modified is not None:
            out["last_modified"] = self.last_modified.isoformat()
        return out


@dataclass(frozen=True)
class PartInfo:
    """One uploaded part of a multipart upload (1-based ``number``; ``crc32c`` in hex)."""

    number: int
    etag: str
    size: int
    crc32c: str | None = None


@dataclass(frozen=True)
class UploadInfo:
    """An unfinished multipart upload, as listed for resume and clean-up."""

    url: str
    upload_id: str
    initiated: datetime | None


_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")


def check_content_range(url: str, header: str | None, start: int, end: int | None, pin: ObjectInfo | None) -> int:
    """Validate a 206 answer's Content-Range against the request; return the body length.

    Servers that answer a range past the end with an empty 206 (or a range other than the one
    asked for) are caught here, and a total size that differs from the pinned one means the
    object changed under us even where the server ignores our precondition headers.
    """
    match = _CONTENT_RANGE_RE.match(header or "")
    if not match:
        raise TransientError(f"{url}: malformed Content-Range {header!r} on a ranged read", url=url)
    first, last, total_text = int(match[1]), int(match[2]), match[3]
    total = None if total_text == "*" else int(total_text)
    if pin is not None and pin.size is not None and total is not None and total != pin.size:
        raise SourceChangedError(
            f"{url} changed during the transfer: size was {pin.size}, the server now reports {total}",
            url=url,
        )
    if total is not None and start >= total:
        raise InvalidRangeError(f"{url}: range start {start} is at or past the end ({total} bytes)", url=url)
    wanted_last = (total - 1 if total is not None else last) if end is None else end - 1
    if total is not None:
        wanted_last = min(wanted_last, total - 1)
    if first != start or last != wanted_last or last < first:
        raise TransientError(f"{url}: asked for bytes {start}-{wanted_last}, the server sent {first}-{last}", url=url)
    return last - first + 1


class RangeReader:
    """A byte stream over one range of an object, read with ``readinto`` into caller buffers.

    It counts bytes so that a connection closed early is a TruncatedBodyError (retryable), never
    a silent short read, and it maps the client library's stream errors to TransientError.
    ``release(complete)`` hands the connection back: a fully read body may return it to the
    pool, a half-read one must close it so no stray bytes reach the next request.
    """

    def __init__(
        self,
        raw: BinaryIO,
        *,
        url: str,
        start: int,
        length: int | None,
        release: Callable[[bool], None] | None = None,
        stream_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._raw = raw
        self.url = url
        self.start = start
        self.length = length
        self.remaining = length
        self._release = release
        self._stream_errors = (OSError, *stream_errors)
        self._closed = False

    @classmethod
    def empty(cls, url: str, start: int) -> RangeReader:
        """A reader over an empty range: no request is made for it."""
        return cls(io.BytesIO(b""), url=url, start=start, length=0)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill up to ``len(buffer)`` bytes; 0 only at the end of the range."""
        view = memoryview(buffer)
        if self.remaining is not None:
            if self.remaining == 0:
                return 0
            view = view[: min(len(view), self.remaining)]
        try:
            n = self._raw.readinto(view)
        except self._stream_errors as exc:
            raise TransientError(f"{self.url}: connection failed while reading: {exc}", url=self.url) from exc
        n = n or 0
        if self.remaining is not None:
            if n == 0:
                got = (self.length or 0) - self.remaining
                raise TruncatedBodyError(
                    f"{self.url}: body ended after {got} of {self.length} bytes (range starting at {self.start})",
                    url=self.url,
                )
            self.remaining -= n
        return n

    def read(self, size: int = -1) -> bytes:
        """Read ``size`` bytes (all that is left when negative); short only at the end."""
        if size is None or size < 0:
            chunks = []
            buf = bytearray(1 << 20)
            while n := self.readinto(buf):
                chunks.append(bytes(buf[:n]))
            return b"".join(chunks)
        out = bytearray(size)
        view = memoryview(out)
        got = 0
        while got < size:
            n = self.readinto(view[got:])
            if n == 0:
                break
            got += n
        return bytes(out[:got])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._release is not None:
                self._release(self.remaining == 0)
            else:
                self._raw.close()
        except Exception:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SizedReader(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes: the position bookkeeping that request
    bodies need (clients rewind them for a retry); subclasses say where the bytes come from."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = min(max(0, base + offset), self._size)
        return self._pos


class BufferReader(SizedReader):
    """A buffer as a file, without copying it: a part held in a worker's buffer is sent from
    there (``bytes(buffer)`` would hold it twice)."""

    def __init__(self, buffer: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(buffer).cast("B")
        super().__init__(len(self._view))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos)
        memoryview(buffer)[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n


def as_stream(body: Body) -> bytes | BinaryIO:
    """``body`` as clients take it: bytes as they are, buffers as a zero-copy file."""
    if isinstance(body, (bytearray, memoryview)):
        return BufferReader(body)  # type: ignore[return-value]
    return body


class ConnectionLike(Protocol):
    """The fields of an Airflow ``Connection`` a store reads (no Airflow import needed)."""

    host: str | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


class StorageHook(ABC):
    """One store behind Ferry's head/get/put/compose/copy interface.

    URLs are strings (or ObjectURL); ranges are ``[start, end)`` with ``end=None`` meaning to the
    end of the object. Every method raises only ``ferry_provider.hooks.errors`` exceptions.
    """

    capabilities: Capabilities = Capabilities()
    schemes: tuple[str, ...] = ()
    # Said when a store finds no credentials of its own, e.g. "using boto3's default chain".
    credential_fallback: str = "using credentials from the environment"
    # Set by the caller (CLI flags, operator arguments) before the first request; None leaves
    # the connection's extras (``connect_timeout``, ``read_timeout``), then the defaults.
    connect_timeout: float | None = None
    read_timeout: float | None = None

    def timeouts(self, extra: Mapping[str, Any]) -> tuple[float, float]:
        """(connect, read) seconds: the caller's, else the connection extra's, else the defaults.

        The read timeout bounds each wait for bytes; a stall past it fails that attempt, which the
        retry policy counts once like any other transient failure."""
        from ferry_provider.hooks.connection import extra_value

        connect = self.connect_timeout or extra_value(extra, "connect_timeout") or DEFAULT_CONNECT_TIMEOUT
        read = self.read_timeout or extra_value(extra, "read_timeout", "timeout") or DEFAULT_READ_TIMEOUT
        return _seconds(connect, "connect_timeout"), _seconds(read, "read_timeout")

    # -- configuration ----------------------------------------------------------------------
    # A bare store (the CLI without --conn, benchmarks) takes its settings from the environment
    # and never loads Airflow; the Airflow hooks override these two with their connection.
    @property
    def conn_id(self) -> str | None:
        return None

    def connection(self) -> ConnectionLike | None:
        """The connection that configures this store; None means the environment's settings."""
        return None

    def credentials_origin(self) -> str:
        """Where credentials came from, for error messages (never the credentials themselves)."""
        return f"connection {self.conn_id!r}" if self.conn_id else "credentials from the environment"

    def native_client(self) -> Any:
        """The client library's object underneath (a boto3 client, a requests session); None
        where there is none (local files)."""
        return None

    def probe(self) -> str:
        """One cheap request that proves the store answers and accepts the credentials; what it
        found, or a FerryError saying why not."""
        return "nothing to connect to"

    # -- reads ------------------------------------------------------------------------------
    @abstractmethod
    def head(self, url: str) -> ObjectInfo:
        """Size, validators and stored digests of one object; NotFoundError when absent."""

    @abstractmethod
    def open_range(
        self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None
    ) -> RangeReader:
        """A stream over ``[start, end)``; ``pin`` (from ``head``) makes a changed object a
        SourceChangedError instead of mixed bytes. ``end`` past the object's end is clipped; a
        ``start`` at or past the end is an InvalidRangeError (except 0 on an empty object)."""

    @abstractmethod
    def list(self, url: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object whose key starts with the URL's key, once each, fetched page by page.

        Order is the store's: S3 and local files give byte order of the key; some S3-compatible
        stores (SeaweedFS) list folder by folder. Callers that need an order sort themselves."""

    def part_sizes(self, url: str, pin: ObjectInfo) -> list[int] | None:
        """The sizes of the parts a multipart object was uploaded in, when the store can tell.

        A composite checksum (S3's ``…-N`` CRC or multipart ETag) is a digest of per-part
        digests: knowing the layout lets a reader verify it. None when the store cannot say, or
        the object is one part.
        """
        return None

    # -- writes -----------------------------------------------------------------------------
    def put(
        self,
        url: str,
        body: Body,
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        crc32c: str | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Write one object in one request. ``crc32c`` (hex) lets the store reject bad bytes;
        ``if_absent`` turns an existing destination into a PreconditionFailedError."""
        raise self._unsupported("put")

    def delete(self, url: str) -> None:
        """Remove one object; an absent object is not an error (deletes are retried)."""
        raise self._unsupported("delete")

    def copy(
        self,
        src: str,
        dst: str,
        *,
        pin: ObjectInfo | None = None,
        if_absent: bool = False,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        resume_token: str | None = None,
        on_token: Callable[[str], None] | None = None,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Server-side copy within this store in one call (capability ``server_side_copy``).

        Metadata and content type are carried over unless given. A store whose copy takes many
        calls (GCS rewrite) reports its continuation token to ``on_token`` after each, and takes
        it back as ``resume_token`` to continue a copy an earlier run began. ``checksum=False``:
        the store is not asked to compute a checksum of the copy where asking is optional."""
        raise self._unsupported("copy")

    @contextmanager
    def copy_preconditions(self, src: str, dst: str, if_absent: bool = False) -> Iterator[None]:
        """A precondition that fails in a server-side copy names the right object: the
        destination when it exists and ``if_absent`` was asked, else the source, whose pinned
        version is gone (one status code answers both)."""
        try:
            yield
        except PreconditionFailedError as exc:
            if if_absent:
                try:
                    self.head(dst)
                except FerryError:
                    pass
                else:
                    raise PreconditionFailedError(f"{dst} already exists (no_clobber)", url=dst) from exc
            raise SourceChangedError(f"{src} changed since it was examined; nothing was copied", url=src) from exc

    def store_identity(self) -> tuple[str, ...] | None:
        """Where this store is and whose credentials it uses (never the secrets), as (scheme,
        endpoint, ..., who): two hooks with the same identity can copy between each other
        server-side. None: only with itself."""
        return None

    def same_store(self, other: StorageHook) -> bool:
        """Whether ``other`` reaches the same store with the same credentials."""
        if other is self:
            return True
        mine = self.store_identity()
        return mine is not None and type(other).schemes == type(self).schemes and other.store_identity() == mine

    def same_endpoint(self, other: StorageHook) -> bool:
        """Whether ``other`` reaches the same store, whoever's credentials it holds (a reader and a
        writer of one bucket): the same scheme and endpoint."""
        mine, theirs = self.store_identity(), other.store_identity()
        return mine is not None and theirs is not None and mine[:2] == theirs[:2]

    def compose(
        self,
        sources: Sequence[str],
        dst: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Join existing objects, in order, into ``dst`` (capability ``can_compose``)."""
        raise self._unsupported("compose")

    # -- multipart (capability multipart_upload) --------------------------------------------
    def create_multipart(
        self,
        url: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        checksum: bool = True,
    ) -> str:
        """Start a multipart upload with full-object CRC32C (without any checksum when
        ``checksum`` is False); return its upload id."""
        raise self._unsupported("multipart upload")

    def upload_part(
        self, url: str, upload_id: str, number: int, body: Body, *, size: int, crc32c: str | None = None
    ) -> PartInfo:
        raise self._unsupported("multipart upload")

    def upload_part_copy(
        self, url: str, upload_id: str, number: int, src: str, start: int, end: int, pin: ObjectInfo | None
    ) -> PartInfo:
        raise self._unsupported("part copy")

    def list_parts(self, url: str, upload_id: str) -> list[PartInfo]:
        raise self._unsupported("multipart upload")

    def complete_multipart(
        self,
        url: str,
        upload_id: str,
        parts: Sequence[PartInfo],
        *,
        crc32c: str | None = None,
        size: int | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        """Join the parts. ``crc32c`` (hex, whole object) is checked by the store when it can."""
        raise self._unsupported("multipart upload")

    def abort_multipart(self, url: str, upload_id: str) -> None:
        raise self._unsupported("multipart upload")

    def list_multipart_uploads(self, url: str) -> Iterator[UploadInfo]:
        raise self._unsupported("multipart upload")

    # -- helpers shared by every hook -------------------------------------------------------
    def read_bytes(self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None) -> bytes:
        """The bytes of ``[start, end)`` in memory: for small objects and tests."""
        with self.open_range(url, start, end, pin) as reader:
            return reader.read()

    def parse(self, url: str | ObjectURL) -> ObjectURL:
        """Parse ``url`` and check that this hook serves its scheme."""
        parsed = url if isinstance(url, ObjectURL) else parse_url(url)
        if parsed.scheme not in self.schemes:
            raise InvalidArgumentError(
                f"{type(self).__name__} serves {'/'.join(self.schemes)} URLs, not {parsed.raw!r}",
                url=parsed.raw,
            )
        return parsed

    def _unsupported(self, what: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"{type(self).__name__} does not support {what}")


def check_range_args(url: str, start: int, end: int | None) -> None:
    """Reject negative or inverted ranges before any request is made."""
    if start < 0:
        raise InvalidArgumentError(f"{url}: range start must be >= 0, got {start}", url=url)
    if end is not None and end < start:
        raise InvalidArgumentError(f"{url}: range end {end} is before its start {start}", url=url)
