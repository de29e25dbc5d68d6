"""The tracker file that lets a killed or retried transfer resume where it stopped.

It lives beside the partial data (or in a configured state directory), with mode 0600, and pins
the source's identity: a source whose size, ETag or version changed, or a different part size,
invalidates it.

It is a journal: a header line (identity, extra state, boot), then one JSON line appended per
event (a part finished, a part forgotten, extra state set). Recording a part is one small
append, O(1) whatever the number of parts; rewriting the whole file per part made a download of
4,096 tiny parts take 80 s. A kill can tear only the last line, which loading ignores. Whole
rewrites (a new header) go through one fixed sibling name, ``<tracker>.new``, renamed into place,
so a kill never leaves a trail of temporary files behind.

It also records the boot it was written in. A part is recorded once its bytes are in the page
cache, not on disk (an fsync per part would halve download speed), so after a crash or power loss
the tracker may vouch for bytes that never reached the disk; the caller re-hashes such parts.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 2
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
REWRITE_SUFFIX = ".new"


@functools.cache
def current_boot() -> str | None:
    """This boot's random id (Linux); None where the system does not expose one. Read once: it
    cannot change while the process lives (a bulk run asked it for every object)."""
    try:
        with open(BOOT_ID_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


@dataclass
class Checkpoint:
    path: str
    identity: dict[str, Any]  # source url, size, etag, version; part size
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> {"crc32c": int, ...}
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. an upload id
    # What a tracker left by a different source (or plan) held: the caller cleans it up
    # (an abandoned multipart upload, temporary components).
    stale_extra: dict[str, Any] = field(default_factory=dict)
    # The boot the recorded parts were written in; None when it cannot be told.
    boot: str | None = field(default_factory=current_boot)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fd: int | None = field(default=None, repr=False)  # open for appends once the header is written
    _torn: bool = field(default=False, repr=False)  # the file ends in a torn line: rewrite before appending
    # False only when load() found nothing at the tracker's names (nor at its .new name) and
    # nothing was written since: delete() then has nothing to remove (a bulk run of small
    # objects saves two failing unlinks per object).
    on_disk: bool = field(default=True, repr=False)

    @classmethod
    def load(cls, path: str, identity: dict[str, Any]) -> Checkpoint:
        """The tracker at ``path`` if it matches ``identity``; else a fresh, empty one."""
        try:
            data = _read_regular(path)
        except FileNotFoundError:
            # Something left at the .new name (a run killed mid-rewrite) still needs removing.
            return cls(path, identity, on_disk=os.path.lexists(path + REWRITE_SUFFIX))
        except OSError:  # a link, a FIFO, anything but a tracker: to be removed, never read
            return cls(path, identity)
        lines = data.split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            return cls(path, identity)
        if not isinstance(header, dict):
            return cls(path, identity)
        checkpoint = cls(path, identity, {}, dict(header.get("extra") or {}), boot=header.get("boot"))
        for line in lines[1:]:
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                checkpoint._torn = True  # only a kill mid-append does this, to the last line
                break
            checkpoint._apply(event)
        if header.get("format") != FORMAT_VERSION or header.get("identity") != identity:
            # Another source or plan: nothing here is reusable, but what it started (an upload
            # id, appended after the header) must be known, to be cleaned up.
            return cls(path, identity, stale_extra=checkpoint.extra)
        return checkpoint

    @classmethod
    def peek(cls, path: str) -> Checkpoint:
        """What the tracker at ``path`` holds, whatever its identity (for tools and tests)."""
        with open(path, "rb") as f:
            header = json.loads(f.readline())
        return cls.load(path, header.get("identity") or {})

    def _apply(self, event: dict[str, Any]) -> None:
        if "part" in event:
            self.parts[int(event["part"])] = event["info"]
        elif "forget" in event:
            self.parts.pop(int(event["forget"]), None)
        elif "extra" in event:
            self.extra.update(event["extra"])
        elif "boot" in event:
            self.boot = event["boot"]

    @property
    def written_this_boot(self) -> bool:
        """False when the parts were recorded before a reboot (or the boot cannot be told), so
        they may never have reached the disk."""
        return self.boot is not None and self.boot == current_boot()

    def vouch_for_parts(self) -> None:
        """The recorded parts were checked against the disk: from now on they count as this boot's.
        Until then the tracker keeps its old boot, so a kill mid-check leaves them still suspect."""
        with self._lock:
            self.boot = current_boot()
            self._append({"boot": self.boot})

    def save(self) -> None:
        """Write the tracker now (even with no part done: it claims the temp file for this source)."""
        with self._lock:
            self._rewrite()

    def clear_parts(self) -> None:
        """Forget every part (a new upload, a restart from zero) and persist that."""
        with self._lock:
            self.parts.clear()
            self._rewrite()

    def record(self, index: int, **info: Any) -> None:
        """Mark part ``index`` finished and persist, so a kill right after loses nothing."""
        with self._lock:
            self.parts[index] = info
            self._append({"part": index, "info": info})

    def set_extra(self, **info: Any) -> None:
        with self._lock:
            self.extra.update(info)
            self._append({"extra": info})

    def forget(self, index: int) -> None:
        with self._lock:
            self.parts.pop(index, None)
            self._append({"forget": index})

    def _append(self, event: dict[str, Any]) -> None:
        if self._fd is None or self._torn:
            self._rewrite()  # the state just changed in memory is part of the rewrite
            return
        os.write(self._fd, json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def _rewrite(self) -> None:
        """Write header and parts to ``<tracker>.new``, fsync it and rename it over the tracker."""
        header = {"format": FORMAT_VERSION, "identity": self.identity, "extra": self.extra, "boot": self.boot}
        lines = [header, *({"part": k, "info": v} for k, v in sorted(self.parts.items()))]
        body = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        tmp = self.path + REWRITE_SUFFIX
        # Whatever an earlier run (or anyone) left at that name goes first, a link included.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            if os.write(fd, body) != len(body):
                raise OSError(errno.ENOSPC, "short write", tmp)
            os.fsync(fd)
            os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # a full disk must not leave a half-written tracker behind
            raise
        self._close()
        self.on_disk = True
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._torn = False

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def delete(self) -> None:
        with self._lock:
            self._close()
            if not self.on_disk:
                return
            for path in (self.path, self.path + REWRITE_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close()


def _read_regular(path: str) -> bytes:
    """The whole of the regular file at ``path``, never through a symbolic link and never
    blocking (on a FIFO an open for reading waits for a writer). OSError for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def tracker_path(destination: str, state_dir: str | None) -> str:
    """Beside the destination, or in ``state_dir`` under a name derived from the destination."""
    if state_dir is None:
        return destination + ".ferry-tracker"
    digest = hashlib.sha1(os.path.abspath(destination).encode()).hexdigest()[:16]
    base = os.path.basename(destination)[:60]
    return os.path.join(state_dir, f"{base}.{digest}.ferry-tracker")
