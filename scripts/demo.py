"""The README's main job: the example DAG moving real objects through a real local object store.

Starts SeaweedFS on 127.0.0.1 under ``.demo/``, gives Airflow a metadata DB and a connection for
it, runs ``examples/dags/ferry_demo.py`` with ``airflow dags test`` (generate -> composite
upload -> deferrable checksum sensor -> verified ranged download beside a server-side publish
copy), checks the downloaded bytes,
and prints the manifest as a table; then ``examples/dags/ferry_bulk_demo.py`` (a few hundred
objects: bulk upload -> validated sensor -> plan -> mapped shards -> merged manifest), printing
the merged manifest's summary. SeaweedFS is stopped by its PID on the way out, also when the
demo is interrupted (Ctrl-C or SIGTERM); nothing is left in /tmp.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter

from ferry_provider.transfer.manifest_file import parse_rows
from scripts.same_tree import same_tree
from tests.servers.process import interrupt_on_sigterm

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DIR = os.path.join(HERE, ".demo")
BUCKET = "ferry-demo"
DEFERRAL_LINE = "running trigger in line"  # what `airflow dags test` logs when a task defers


def main() -> int:
    interrupt_on_sigterm()  # a killed demo still stops SeaweedFS and sweeps its sockets (the finally below)
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    os.makedirs(DEMO_DIR)
    work = os.path.join(DEMO_DIR, "work")
    env = {
        "AIRFLOW_HOME": os.path.join(DEMO_DIR, "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(HERE, "examples", "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{DEMO_DIR}/airflow-home/airflow.db",
        "AWS_EC2_METADATA_DISABLED": "true",
        "FERRY_DEMO_CONN": "ferry_demo_s3",
        "FERRY_DEMO_BUCKET": BUCKET,
        "FERRY_DEMO_DIR": work,
        "FERRY_DEMO_SIZE_MIB": os.environ.get("FERRY_DEMO_SIZE_MIB", "256"),
    }
    os.environ.update(env)
    os.makedirs(env["AIRFLOW_HOME"])

    from tests.servers.seaweedfs import start_seaweedfs

    print("starting SeaweedFS on 127.0.0.1 ...", flush=True)
    proc, endpoint = start_seaweedfs(os.path.join(DEMO_DIR, "seaweedfs"))
    try:
        os.environ["AIRFLOW_CONN_FERRY_DEMO_S3"] = endpoint.connection_json()
        from ferry_provider.hooks.s3 import FerryS3Hook

        FerryS3Hook("ferry_demo_s3").client.create_bucket(Bucket=BUCKET)
        airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
        print("preparing the Airflow metadata database ...", flush=True)
        subprocess.run([airflow, "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
        print(f"running the ferry_demo DAG ({env['FERRY_DEMO_SIZE_MIB']} MiB) with airflow dags test ...", flush=True)
        log_path = os.path.join(DEMO_DIR, "dag-run.log")
        producer = threading.Thread(target=publish_marker_once_deferred, args=(log_path,), daemon=True)
        with open(log_path, "w") as log:
            producer.start()
            run = subprocess.run([airflow, "dags", "test", "ferry_demo"], stdout=log, stderr=subprocess.STDOUT)
        show_deferral(log_path)
        if run.returncode != 0:
            print(f"the DAG run failed; its log: {log_path}", file=sys.stderr)
            return 1
        same = filecmp.cmp(
            os.path.join(work, "payload.bin"), os.path.join(work, "downloaded", "payload.bin"), shallow=False
        )
        print_manifest(os.path.join(work, "manifest.csv"))
        print(f"\ndownloaded file identical to the original: {same}; DAG log: {log_path}")
        return 0 if same and run_bulk_demo(airflow, work) else 1
    finally:
        proc.stop(grace=5)
        print(f"stopped SeaweedFS (pid {proc.pid})")


def run_bulk_demo(airflow: str, work: str) -> bool:
    """The bulk DAG: a generated drop uploaded, validated by the sensor, planned into shards,
    downloaded by mapped tasks, manifests merged; prints the merged manifest as a summary."""
    print("\nrunning the ferry_bulk_demo DAG (a few hundred objects, sharded) with airflow dags test ...", flush=True)
    log_path = os.path.join(DEMO_DIR, "bulk-run.log")
    with open(log_path, "w") as log:
        run = subprocess.run([airflow, "dags", "test", "ferry_bulk_demo"], stdout=log, stderr=subprocess.STDOUT)
    if run.returncode != 0:
        print(f"the bulk DAG run failed; its log: {log_path}", file=sys.stderr)
        return False
    bulk = os.path.join(work, "bulk")
    (day,) = os.listdir(os.path.join(bulk, "source"))
    (run_dir,) = os.listdir(os.path.join(bulk, "runs"))
    with open(os.path.join(bulk, "runs", run_dir, "manifest.csv")) as f:
        rows = list(parse_rows(f.read()))
    shards = len(os.listdir(os.path.join(bulk, "runs", run_dir, "manifests")))
    same = same_tree(os.path.join(bulk, "source", day), os.path.join(bulk, "downloaded", day))
    print_bulk_summary(rows, shards)
    print(f"\ndownloaded folder identical to the generated one: {same}; DAG log: {log_path}")
    return same and all(r["result"] in ("OK", "skip") for r in rows)


def print_bulk_summary(rows: list[dict[str, str]], shards: int) -> None:
    by_result: dict[str, list[int]] = {}
    for row in rows:
        entry = by_result.setdefault(row["result"], [0, 0])
        entry[0] += 1
        entry[1] += int(row["bytes_transferred"] or 0)
    print(f"\nbulk manifest, merged from {shards} shard(s):")
    print(f"  {'result':<8}{'objects':>9}{'bytes':>14}")
    for result, (count, moved) in sorted(by_result.items()):
        print(f"  {result:<8}{count:>9}{moved:>14}")
    verified = Counter(row["description"].split(";")[0] for row in rows)
    for what, count in verified.most_common(3):
        print(f"  {count:>5} x {what}")


def publish_marker_once_deferred(log_path: str, timeout: float = 600) -> None:
    """Play the producer: once the sensor has handed over to its trigger (the DAG log says so),
    write the ``_SUCCESS`` marker beside the uploaded payload, which wakes the trigger."""
    from ferry_provider.hooks.s3 import FerryS3Hook

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            if DEFERRAL_LINE in f.read():
                break
        time.sleep(0.5)
    else:
        return
    time.sleep(3)  # let the trigger check once and find the marker missing, as the log will show
    hook = FerryS3Hook("ferry_demo_s3")
    for info in hook.list(f"s3://{BUCKET}/runs/"):
        if info.url.endswith("/payload.bin"):
            marker = info.url.rsplit("/", 1)[0] + "/_SUCCESS"
            hook.put(marker, b"")
            print(f"producer: wrote {marker}", flush=True)


def show_deferral(log_path: str) -> None:
    """The log lines that show the sensor deferring and its trigger waking up."""
    wanted = ("as DEFERRED", DEFERRAL_LINE, "marker", "Trigger completed", "object(s) valid")
    with open(log_path, errors="replace") as f:
        lines = [line.rstrip() for line in f if any(w in line for w in wanted)]
    print("\nthe deferrable sensor, from the DAG log:")
    for line in lines[:12]:
        print(f"  {line[:160]}")


def print_manifest(path: str) -> None:
    with open(path) as f:
        rows = list(parse_rows(f.read()))
    columns = ["result", "source", "destination", "source_size", "bytes_transferred", "crc32c", "description"]
    shown = [[row[c] for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in shown)) for i, c in enumerate(columns)]
    print("\nmanifest:")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in shown:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
