"""One writer per destination: an exclusive ``flock`` held for the whole transfer.

Two transfers to one destination share its temp file and tracker; without a lock the second
deletes the first's temp file, the first renames the second's half-written one, and a corrupt
file is published as verified. The lock file (``<path>.ferry-lock``, holding the owner's pid) is
taken without waiting: a second writer fails at once, naming the pid that holds it. The kernel
drops a flock when its holder dies, so a killed transfer never leaves a lock held, only a stale
file that the next transfer takes over and removes.

Only a regular file of this user with no other name is used as the lock file: a symbolic link,
a FIFO or a hard link found at that name is removed first (the pid would land in another file).

Removing the file while others may be opening it is safe because a taker checks, once it holds
the lock, that the path still names the inode it locked (else it locked a file already unlinked
and tries again).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from ferry_provider.hooks.errors import FerryError
from ferry_provider.transfer.own_file import own_single_file

LOCK_SUFFIX = ".ferry-lock"
PID_WIDTH = 16  # bytes of pid (space-padded) and newline written in the lock file


class DestinationBusyError(FerryError):
    """Another transfer is writing the same destination."""


class WriterLock:
    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what  # the destination, for messages
        self._fd: int | None = None

    def acquire(self) -> None:
        for _ in range(100):  # each retry means another process removed the file in between
            opened = self._open()
            if opened is None:
                continue  # something that was no lock file was there: removed, try again
            fd, mine = opened
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
                same = mine.st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                try:
                    # Fixed width: it covers what a dead holder wrote, so only a longer file
                    # (not one of ours) needs truncating first.
                    if mine.st_size > PID_WIDTH:
                        os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid():<{PID_WIDTH - 1}}\n".encode(), 0)
                except OSError:  # a full disk: no lock file may stay behind
                    self.release()
                    raise
                return
            os.close(fd)
        raise DestinationBusyError(f"{self.what}: could not take the writer lock {self.path}", url=self.what)

    def _open(self) -> tuple[int, os.stat_result] | None:
        """The lock file and its stat, opened never through a link and never blocking; None
        after removing whatever else was at its name (a link, a FIFO, a file with other names or
        another owner: the pid would land in someone else's file)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            seen = os.lstat(self.path)  # a symbolic link
        else:
            seen = os.fstat(fd)
            if own_single_file(seen):
                return fd, seen
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            now = os.lstat(self.path)
            if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):  # not replaced meanwhile
                os.unlink(self.path)
        return None

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
