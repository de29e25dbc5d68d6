"""The matrix's fixtures (a store per backend, started once; a Cell per test) and its table,
printed at the end of any pytest run that ran a cell: ``make test`` and ``make faults`` alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.backends import Backend, GCSBackend, HTTPBackend, S3Backend
from tests.faults.cell import Cell
from tests.faults.matrix import Spec
from tests.faults.table import RESULTS, Results, render

# How each backend is made from the session's servers (tests/conftest.py starts them on demand).
MAKERS: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {
    S3Backend.name: lambda request: S3Backend(request.getfixturevalue("seaweedfs")),
    GCSBackend.name: lambda request: GCSBackend(request.getfixturevalue("gcs_endpoint")),
    HTTPBackend.name: lambda request: HTTPBackend(*request.getfixturevalue("http_server")[:2]),
}


@pytest.fixture(scope="session")
def backends() -> dict[str, Backend]:
    """Backends made so far: each store's bucket is created once, only if one of its cells runs."""
    return {}


@pytest.fixture
def cell(request: pytest.FixtureRequest, backends: dict[str, Backend], tmp_path: Path) -> Iterator[Cell]:
    spec: Spec = request.node.callspec.params["spec"]

    def store(name: str) -> Backend:
        if name not in backends:
            backends[name] = MAKERS[name](request)
        return backends[name]

    made = Cell(spec.row.op, store(spec.row.backend.name), tmp_path, store)
    try:
        yield made
    finally:
        made.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    spec = getattr(item, "callspec", None) and item.callspec.params.get("spec")
    if isinstance(spec, Spec):
        if call.excinfo is None:
            detail = ""
        elif report.skipped and isinstance(report.longrepr, tuple):
            detail = report.longrepr[2].removeprefix("Skipped: ")
        else:
            detail = str(call.excinfo.value) or call.excinfo.typename
        item.config.stash.setdefault(RESULTS, Results()).record(spec, report, detail)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS, None)
    if results is None:
        return
    terminalreporter.section("Ferry fault matrix: ferry cp through a fault-injecting proxy")
    for line in render(results):
        terminalreporter.write_line(line)
