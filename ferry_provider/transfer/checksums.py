"""CRCs at hardware speed, combined across parts; MD5/SHA-256 where a store keeps only those.

awscrt's CRC32C reads caller buffers in place (no copy), releases the GIL so worker threads hash
in parallel, and measured 3.6 GiB/s per core here; its ``combine_crc32c`` joins part values into
the whole-object value in O(log n), the zlib ``crc32_combine`` method. When awscrt is missing,
google-crc32c's C build is used (it needs a bytes copy); crcmod's pure-Python code is slow
(~0.4 GB/s at best) and is used only when the caller allows slow hashing. CRC32 and CRC64NVME,
which S3 keeps for objects written by newer SDKs or without a checksum, are handled alike.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ferry_provider.hooks.errors import SourceChangedError
from ferry_provider.transfer import crc_math

log = logging.getLogger(__name__)

FILE_HASH_BUFFER = 8 << 20  # per read when hashing a file
SMALLEST_BUFFER = 4096


def buffer_size(span: int, most: int) -> int:
    """Bytes of a read buffer for ``span`` bytes: no more than ``most``, and no more than the span
    (a buffer is zeroed when made, so all of it is resident: 8 MiB for a 64 KiB file is waste
    that a bulk run pays per worker)."""
    return min(most, max(span, SMALLEST_BUFFER))


CHECK_HASHES_MODES = ("if_fast_else_fail", "if_fast_else_skip", "always", "never")

_crc32c_update: Callable[[bytes | bytearray | memoryview, int], int]
_aws_combine_crc32: Any = None
_aws_crc64nvme: Any = None
_aws_combine_crc64nvme: Any = None
try:
    from awscrt.checksums import combine_crc32c as _aws_combine
    from awscrt.checksums import crc32c as _aws_crc32c

    def _crc32c_update(data: bytes | bytearray | memoryview, crc: int) -> int:
        return _aws_crc32c(data, crc)

    CRC32C_IMPLEMENTATION = "awscrt"
except ImportError:  # pragma: no cover - awscrt is a dependency; kept for partial installs
    _aws_combine = None
    try:
        import google_crc32c

        def _crc32c_update(data: bytes | bytearray | memoryview, crc: int) -> int:
            return google_crc32c.extend(crc, bytes(data))

        CRC32C_IMPLEMENTATION = "google-crc32c" if google_crc32c.implementation == "c" else "python"
    except ImportError:
        import crcmod.predefined

        _crcmod = crcmod.predefined.mkPredefinedCrcFun("crc-32c")

        def _crc32c_update(data: bytes | bytearray | memoryview, crc: int) -> int:
            return _crcmod(bytes(data), crc)

        CRC32C_IMPLEMENTATION = "crcmod-python"

try:  # the other CRCs S3 keeps (awscrt >= 0.23)
    from awscrt.checksums import combine_crc32 as _aws_combine_crc32
    from awscrt.checksums import combine_crc64nvme as _aws_combine_crc64nvme
    from awscrt.checksums import crc64nvme as _aws_crc64nvme
except ImportError:  # pragma: no cover - CRC32 then combines in Python; CRC64NVME is not checked
    pass

CRC32C_IS_FAST = CRC32C_IMPLEMENTATION in ("awscrt", "google-crc32c")


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of ``data``, continuing from ``crc`` (the value of the bytes before it)."""
    return _crc32c_update(data, crc)


