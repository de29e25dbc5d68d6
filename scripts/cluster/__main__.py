"""``make demo-cluster``: the sharded bulk DAG on Airflow's CeleryExecutor with two workers.

Starts (all on 127.0.0.1, all under ``.cluster/``) SeaweedFS, PostgreSQL, Redis, the Airflow
api-server, scheduler, dag-processor, triggerer and two Celery workers; triggers
``examples/dags/ferry_bulk_demo.py`` through the REST API and follows it; then prints, from the
merged summary, which worker ran each shard, and fails unless the run succeeded, every object
arrived intact and both workers ran shards. Every process is stopped by its PID (process group)
on the way out, also on Ctrl-C or SIGTERM, and ``.cluster/`` is removed (FERRY_CLUSTER_KEEP=1
keeps it, logs and all, for a look after the run).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from scripts.cluster.airflow_cluster import (
    WORKERS,
    Cluster,
    airflow_bin,
    airflow_env,
    start_api_server,
    start_services,
    stop_all,
    wait_for_workers,
)
from scripts.cluster.databases import start_postgres, start_redis, stop_postgres
from scripts.cluster.debian import ensure_packages
from scripts.cluster.report import problems, shard_table
from scripts.cluster.rest import AirflowApi
from scripts.same_tree import same_tree
from tests.servers.process import interrupt_on_sigterm

HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_DIR = os.path.join(HERE, ".cluster")
DAG_ID = "ferry_bulk_demo"
BUCKET = "ferry-demo"
CONN_ID = "ferry_demo_s3"
RUN_TIMEOUT = 900.0


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.start:5.0f}s"


def main() -> int:
    interrupt_on_sigterm()  # SIGTERM unwinds like Ctrl-C: the finally below stops everything
    clock = Clock()
    redis_server, pg_bindir = ensure_packages()
    shutil.rmtree(CLUSTER_DIR, ignore_errors=True)
    home = os.path.join(CLUSTER_DIR, "airflow-home")
    work = os.path.join(CLUSTER_DIR, "work")
    os.makedirs(os.path.join(home, "tmp"))
    os.makedirs(work)
    stops: list[Callable[[], None]] = []
    cluster: Cluster | None = None
    try:
        from tests.servers.seaweedfs import start_seaweedfs

        print(f"{clock} starting SeaweedFS, PostgreSQL and Redis on 127.0.0.1 ...", flush=True)
        weed, endpoint = start_seaweedfs(os.path.join(CLUSTER_DIR, "seaweedfs"))
        stops.append(lambda: weed.stop(grace=5))
        postgres, database_url = start_postgres(pg_bindir, os.path.join(CLUSTER_DIR, "postgres"))
        stops.append(lambda: stop_postgres(postgres))
        redis, redis_port = start_redis(redis_server, os.path.join(CLUSTER_DIR, "redis"))
        stops.append(lambda: redis.stop(grace=5))
        create_bucket(endpoint.url, endpoint.access_key, endpoint.secret_key)
        extra = {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": endpoint.connection_json(),
            "AWS_EC2_METADATA_DISABLED": "true",
            "FERRY_DEMO_CONN": CONN_ID,
            "FERRY_DEMO_BUCKET": BUCKET,
            "FERRY_DEMO_DIR": work,
            "FERRY_BULK_OBJECTS": os.environ.get("FERRY_BULK_OBJECTS", "300"),
        }
        cluster = Cluster(home, airflow_env(HERE, home, database_url, redis_port, extra))
        print(f"{clock} preparing the metadata database (airflow db migrate on PostgreSQL) ...", flush=True)
        with open(os.path.join(home, "db-migrate.log"), "wb") as log:
            subprocess.run([airflow_bin(), "db", "migrate"], env=cluster.env, stdout=log, stderr=log, check=True)
        print(f"{clock} starting the api-server ...", flush=True)
        start_api_server(cluster)
        print(f"{clock} starting scheduler, dag-processor, triggerer and workers {', '.join(WORKERS)} ...", flush=True)
        start_services(cluster)
        api = AirflowApi(cluster.api_url)
        wait_until(lambda: api.dag_parsed(DAG_ID), 300, f"{DAG_ID} parsed by the dag-processor")
        wait_for_workers(cluster)
        print(f"{clock} both workers ready; {DAG_ID} parsed; API at {cluster.api_url}", flush=True)
        return run_and_report(api, cluster, work, clock)
    finally:
        if cluster is not None:
            stop_all(cluster)
        for stop in reversed(stops):
            stop()
        print(f"{clock} stopped every process started (by PID, process groups)", flush=True)
        if os.environ.get("FERRY_CLUSTER_KEEP") == "1":
            print(f"kept {CLUSTER_DIR} (FERRY_CLUSTER_KEEP=1)")
        else:
            shutil.rmtree(CLUSTER_DIR, ignore_errors=True)


def create_bucket(url: str, access_key: str, secret_key: str) -> None:
    """Made with boto3 directly: importing Airflow here would create ~/airflow."""
    import boto3

    boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name="us-east-1"
    ).create_bucket(Bucket=BUCKET)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(2)


def run_and_report(api: AirflowApi, cluster: Cluster, work: str, clock: Clock) -> int:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    run_id = f"cluster__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    api.trigger(DAG_ID, run_id, f"{day}T00:00:00Z")
    print(f"{clock} triggered {DAG_ID} run {run_id} (logical date {day})", flush=True)
    state = follow(api, run_id, clock)
    instances = api.task_instances(DAG_ID, run_id)
    if state != "success":
        print(f"the run ended {state}", file=sys.stderr)
        show_failures(cluster.home, run_id, instances)
        return 1
    merged = api.xcom(DAG_ID, run_id, "merge")
    hostnames = {ti["map_index"]: ti["hostname"] for ti in instances if ti["task_id"] == "download"}
    print(f"\n{merged['objects']} objects in {merged['shards']} shards; which worker ran each shard:\n")
    print(shard_table(merged["by_shard"]))
    intact = same_tree(os.path.join(work, "bulk", "source", day), os.path.join(work, "bulk", "downloaded", day))
    print(f"\ndownloaded folder identical to the generated one: {intact}")
    found = problems(merged["by_shard"], hostnames, WORKERS)
    for problem in found:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 0 if intact and not found else 1


def follow(api: AirflowApi, run_id: str, clock: Clock) -> str:
    """Poll the run until it ends, printing the task states whenever they change."""
    deadline = time.monotonic() + RUN_TIMEOUT
    shown = ""
    while time.monotonic() < deadline:
        state = api.run_state(DAG_ID, run_id)
        states = Counter(f"{ti['task_id']} {ti['state'] or 'none'}" for ti in api.task_instances(DAG_ID, run_id))
        line = ", ".join(f"{n} {what}" if n > 1 else what for what, n in sorted(states.items()))
        if line != shown:
            print(f"{clock}   {line}", flush=True)
            shown = line
        if state in ("success", "failed"):
            return state
        time.sleep(3)
    raise RuntimeError(f"the run did not finish within {RUN_TIMEOUT:.0f}s")


def show_failures(home: str, run_id: str, instances: list[dict]) -> None:
    for ti in instances:
        if ti["state"] not in ("success", "skipped"):
            print(f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} on {ti['hostname']}", file=sys.stderr)
    run_logs = os.path.join(home, "logs", f"dag_id={DAG_ID}", f"run_id={run_id}")
    for path in sorted(glob.glob(os.path.join(run_logs, "**", "*.log"), recursive=True)):
        with open(path, errors="replace") as f:
            text = f.read()
        if '"level":"error"' in text or "ERROR" in text:
            print(f"--- {os.path.relpath(path, home)} (last lines)\n{text[-3000:]}", file=sys.stderr)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
