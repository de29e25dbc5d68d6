"""Every cell of the matrix that has a meaning is one test; n/a cells are not tests (the table
lists them with their reason)."""

from __future__ import annotations

import pytest

from tests.faults.cell import Cell
from tests.faults.matrix import SPECS, Spec

CELLS = [spec for spec in SPECS if not spec.not_applicable]


@pytest.mark.parametrize("spec", CELLS, ids=[spec.id for spec in CELLS])
def test_fault_cell(spec: Spec, cell: Cell) -> None:
    spec.fault.run(cell)
    cell.verdict.conclude()
