"""The matrix as a table: rows x fault columns, each cell PASS / FAIL / n/a / skip, then the
legend (what each column injects, why a cell is n/a, how a cell stands in for a fault) and the
first line of each failure."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.faults.matrix import COLUMNS, ROWS, SPECS, Spec

NOT_RUN = "-"


@dataclass
class Outcome:
    status: str = "PASS"  # PASS, FAIL or skip
    detail: str = ""  # a failure's problems, a skip's reason
    seconds: float = 0.0


@dataclass
class Results:
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def record(self, spec: Spec, report: pytest.TestReport, detail: str) -> None:
        outcome = self.outcomes.setdefault(spec.id, Outcome())
        outcome.seconds += report.duration
        if report.failed and outcome.status != "FAIL":
            outcome.status, outcome.detail = "FAIL", f"{report.when}: {detail}" if report.when != "call" else detail
        elif report.skipped and outcome.status == "PASS":
            outcome.status, outcome.detail = "skip", detail


RESULTS = pytest.StashKey[Results]()


def render(results: Results) -> list[str]:
    by_id = {spec.id: spec for spec in SPECS}
    reasons: list[str] = []  # n/a and skip reasons, numbered in order of appearance
    notes: list[str] = []

    def footnote(items: list[str], text: str) -> int:
        if text not in items:
            items.append(text)
        return items.index(text) + 1

    grid: list[list[str]] = []
    for row in ROWS:
        cells = []
        for fault in COLUMNS:
            spec = by_id[f"{row.id}-{fault.key}"]
            outcome = results.outcomes.get(spec.id)
            if spec.not_applicable:
                text = f"n/a[{footnote(reasons, spec.not_applicable)}]"
            elif outcome is None:
                text = NOT_RUN
            elif outcome.status == "skip":
                text = f"skip[{footnote(reasons, outcome.detail)}]"
            else:
                text = outcome.status
            if spec.note and text != NOT_RUN and not spec.not_applicable:
                text += f"*{footnote(notes, spec.note)}"
            cells.append(text)
        grid.append(cells)

    first = max(len(row.title) for row in ROWS)
    widths = [max(len(fault.header), *(len(cells[i]) for cells in grid)) for i, fault in enumerate(COLUMNS)]
    lines = ["  ".join([" " * first, *(f.header.ljust(w) for f, w in zip(COLUMNS, widths, strict=True))]).rstrip()]
    for row, cells in zip(ROWS, grid, strict=True):
        lines.append(
            "  ".join([row.title.ljust(first), *(c.ljust(w) for c, w in zip(cells, widths, strict=True))]).rstrip()
        )
    ran = list(results.outcomes.values())
    counts = {s: sum(o.status == s for o in ran) for s in ("PASS", "FAIL", "skip")}
    na = sum(1 for spec in SPECS if spec.not_applicable)
    lines.append(
        f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['skip']} skip, {na} n/a"
        f" ({len(SPECS) - na - len(ran)} not run); the cells took {sum(o.seconds for o in ran):.0f}s,"
        " server start-up included"
    )
    lines.append("columns:")
    lines.extend(f"  {fault.header}: {fault.title}" for fault in COLUMNS)
    if reasons:
        lines.append("n/a and skipped cells:")
        lines.extend(f"  [{i}] {text}" for i, text in enumerate(reasons, 1))
    if notes:
        lines.append("stand-ins:")
        lines.extend(f"  *{i} {text}" for i, text in enumerate(notes, 1))
    failures = [(by_id[i], o) for i, o in results.outcomes.items() if o.status == "FAIL"]
    if failures:
        lines.append("failures (first problem of each; the test's output has them all):")
        for spec, outcome in failures:
            first_problem = outcome.detail.strip().splitlines()[0] if outcome.detail.strip() else "?"
            lines.append(f"  {spec.row.title} x {spec.fault.header}: {first_problem.removeprefix('- ')[:300]}")
    return lines
