"""The safety promise, checked: "the exact bytes are at the destination, or nothing is, and the
manifest says which"; and nothing of the transfer's own (temp files, trackers, multipart uploads,
temporary components) is left once it has finally succeeded or failed.

Every check notes its problem in the cell's Verdict with the run that caused it, and returns.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from tests.faults.cell import Cell, Transfer
from tests.faults.ferry_run import FerryRun


def the_row(cell: Cell, run: FerryRun, result: str | tuple[str, ...], *about: str) -> dict[str, Any] | None:
    """Exactly one manifest row, with ``result`` and a description matching every ``about``."""
    v = cell.verdict
    rows = run.rows
    if not v.check(len(rows) == 1, f"expected exactly one manifest row on stdout, got {len(rows)}", run):
        return None
    row = rows[0]
    results = (result,) if isinstance(result, str) else result
    v.check(row.get("result") in results, f"row result {row.get('result')!r}, expected {results}", run)
    description = str(row.get("description") or "")
    for pattern in about:
        v.check(
            re.search(pattern, description, re.IGNORECASE),
            f"the row's description does not say what happened (expected /{pattern}/)",
            run,
        )
    return row


def succeeded(cell: Cell, run: FerryRun, about: str | None = None) -> bool:
    """Exit 0 and an OK row saying what it verified (and ``about``, e.g. that it resumed)."""
    v = cell.verdict
    ok = v.check(run.returncode == 0, "expected exit 0", run)
    v.check("Traceback" not in run.stderr, "a traceback on stderr", run)
    the_row(cell, run, "OK", cell.op.verified(cell.backend), *([about] if about else []))
    return ok


def failed(cell: Cell, run: FerryRun, about: str) -> None:
    """Exit 1, an error row whose description matches ``about``, and one clean line on stderr."""
    v = cell.verdict
    v.check(run.returncode == 1, "expected exit 1 (the operation failed)", run)
    v.check("Traceback" not in run.stderr, "a traceback on stderr", run)
    lines = run.stderr_lines
    v.check(lines and lines[-1].startswith("ferry:"), "the last stderr line is not ferry's error", run)
    the_row(cell, run, "error", about)


def destination_holds(cell: Cell, t: Transfer, expected: bytes | None, after: str, *runs: FerryRun) -> None:
    """The destination holds exactly ``expected``, or nothing when ``expected`` is None."""
    actual = cell.op.destination_bytes(cell, t)
    if expected is None:
        problem = f"{len(actual)} bytes are at the destination, nothing should be" if actual is not None else ""
    elif actual is None:
        problem = "nothing is at the destination, the source's bytes should be"
    else:
        problem = "" if actual == expected else f"the destination's bytes differ: {_difference(actual, expected)}"
    cell.verdict.check(not problem, f"after {after}: {problem}", *runs)


def clean(cell: Cell, t: Transfer, after: str) -> None:
    """Nothing of the transfer's own is left: local state files, unfinished uploads."""
    local = cell.op.local_leftovers(cell, t)
    cell.verdict.check(not local, f"after {after}: left beside the file: {local}")
    remote = cell.leftovers()
    cell.verdict.check(not remote, f"after {after}: left on the store: {remote}")


def _difference(actual: bytes, expected: bytes) -> str:
    if len(actual) != len(expected):
        return f"{len(actual)} bytes instead of {len(expected)}"
    first = next(i for i, (a, b) in enumerate(zip(actual, expected, strict=True)) if a != b)
    return f"same size, first difference at byte {first} (sha256 {hashlib.sha256(actual).hexdigest()[:16]}...)"
