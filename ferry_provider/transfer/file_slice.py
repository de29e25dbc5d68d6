"""A read-only, seekable file object over one byte range of an open file, read with pread.

Clients (botocore, requests) stream a part from it and can rewind it for a retry; pread never
moves a shared file offset, so many slices of one descriptor are read from many threads.
"""

from __future__ import annotations

import os

from ferry_provider.hooks.base import SizedReader


class FileSlice(SizedReader):
    def __init__(self, fd: int, start: int, size: int) -> None:
        super().__init__(size)
        self._fd = fd
        self._start = start

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(self._fd, [view[:want]], self._start + self._pos)
        if n == 0:
            raise OSError(f"file shrank: nothing at offset {self._start + self._pos}")
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        want = self._size - self._pos if size is None or size < 0 else min(size, self._size - self._pos)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._start + self._pos)
        if not data:
            raise OSError(f"file shrank: nothing at offset {self._start + self._pos}")
        self._pos += len(data)
        return data