# -- the CRCs stores keep, and how per-part values join --------------------------------------
Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class CrcAlgorithm:
    """One reflected CRC with all-ones init and xorout: how to extend it, and how to join the
    values of consecutive pieces (awscrt's combine when present, else crc_math's)."""

    name: str
    width: int
    poly: int  # reflected
    update: Callable[[Buffer, int], int]
    fast_combine: Callable[[int, int, int], int] | None = None

    def combine(self, crc_a: int, crc_b: int, len_b: int) -> int:
        if self.fast_combine is not None:
            return self.fast_combine(crc_a, crc_b, len_b)
        return crc_math.combine(crc_a, crc_b, len_b, self.width, self.poly)

    def combine_all(self, parts: Iterable[tuple[int, int]]) -> int:
        """Fold ``(crc, length)`` pairs, in order, into the CRC of their concatenation."""
        total = 0
        for crc, length in parts:
            total = self.combine(total, crc, length)
        return total

    def hex(self, value: int) -> str:
        return f"{value:0{self.width // 4}x}"

    def composite(self, part_crcs: Sequence[int]) -> str:
        """S3's composite (per-part) checksum, ``<hex>-<number of parts>``: this CRC of the
        parts' big-endian values, one after another."""
        joined = b"".join(crc.to_bytes(self.width // 8, "big") for crc in part_crcs)
        return f"{self.hex(self.update(joined, 0))}-{len(part_crcs)}"


CRC32C = CrcAlgorithm("crc32c", 32, 0x82F63B78, _crc32c_update, _aws_combine)
# CRC32 is what AWS SDKs send by default since 2025; zlib's is the fastest here (2.8 GiB/s).
CRC32 = CrcAlgorithm("crc32", 32, 0xEDB88320, lambda data, crc: zlib.crc32(data, crc), _aws_combine_crc32)
# CRC64NVME is what S3 computes for uploads that send no checksum; only awscrt has it.
CRCS = {c.name: c for c in (CRC32C, CRC32)}
if _aws_crc64nvme is not None:
    CRCS["crc64nvme"] = CrcAlgorithm(
        "crc64nvme", 64, 0x9A6C9329AC4BC9B5, lambda data, crc: _aws_crc64nvme(data, crc), _aws_combine_crc64nvme
    )


def combine_all(parts: Iterable[tuple[int, int]]) -> int:
    """Fold ``(crc, length)`` pairs, in order, into the CRC32C of their concatenation."""
    return CRC32C.combine_all(parts)


def hex32(value: int) -> str:
    return f"{value:08x}"


def check_hashes_mode(mode: str) -> str:
    if mode not in CHECK_HASHES_MODES:
        raise ValueError(f"check_hashes must be one of {', '.join(CHECK_HASHES_MODES)}, got {mode!r}")
    return mode


class CrcHasher:
    """A CRC with hashlib's interface, so every digest is fed and read the same way."""

    def __init__(self, algorithm: CrcAlgorithm) -> None:
        self.algorithm = algorithm
        self.name = algorithm.name
        self.value = 0

    def update(self, data: Buffer) -> None:
        self.value = self.algorithm.update(data, self.value)

    def hexdigest(self) -> str:
        return self.algorithm.hex(self.value)


class Hasher(Protocol):
    """What hashlib's hashers and CrcHasher have in common."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


H = TypeVar("H", bound=Hasher)


def new_hasher(algorithm: str) -> Hasher:
    """A hasher for a CRC in ``CRCS`` (crc32c, crc32, crc64nvme) or any hashlib name (md5, ...)."""
    return CrcHasher(CRCS[algorithm]) if algorithm in CRCS else hashlib.new(algorithm)


def hash_file_range(fd: int, start: int, end: int, hasher: H, buffer: memoryview) -> H:
    """Feed ``fd[start:end]`` to ``hasher``, read with pread into ``buffer``; return the hasher.

    A file that ends before ``end`` changed under us: that is an error, never a short digest.
    """
    offset = start
    while offset < end:
        n = os.preadv(fd, [buffer[: min(len(buffer), end - offset)]], offset)
        if n == 0:
            raise SourceChangedError(f"file shrank: nothing at offset {offset}, expected bytes up to {end}")
        hasher.update(buffer[:n])
        offset += n
    return hasher


def file_digest(path: str, algorithm: str, start: int = 0, end: int | None = None) -> str:
    """Hex digest of ``path[start:end]``: a CRC in ``CRCS``, ``md5``, ``sha256`` or another hashlib name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        stop = os.fstat(fd).st_size if end is None else end
        buffer = memoryview(bytearray(buffer_size(stop - start, FILE_HASH_BUFFER)))
        return hash_file_range(fd, start, stop, new_hasher(algorithm), buffer).hexdigest()
    finally:
        os.close(fd)


def span_digests(path: str, algorithm: str, spans: Sequence[tuple[int, int]], workers: int = 1) -> list[str]:
    """Hex digest of each ``[start, end)`` of the file at ``path``, in order.

    One descriptor and one buffer per thread, ``workers`` spans at a time: awscrt, zlib and
    hashlib release the GIL on large buffers, so the threads hash in parallel.
    """
    local = threading.local()
    size = buffer_size(max((end - start for start, end in spans), default=0), FILE_HASH_BUFFER)
    fd = os.open(path, os.O_RDONLY)
    try:

        def digest(span: tuple[int, int]) -> str:
            buffer = getattr(local, "buffer", None)
            if buffer is None:
                buffer = local.buffer = memoryview(bytearray(size))
            return hash_file_range(fd, span[0], span[1], new_hasher(algorithm), buffer).hexdigest()

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(spans)))) as pool:
            return list(pool.map(digest, spans))
    finally:
        os.close(fd)
