"""The demo's verdict: which worker ran each shard, from the merged summary, as a table."""

from __future__ import annotations

from typing import Any


def shard_table(by_shard: list[dict[str, Any]]) -> str:
    """One line per shard (worker, objects, bytes, counts per result), then one per worker."""
    head = ("shard", "worker", "objects", "bytes", "OK", "skip", "error")
    lines = [
        (
            str(s["shard"]),
            str(s["worker"]),
            str(s["objects"]),
            str(s["bytes_transferred"]),
            *(str(s["counts"][k]) for k in ("OK", "skip", "error")),
        )
        for s in by_shard
    ]
    totals: dict[str, list[int]] = {}
    for s in by_shard:
        entry = totals.setdefault(str(s["worker"]), [0, 0, 0])
        entry[0] += 1
        entry[1] += s["objects"]
        entry[2] += s["bytes_transferred"]
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if i != 1 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True)))

    out = [fmt(head), *(fmt(row) for row in lines), ""]
    for worker, (n, objects, moved) in totals.items():
        out.append(f"{worker}: {n} shard(s), {objects} object(s), {moved} bytes")
    return "\n".join(out)


def problems(by_shard: list[dict[str, Any]], hostnames: dict[int, str], workers: tuple[str, ...]) -> list[str]:
    """What makes the run fail the demo: a failed object, a worker that Airflow's own record
    contradicts, or a worker that ran no shard."""
    found = []
    for s in by_shard:
        if s["counts"]["error"]:
            found.append(f"shard {s['shard']}: {s['counts']['error']} object(s) failed")
        recorded = hostnames.get(s["shard"])
        if recorded != s["worker"]:
            found.append(f"shard {s['shard']}: the summary says {s['worker']}, Airflow's task instance {recorded}")
    idle = [w for w in workers if w not in {s["worker"] for s in by_shard}]
    if idle:
        found.append(f"ran no shard: {', '.join(idle)}")
    return found
