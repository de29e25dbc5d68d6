"""One writer per destination: an exclusive ``flock`` held for the whole transfer.

Two transfers to one destination share its temp file and tracker; without a lock the second
deletes the first's temp file, the first renames the second's half-written one, and a corrupt
file is published as verified. The lock file (``<path>.ferry-lock``, holding the owner's pid) is
taken without waiting: a second writer fails at once, naming the pid that holds it. The kernel
drops a flock when its holder dies, so a killed transfer never leaves a lock held, only a stale
file that the next transfer takes over and removes.

Removing the file while others may be opening it is safe because a taker checks, once it holds
the lock, that the path still names the inode it locked (else it locked a file already unlinked
and tries again).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from ferry_provider.hooks.errors import FerryError

LOCK_SUFFIX = ".ferry-lock"


class DestinationBusyError(FerryError):
    """Another transfer is writing the same destination."""


class WriterLock:
    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what  # the destination, for messages
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(100):  # each retry means another process removed the file in between
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise DestinationBusyError(
                    f"{self.what}: destination is being written by another transfer"
                    + (f" (pid {holder})" if holder else ""),
                    url=self.what,
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                try:
                    # Fixed width: it covers whatever a dead holder wrote, with no truncate first.
                    os.pwrite(fd, f"{os.getpid():<15}\n".encode(), 0)
                except OSError:  # a full disk: no lock file may stay behind
                    self.release()
                    raise
                return
            os.close(fd)
        raise DestinationBusyError(f"{self.what}: could not take the writer lock {self.path}", url=self.what)

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in that order, so no one locks a file that is
        about to disappear without noticing)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    return None
