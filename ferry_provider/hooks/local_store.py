"""Local files (``file://`` URLs and plain paths) behind the storage interface."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO

from ferry_provider.hooks.base import (
    Body,
    Capabilities,
    ObjectInfo,
    RangeReader,
    StorageHook,
    check_range_args,
)
from ferry_provider.hooks.errors import (
    FerryError,
    InvalidArgumentError,
    InvalidRangeError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    SourceChangedError,
)
from ferry_provider.hooks.url import ObjectURL

# Ferry's own in-progress files; listings skip them so a half-done transfer is never a source.
TEMP_MARKERS = (".ferry-tmp", ".ferry-put-", ".ferry-tracker", ".ferry-upload-tracker", ".ferry-lock")
COPY_CHUNK = 8 << 20


class LocalStore(StorageHook):
    """Local files. Writes go to a temporary file beside the destination, are fsynced, then
    renamed into place, so a reader never sees a partial file."""

    schemes = ("file",)
    capabilities = Capabilities(can_compose=True, max_compose_sources=10_000, server_side_copy=True)

    def __init__(self, *, max_connections: int = 16) -> None:
        super().__init__()
        self.max_connections = max_connections  # kept for a uniform signature: files need no pool

    # -- reads ------------------------------------------------------------------------------
    def head(self, url: str) -> ObjectInfo:
        u = self.parse(url).require_key()
        with _os_errors(u.raw):
            st = os.stat(u.path)
        if not os.path.isfile(u.path):
            raise InvalidArgumentError(f"{u.raw} is not a regular file", url=u.raw)
        return _info(u.raw, st)

    def open_range(
        self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None
    ) -> RangeReader:
        u = self.parse(url).require_key()
        check_range_args(u.raw, start, end)
        with _os_errors(u.raw):
            f = open(u.path, "rb", buffering=0)  # noqa: SIM115 - owned by the RangeReader
        try:
            st = os.fstat(f.fileno())
            if pin is not None and pin.etag and _etag(st) != pin.etag:
                raise SourceChangedError(f"{u.raw} changed: {pin.etag} -> {_etag(st)}", url=u.raw)
            if start >= st.st_size and not (start == 0 and end is None) and end != start:
                raise InvalidRangeError(f"{u.raw}: range start {start} is at or past the end ({st.st_size})", url=u.raw)
            stop = st.st_size if end is None else min(end, st.st_size)
            f.seek(start)
        except BaseException:
            f.close()
            raise
        return RangeReader(f, url=u.raw, start=start, length=max(stop - start, 0))

    def list(self, url: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        u = self.parse(url)
        prefix = u.path + ("/" if u.raw.endswith("/") and not u.path.endswith("/") else "")
        if os.path.isfile(prefix):
            yield self.head(prefix)
            return
        root = prefix if prefix.endswith("/") else os.path.dirname(prefix)
        yield from _walk_sorted(root, prefix)

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
        u = self.parse(url).require_key()

        def write(out: BinaryIO) -> None:
            if isinstance(body, (bytes, bytearray, memoryview)):
                out.write(body)
                return
            copied = _copy_stream(body, out, size)
            if size is not None and copied != size:
                raise InvalidArgumentError(f"{u.raw}: body ended after {copied} of {size} bytes", url=u.raw)

        return self._write_atomically(u, write, if_absent)

    def _write_atomically(self, u: ObjectURL, write: Any, if_absent: bool) -> ObjectInfo:
        parent = os.path.dirname(u.path)
        with _os_errors(u.raw):
            if os.path.isdir(u.path):
                raise InvalidArgumentError(f"{u.raw} is a directory", url=u.raw)
            os.makedirs(parent, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=os.path.basename(u.path)[:80] + ".ferry-put-", dir=parent)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            with _os_errors(u.raw):
                if if_absent:
                    try:
                        os.link(tmp, u.path)  # atomic create-if-absent: fails when the name exists
                    except FileExistsError:
                        raise PreconditionFailedError(f"{u.raw} already exists", url=u.raw) from None
                    os.unlink(tmp)
                else:
                    os.replace(tmp, u.path)
                st = os.stat(u.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return _info(u.raw, st)

    def delete(self, url: str) -> None:
        u = self.parse(url).require_key()
        with _os_errors(u.raw), contextlib.suppress(FileNotFoundError):
            os.unlink(u.path)

    def copy(self, src: str, dst: str, *, pin: ObjectInfo | None = None, if_absent: bool = False) -> ObjectInfo:
        return self.compose([src], dst, if_absent=if_absent, pins=[pin] if pin else None)

    def compose(
        self,
        sources: Sequence[str],
        dst: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
        pins: Sequence[ObjectInfo] | None = None,
    ) -> ObjectInfo:
        d = self.parse(dst).require_key()
        parsed = [self.parse(s).require_key() for s in sources]
        if not parsed:
            raise InvalidArgumentError(f"{d.raw}: compose needs at least one source", url=d.raw)

        def write(out: BinaryIO) -> None:
            for i, s in enumerate(parsed):
                with self.open_range(s.raw, pin=pins[i] if pins else None) as reader:
                    _copy_stream(reader, out, None)

        return self._write_atomically(d, write, if_absent)


def _etag(st: os.stat_result) -> str:
    """Modification time and size: changes whenever the file is rewritten (as nginx's ETag)."""
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


def _info(url: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        url=url,
        size=st.st_size,
        etag=_etag(st),
        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        content_type=mimetypes.guess_type(url)[0],
    )


def _copy_stream(reader: Any, out: BinaryIO, size: int | None) -> int:
    buf = bytearray(COPY_CHUNK)
    view = memoryview(buf)
    copied = 0
    while size is None or copied < size:
        want = COPY_CHUNK if size is None else min(COPY_CHUNK, size - copied)
        if hasattr(reader, "readinto"):
            n = reader.readinto(view[:want])
            if not n:
                break
            out.write(view[:n])
        else:
            chunk = reader.read(want)
            if not chunk:
                break
            n = len(chunk)
            out.write(chunk)
        copied += n
    return copied


def _walk_sorted(root: str, prefix: str) -> Iterator[ObjectInfo]:
    """Files under ``root`` whose path starts with ``prefix``, in byte order of the path, lazily.

    A directory sorts as its name plus '/', so ``a-b`` comes before ``a/x`` as it would in a
    bucket listing, and each subtree is yielded whole before its next sibling.
    """
    try:
        entries = list(os.scandir(root or "."))
    except FileNotFoundError:
        return
    except PermissionError as exc:
        raise PermissionDeniedError(f"{root}: permission denied", url=root) from exc
    keyed = sorted((e.name + ("/" if e.is_dir(follow_symlinks=False) else ""), e) for e in entries)
    for name, entry in keyed:
        path = os.path.join(root, name)
        if not (path.startswith(prefix) or prefix.startswith(path)):
            continue
        if name.endswith("/"):
            yield from _walk_sorted(path.rstrip("/"), prefix)
        elif entry.is_file() and not any(m in name for m in TEMP_MARKERS) and path.startswith(prefix):
            yield _info(path, entry.stat())


class _os_errors(contextlib.AbstractContextManager["_os_errors"]):
    """Map OSError to Ferry's errors, naming the path."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __exit__(self, et: Any, exc: Any, tb: Any) -> bool:
        if exc is None or isinstance(exc, FerryError) or not isinstance(exc, OSError):
            return False
        if isinstance(exc, FileNotFoundError):
            raise NotFoundError(f"{self.url}: no such file", url=self.url) from exc
        if isinstance(exc, PermissionError):
            raise PermissionDeniedError(f"{self.url}: permission denied", url=self.url) from exc
        if isinstance(exc, IsADirectoryError):
            raise InvalidArgumentError(f"{self.url} is a directory", url=self.url) from exc
        raise FerryError(f"{self.url}: {exc.strerror or exc}", url=self.url) from exc
