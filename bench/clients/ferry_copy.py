"""Child process: one Ferry copy between object stores, timed around the engine call only.

    python -m bench.clients.ferry_copy SRC DST PARALLELISM [--src-conn ID --dst-conn ID]
                                       [--part-size BYTES] [--threshold BYTES] --state-dir DIR

Without connection ids both hooks are bare stores configured from AWS_* (one store: the copy is
server-side); with them, Airflow connections (AIRFLOW_CONN_*), as ``ferry cp --src-conn/--dst-conn``
resolves them. ``--src-env/--dst-env VAR`` instead read a connection's JSON from the variable VAR
into a bare S3 store (the same client set-up, without importing Airflow): the engine's own memory.
Prints the seconds, the RSS before the call, the CPU seconds of the call and the
manifest row's description and bytes_transferred.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from types import SimpleNamespace

from bench.common import vm_hwm


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def bare_s3(variable: str, parallelism: int) -> object:
    """A bare S3 store configured by the connection JSON in ``variable``, Airflow not loaded."""
    from ferry_provider.hooks.s3_store import S3Store

    conn = json.loads(os.environ[variable])
    fields = SimpleNamespace(
        host=conn.get("host"), login=conn["login"], password=conn["password"], extra_dejson=conn.get("extra", {})
    )

    class Configured(S3Store):
        def connection(self) -> SimpleNamespace:
            return fields

    return Configured(max_connections=parallelism)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("parallelism", type=int)
    parser.add_argument("--src-conn", default=None)
    parser.add_argument("--dst-conn", default=None)
    parser.add_argument("--src-env", default=None)
    parser.add_argument("--dst-env", default=None)
    parser.add_argument("--part-size", type=int, default=None)
    parser.add_argument("--threshold", type=int, default=None)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--expect", choices=["server-side", "pipeline"], required=True)
    args = parser.parse_args()

    from ferry_provider.hooks.factory import store_for
    from ferry_provider.transfer.copy import CopyOptions, copy

    p = args.parallelism
    if args.src_env and args.dst_env:
        src_hook, dst_hook = bare_s3(args.src_env, p), bare_s3(args.dst_env, p)
    else:
        src_hook = store_for(args.source, args.src_conn, max_connections=p)
        dst_hook = store_for(args.destination, args.dst_conn, max_connections=p)
    # Client set-up (and the connections' lookup), outside the timed part as for boto3's client.
    src_hook.head(args.source)
    next(iter(dst_hook.list(args.destination.rsplit("/", 1)[0] + "/", page_size=1)), None)
    options = CopyOptions(
        parallelism=p,
        part_size=args.part_size,
        multipart_copy_threshold=args.threshold,
        skip_identical=False,
        state_dir=args.state_dir,
    )
    baseline = vm_hwm()
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    row = copy(src_hook, dst_hook, args.source, args.destination, options)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu0
    assert row.result == "OK" and row.description.startswith(args.expect), row
    report = {
        "seconds": seconds,
        "baseline_rss": baseline,
        "cpu": cpu,
        "description": row.description,
        "bytes_transferred": row.bytes_transferred,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
