"""A column of the matrix: one fault, and what the safety promise requires under it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.faults.backends import Backend
    from tests.faults.cell import Cell
    from tests.faults.operations import Operation


class Fault:
    key = ""  # the column's id, in test ids
    header = ""  # the column's header in the table
    title = ""  # its full name, in the legend

    def not_applicable(self, op: Operation, backend: type[Backend]) -> str | None:
        """Why this fault has no meaning for ``op`` on ``backend``; None if it has."""
        return None

    def note(self, op: Operation, backend: type[Backend]) -> str | None:
        """How this cell stands in for the real fault, when it has to (shown in the legend)."""
        return None

    def run(self, cell: Cell) -> None:
        """Inject the fault, drive ``ferry cp`` and note every broken promise in ``cell.verdict``."""
        raise NotImplementedError
