"""The benchmark suite's one table: a row per workload and tool, printed, written to
bench/RESULTS.md with the machine's description, and plotted (throughput per tool per workload)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import Contender, MiB


@dataclass
class Result:
    workload: str
    tool: str
    seconds: float | None  # median wall time; None when the tool failed
    rate: float | None  # MiB/s or objects/s, by ``unit``
    unit: str
    peak_rss_mib: float | None
    cpu_s: float | None  # median user + system seconds of the whole process
    runs: int
    ceiling: bool = False  # what the server or link carries, not a tool
    note: str = ""
    ratio: float | None = None  # Ferry's rate / this tool's rate (above 1: Ferry is faster)


def from_contenders(workload: str, contenders: Sequence[Contender], amount: float, unit: str) -> list[Result]:
    """Rows for one workload; ``amount`` is MiB or objects per run. The first contender is Ferry
    at its defaults, the one every ratio is taken against."""
    rows = []
    for c in contenders:
        if not c.samples:
            rows.append(Result(workload, c.name, None, None, unit, None, None, 0, c.ceiling, f"failed: {c.failure}"))
            continue
        secs = statistics.median(s.seconds for s in c.samples)
        timed = "the call only, start-up excluded" if c.reports_own_time and not c.ceiling else ""
        rows.append(
            Result(
                workload,
                c.name,
                secs,
                amount / secs,
                unit,
                max(s.peak_rss for s in c.samples) / MiB,
                statistics.median(s.cpu for s in c.samples),
                len(c.samples),
                c.ceiling,
                timed,
            )
        )
    base = rows[0].rate
    for row in rows:
        if base and row.rate:
            row.ratio = base / row.rate
    return rows


def _cells(r: Result) -> list[str]:
    if r.seconds is None:
        return [r.workload, r.tool, "-", "-", "-", "-", "-", r.note]
    ratio = "" if r.ceiling or r.ratio is None else f"{r.ratio:.2f}x"
    return [
        r.workload,
        r.tool + (" [ceiling]" if r.ceiling else ""),
        f"{r.seconds:.2f}",
        f"{r.rate:.0f} {r.unit}",
        ratio,
        f"{r.peak_rss_mib:.0f}",
        f"{r.cpu_s:.1f}",
        r.note,
    ]


HEADER = ["workload", "tool", "median s", "rate", "Ferry is", "peak RSS MiB", "CPU s", "note"]


def print_results(rows: Sequence[Result]) -> None:
    table = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    print()
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print("(medians of alternated runs; 'Ferry is' = Ferry's rate at defaults / the tool's; [ceiling]: not a tool)")


def report(rows: Sequence[Result], results_json: str | None, table: bool = True) -> None:
    """A workload's ending: its table, and its rows as JSON for the suite when it asked."""
    if table:
        print_results(rows)
    if results_json:
        with open(results_json, "w") as f:
            json.dump([r.__dict__ for r in rows], f)


def machine() -> str:
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem_gib = int(f.readline().split()[1]) / 2**20
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.1f} GiB, Linux {platform.release()}, Python {python}"


def write_markdown(rows: Sequence[Result], path: str, preamble: str, commit: str) -> None:
    lines = [
        "# Benchmark results (`make bench`)",
        "",
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {commit or 'an unknown commit'}. Machine: {machine()}.",
        "",
        preamble.strip(),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |" for r in rows]
    lines += ["", "![throughput per tool per workload](results.png)", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot(rows: Sequence[Result], path: str) -> None:
    """One horizontal bar chart per workload: each tool's rate, Ferry's bars coloured apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r.workload for r in rows))
    heights = [len([r for r in rows if r.workload == w]) for w in workloads]
    fig, axes = plt.subplots(len(workloads), 1, figsize=(10, 0.32 * sum(heights) + 1.2 * len(workloads)), squeeze=False)
    fig.subplots_adjust(hspace=0.6)
    for ax, workload in zip(axes[:, 0], workloads, strict=True):
        own = [r for r in rows if r.workload == workload]
        names = [r.tool + (" [ceiling]" if r.ceiling else "") for r in own]
        rates = [r.rate or 0 for r in own]
        colours = ["#999999" if r.ceiling else "#d95f02" if r.tool.startswith("ferry") else "#1b9e77" for r in own]
        ax.barh(names, rates, color=colours)
        ax.invert_yaxis()
        ax.set_title(workload, fontsize=9, loc="left")
        ax.set_xlabel(own[0].unit, fontsize=8)
        ax.tick_params(labelsize=7)
        for y, r in enumerate(own):
            ax.text(r.rate or 0, y, " failed" if r.rate is None else f" {r.rate:.0f}", va="center", fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
