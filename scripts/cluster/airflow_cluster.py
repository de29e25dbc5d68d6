"""Airflow's own processes for the demo: one environment shared by all, then the api-server,
scheduler, dag-processor, triggerer and two Celery workers, each in its own process group.

Nothing leaves ``home`` or binds anything but 127.0.0.1: log serving is off in every process
(the api-server reads the task logs from the shared ``home`` directly; two workers serving
logs would fight over port 8793), and each worker gets its own PID file and Celery node name.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from scripts.cluster.worker_name import ENV as WORKER_NAME_ENV
from tests.servers.process import ServerProcess, start_server

WORKERS = ("ferry-worker-a", "ferry-worker-b")
# Two task slots per worker and 8 shards: no worker can hold every shard, and on two cores four
# tasks at once is already plenty.
WORKER_CONCURRENCY = 2
READY_LINE = " ready."  # what a Celery worker logs once it consumes from the queue


@dataclass
class Cluster:
    home: str
    env: dict[str, str]
    api_url: str = ""
    procs: list[ServerProcess] = field(default_factory=list)
    workers: dict[str, ServerProcess] = field(default_factory=dict)


def airflow_env(repo: str, home: str, database_url: str, redis_port: int, extra: Mapping[str, str]) -> dict[str, str]:
    """Settings every Airflow process of the cluster shares (the api-server's URL is added once
    its port is known)."""
    # The driver stays named: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg (v3).
    result_backend = f"db+{database_url}"
    return {
        **os.environ,
        **extra,
        "AIRFLOW_HOME": home,
        "TMPDIR": os.path.join(home, "tmp"),  # Airflow's and Celery's temporary files stay in .cluster
        "PYTHONPATH": repo,  # hostname_callable lives in scripts/cluster
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(repo, "examples", "dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scripts.cluster.worker_name.worker_name",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # a local demo: the REST API without login
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        # Every process must sign and check the same JWTs (workers call the execution API with them).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }


def airflow_bin() -> str:
    return os.path.join(os.path.dirname(sys.executable), "airflow")


def start_api_server(cluster: Cluster) -> None:
    """The REST API and the execution API the workers' tasks report to; the processes started
    after it are told its URL."""

    def argv(ports: list[int]) -> list[str]:
        return [airflow_bin(), "api-server", "--host", "127.0.0.1", "--port", str(ports[0]), "--workers", "1"]

    proc, ports = start_server(
        "api-server",
        os.path.join(cluster.home, "api-server.log"),
        1,
        argv,
        lambda ports: f"http://127.0.0.1:{ports[0]}/api/v2/monitor/health",
        env=cluster.env,
        cwd=cluster.home,
        timeout=180,  # it imports all of Airflow and its providers first: slow on two busy cores
    )
    cluster.procs.append(proc)
    cluster.api_url = f"http://127.0.0.1:{ports[0]}"
    cluster.env["AIRFLOW__API__BASE_URL"] = cluster.api_url
    cluster.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{cluster.api_url}/execution/"


def start_component(cluster: Cluster, name: str, *args: str, env: Mapping[str, str] | None = None) -> ServerProcess:
    """An Airflow process that serves no port of ours: started in its own group, logging to
    ``<home>/<name>.log``."""
    proc = ServerProcess(
        name,
        [airflow_bin(), *args],
        os.path.join(cluster.home, f"{name}.log"),
        env={**cluster.env, **(env or {})},
        cwd=cluster.home,
    )
    cluster.procs.append(proc)
    return proc


def start_services(cluster: Cluster) -> None:
    """Scheduler, dag-processor and triggerer, then the two workers, each under its own name."""
    start_component(cluster, "scheduler", "scheduler", "--skip-serve-logs")
    start_component(cluster, "dag-processor", "dag-processor")
    start_component(cluster, "triggerer", "triggerer", "--skip-serve-logs")
    for name in WORKERS:
        cluster.workers[name] = start_component(
            cluster,
            name,
            "celery",
            "worker",
            "--celery-hostname", f"{name}@127.0.0.1",  # Celery's node name: two on one host must differ
            "--concurrency", str(WORKER_CONCURRENCY),
            "--pid", os.path.join(cluster.home, f"{name}.pid"),  # the default PID file is shared
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
            env={WORKER_NAME_ENV: name},
        )  # fmt: skip


def wait_for_workers(cluster: Cluster, timeout: float = 240) -> None:
    """Both workers consume from the queue before the run starts, so neither gets a head start."""
    deadline = time.monotonic() + timeout
    waiting = dict(cluster.workers)
    while waiting and time.monotonic() < deadline:
        for name, proc in list(waiting.items()):
            if proc.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.proc.returncode}: {proc.tail()}")
            if READY_LINE in proc.tail(start=0, n=1 << 20):
                del waiting[name]
        time.sleep(1)
    if waiting:
        raise RuntimeError(f"not ready within {timeout}s: {', '.join(waiting)}")


def stop_all(cluster: Cluster) -> None:
    """Workers first (no task is left half-run by a vanished API), then the rest, newest first."""
    for proc in reversed(cluster.procs):
        proc.stop(grace=30)
