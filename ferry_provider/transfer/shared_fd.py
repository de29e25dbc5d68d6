"""A file descriptor closed only once its last user is done with it.

A signal makes the part pool return at once, abandoning the parts in flight (see ``interrupt``),
while the caller's clean-up closes its file. A worker still reading the file (an upload part
being signed and sent) or writing it (a download range) would then use a closed descriptor, or,
worse, the same number reused by the next ``open()``, sending another file's bytes or writing into
another file. Each part holds a use for as long as it runs; the owner's ``release()`` is only its
own use, and the last one to let go closes the descriptor.
"""

from __future__ import annotations

import os
import threading

from ferry_provider.transfer.pool import Stopped


class SharedFd:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._users = 1  # the owner
        self._lock = threading.Lock()

    def __enter__(self) -> int:
        with self._lock:
            if self._users == 0:  # the owner let go and no part holds it: it is closed
                raise Stopped()
            self._users += 1
        return self.fd

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            os.close(self.fd)
