"""What a cell found wrong. A cell keeps checking after the first problem (a product fix needs the
whole picture: exit code, row, bytes, leftovers) and fails once, with all of them."""

from __future__ import annotations

from typing import Protocol


class Described(Protocol):
    def describe(self) -> str: ...


class CellFailed(AssertionError):
    """A cell's problems, one per line."""


class Verdict:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, ok: object, problem: str, *runs: Described) -> bool:
        """Note ``problem`` (then the runs concerned) unless ``ok``; return whether it was ok."""
        if not ok:
            self.problems.append(" | ".join([problem, *(run.describe() for run in runs)]))
        return bool(ok)

    def require(self, ok: object, problem: str, *runs: Described) -> None:
        """Like check, but a cell cannot go on without it: fail now, with everything so far."""
        if not self.check(ok, problem, *runs):
            self.conclude()

    def conclude(self) -> None:
        if self.problems:
            raise CellFailed("\n".join(f"- {p}" for p in self.problems))
