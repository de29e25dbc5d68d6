"""Redis (Celery's broker) and PostgreSQL (Airflow's metadata database, Celery's result backend),
private instances on reserved ports of 127.0.0.1 with their data under the given folder.

PostgreSQL rather than SQLite: Airflow 3.3 does not refuse SQLite with the CeleryExecutor, but
its own docs keep SQLite for development with one process writing, and here six processes
(api-server, scheduler, dag-processor, triggerer, the Celery result backend of two workers)
write at once. initdb and postgres refuse to run as root, so they run as Debian's ``postgres``
user (setpriv execs, so the PID we hold is the postmaster's own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess

from tests.servers.process import ServerProcess, start_server

DB_USER = "airflow"
DB_NAME = "airflow"
OS_USER = "postgres"  # created by Debian's postgresql package


def start_redis(redis_server: str, workdir: str) -> tuple[ServerProcess, int]:
    os.makedirs(workdir, exist_ok=True)

    def argv(ports: list[int]) -> list[str]:
        return [
            redis_server,
            "--port", str(ports[0]),
            "--bind", "127.0.0.1",
            "--dir", workdir,
            "--save", "",  # a broker for one run: nothing to persist
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip

    proc, ports = start_server("redis", os.path.join(workdir, "redis.log"), 1, argv, lambda ports: None, cwd=workdir)
    return proc, ports[0]


def as_postgres_user(argv: list[str]) -> list[str]:
    """As ``postgres`` when we are root (PostgreSQL refuses root); as ourselves otherwise."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "--", *argv]


def start_postgres(bindir: str, workdir: str) -> tuple[ServerProcess, str]:
    """A fresh cluster in ``workdir``/data; returns the server and the SQLAlchemy URL of its
    ``airflow`` database (trust authentication: it listens on 127.0.0.1 only, for one run)."""
    data = os.path.join(workdir, "data")
    os.makedirs(data, mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(workdir, OS_USER, OS_USER)
        shutil.chown(data, OS_USER, OS_USER)
    log_path = os.path.join(workdir, "postgres.log")
    with open(log_path, "ab") as log:
        subprocess.run(
            as_postgres_user(
                [f"{bindir}/initdb", "-D", data, "-U", DB_USER, "--auth=trust", "--no-locale", "-E", "UTF8"]
            ),
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "TMPDIR": workdir},
        )

    def argv(ports: list[int]) -> list[str]:
        return as_postgres_user(
            [
                f"{bindir}/postgres",
                "-D", data,
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"port={ports[0]}",
                "-c", "unix_socket_directories=",  # no socket in /var/run/postgresql or /tmp
                "-c", "max_connections=200",  # every Airflow process keeps a pool
                "-c", "fsync=off",  # a database for one run: durability buys nothing
                "-c", "synchronous_commit=off",
            ]
        )  # fmt: skip

    proc, ports = start_server("postgres", log_path, 1, argv, lambda ports: None, cwd=workdir, timeout=60)
    url = f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{ports[0]}"
    create_database(ports[0])
    return proc, f"{url}/{DB_NAME}"


def create_database(port: int) -> None:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=port, user=DB_USER, dbname="postgres")
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        conn.close()


def stop_postgres(proc: ServerProcess) -> None:
    """Fast shutdown (SIGINT: sessions are ended, not waited for), then the usual stop by group."""
    if proc.proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.proc.wait(20)
    proc.stop(grace=5)
