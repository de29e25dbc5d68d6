"""What a transfer keeps on the local disk between runs: temp files, trackers, lock files.

Names are matched loosely (anything with ``.ferry-`` in it: ``*.ferry-tmp``, ``*.ferry-tracker``,
``*.ferry-upload-tracker``, ``.ferry-tracker-*``, ``*.ferry-lock``...), so a leftover of a kind
this matrix does not know yet is still caught.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = ".ferry-"


def ferry_files(directory: Path) -> list[str]:
    """Ferry's own files in ``directory`` (not recursive: state lives beside its file)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if MARKER in p.name)


def find(directory: Path, suffix: str) -> list[Path]:
    return sorted(p for p in directory.glob(f"*{suffix}") if p.is_file()) if directory.is_dir() else []


def tracker_parts(path: Path) -> dict[int, int]:
    """The finished parts a tracker records, index -> size; {} when it cannot be read (yet)."""
    try:
        from ferry_provider.transfer.checkpoint import Checkpoint

        peek = getattr(Checkpoint, "peek", None)  # whatever the tracker's format, read it as Ferry does
        if peek is not None:
            return {int(i): int(info.get("size", 0)) for i, info in peek(str(path)).parts.items()}
        saved = json.loads(path.read_text())
        return {int(i): int(info.get("size", 0)) for i, info in saved.get("parts", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}  # absent, or caught mid-write
