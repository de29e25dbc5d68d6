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

ANY_RESULT = ("OK", "skip", "error")


def the_row(
    cell: Cell,
    t: Transfer,
    run: FerryRun,
    result: str | tuple[str, ...],
    *about: str,
    others: tuple[str, ...] = ("OK", "skip"),
) -> dict[str, Any] | None:
    """Exactly one manifest row for the object, with ``result`` and a description matching every
    ``about``. A bulk run prints a row for each other object it moved as well: at most one each,
    with a result among ``others`` (an error row matching ``about`` too); a bulk run that failed
    before it knew of any object (listing its prefix, reading its manifest) has no row: its error
    line must say what happened."""
    v = cell.verdict
    rows = run.rows
    if not rows and cell.op.unlisted(cell, run):
        line = run.stderr_lines[-1] if run.stderr_lines else ""
        for pattern in about:
            v.check(
                re.search(pattern, line, re.IGNORECASE),
                f"no object was reached, and the error line does not say what happened (expected /{pattern}/)",
                run,
            )
        return None
    focus, by_object, unknown = cell.op.sort_rows(t, rows)
    v.check(not unknown, f"rows of no object under the prefix: {[r.get('source') for r in unknown]}", run)
    for name, object_rows in sorted(by_object.items()):
        if not v.check(len(object_rows) == 1, f"{len(object_rows)} rows for {name} in one run, expected one", run):
            continue
        row = object_rows[0]
        v.check(row.get("result") in others, f"{name}: row result {row.get('result')!r}, expected {others}", run)
        description = str(row.get("description") or "")
        for pattern in about if row.get("result") == "error" else ():
            v.check(
                re.search(pattern, description, re.IGNORECASE),
                f"{name}: its error row does not say what happened (expected /{pattern}/)",
                run,
            )
    what = "for the object in focus" if t.others else "on stdout"
    if not v.check(len(focus) == 1, f"expected exactly one manifest row {what}, got {len(focus)}", run):
        return None
    row = focus[0]
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


def succeeded(cell: Cell, t: Transfer, run: FerryRun, about: str | None = None) -> bool:
    """Exit 0 and an OK row saying what it verified (and ``about``, e.g. that it resumed)."""
    v = cell.verdict
    ok = v.check(run.returncode == 0, "expected exit 0", run)
    v.check("Traceback" not in run.stderr, "a traceback on stderr", run)
    the_row(cell, t, run, "OK", cell.op.verified(cell.backend), *([about] if about else []))
    return ok


def failed(cell: Cell, t: Transfer, run: FerryRun, about: str, others: tuple[str, ...] = ("OK", "skip")) -> None:
    """Exit 1, an error row whose description matches ``about``, and one clean line on stderr
    (ferry's error; a bulk's summary counting the failures). ``others``: the results a bulk's
    other objects may have (a refusal strikes them too)."""
    v = cell.verdict
    v.check(run.returncode == 1, "expected exit 1 (the operation failed)", run)
    v.check("Traceback" not in run.stderr, "a traceback on stderr", run)
    lines = run.stderr_lines
    v.check(
        lines and re.search(cell.op.error_line, lines[-1]),
        f"the last stderr line is not ferry's error (/{cell.op.error_line}/)",
        run,
    )
    the_row(cell, t, run, "error", about, others=others)


def interrupted(cell: Cell, t: Transfer, run: FerryRun) -> None:
    """An interrupted run printed at most one row for the object in flight, an error row (saying
    so, where the operation promises it); a bulk's other objects, finished before, are OK."""
    v = cell.verdict
    if cell.op.interrupted_row is not None:
        the_row(cell, t, run, "error", cell.op.interrupted_row)
        return
    rows = run.rows
    v.check(
        not rows or (len(rows) == 1 and rows[0].get("result") == "error"),
        "an interrupted run may print at most one row, an error row",
        run,
    )


def destination_holds(cell: Cell, t: Transfer, expected: bytes | None, after: str, *runs: FerryRun) -> None:
    """The destination holds exactly ``expected``, or nothing when ``expected`` is None; and
    whatever else the operation's record must show once it has ended (a bulk's other objects
    against their manifest rows, and the manifest across runs)."""
    actual = cell.op.destination_bytes(cell, t)
    if expected is None:
        problem = f"{len(actual)} bytes are at the destination, nothing should be" if actual is not None else ""
    elif actual is None:
        problem = "nothing is at the destination, the source's bytes should be"
    else:
        problem = "" if actual == expected else f"the destination's bytes differ: {_difference(actual, expected)}"
    cell.verdict.check(not problem, f"after {after}: {problem}", *runs)
    for problem in cell.op.record_problems(cell, t):
        cell.verdict.check(False, f"after {after}: {problem}", *runs)


def clean(cell: Cell, t: Transfer, after: str) -> None:
    """Nothing of the transfer's own is left: local state files, unfinished uploads."""
    local = cell.op.local_leftovers(cell, t)
    cell.verdict.check(not local, f"after {after}: left on the local disk: {local}")
    remote = cell.leftovers()
    cell.verdict.check(not remote, f"after {after}: left on the store: {remote}")


def _difference(actual: bytes, expected: bytes) -> str:
    if len(actual) != len(expected):
        return f"{len(actual)} bytes instead of {len(expected)}"
    first = next(i for i, (a, b) in enumerate(zip(actual, expected, strict=True)) if a != b)
    return f"same size, first difference at byte {first} (sha256 {hashlib.sha256(actual).hexdigest()[:16]}...)"
