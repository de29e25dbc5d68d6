"""Whether a file Ferry finds at one of its own names (a temp file to resume, a lock file) may be
written on: a regular file of this user with no other name. A symbolic link, a FIFO or a hard
link planted there would take the bytes into another file, or give a published file its owner."""

from __future__ import annotations

import os
import stat


def own_single_file(st: os.stat_result) -> bool:
    """``st`` (an lstat or fstat) is of a regular file of this user with exactly one name."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == os.geteuid()
