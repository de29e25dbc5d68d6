"""The mode a published download gets: what any new file would get, unless the caller says.

Temp files are created 0600 (partial data is nobody else's business); the finished file is then
given 0666 less the process umask, as ``open()`` would, so a downstream reader running as
another user (containers, ``run_as_user``) can read it where the umask allows.
"""

from __future__ import annotations

import os
import threading

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The umask, read without changing it where Linux shows it (threads share it, so the
    classic set-and-restore would race with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def publish_mode(requested: int | None) -> int:
    return requested if requested is not None else 0o666 & ~current_umask()
