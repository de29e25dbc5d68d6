"""The tracker file that lets a killed or retried transfer resume where it stopped.

It lives beside the partial data (or in a configured state directory), is written atomically
(temporary file, fsync, rename) with mode 0600, and pins the source's identity: a source whose
size, ETag or version changed, or a different part size, invalidates it.

It also records the boot it was written in. A part is recorded once its bytes are in the page
cache, not on disk (an fsync per part would halve download speed), so after a crash or power loss
the tracker may vouch for bytes that never reached the disk; the caller re-hashes such parts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def current_boot() -> str | None:
    """This boot's random id (Linux); None where the system does not expose one."""
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

    @classmethod
    def load(cls, path: str, identity: dict[str, Any]) -> Checkpoint:
        """The tracker at ``path`` if it matches ``identity``; else a fresh, empty one."""
        try:
            with open(path) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return cls(path, identity)
        if saved.get("format") != FORMAT_VERSION or saved.get("identity") != identity:
            return cls(path, identity, stale_extra=dict(saved.get("extra") or {}))
        parts = {int(k): v for k, v in saved.get("parts", {}).items()}
        return cls(path, identity, parts, saved.get("extra", {}), boot=saved.get("boot"))

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
            self._save()

    def save(self) -> None:
        """Write the tracker now (even with no part done: it claims the temp file for this source)."""
        with self._lock:
            self._save()

    def record(self, index: int, **info: Any) -> None:
        """Mark part ``index`` finished and persist, so a kill right after loses nothing."""
        with self._lock:
            self.parts[index] = info
            self._save()

    def set_extra(self, **info: Any) -> None:
        with self._lock:
            self.extra.update(info)
            self._save()

    def forget(self, index: int) -> None:
        with self._lock:
            self.parts.pop(index, None)
            self._save()

    def _save(self) -> None:
        body = json.dumps(
            {
                "format": FORMAT_VERSION,
                "identity": self.identity,
                "parts": {str(k): v for k, v in sorted(self.parts.items())},
                "extra": self.extra,
                "boot": self.boot,
            }
        )
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".ferry-tracker-", dir=directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def tracker_path(destination: str, state_dir: str | None) -> str:
    """Beside the destination, or in ``state_dir`` under a name derived from the destination."""
    if state_dir is None:
        return destination + ".ferry-tracker"
    digest = hashlib.sha1(os.path.abspath(destination).encode()).hexdigest()[:16]
    base = os.path.basename(destination)[:60]
    return os.path.join(state_dir, f"{base}.{digest}.ferry-tracker")
