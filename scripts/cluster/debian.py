"""The two servers the cluster needs from Debian: redis-server and PostgreSQL.

Installed with apt-get when missing (the demo's only step outside the checkout's .venv). Neither
package's own service is used: the demo runs private instances on reserved ports.
"""

from __future__ import annotations

import glob
import os
import shutil

from scripts.debian import apt_install

PACKAGES = ("redis-server", "postgresql")


def redis_server() -> str | None:
    return shutil.which("redis-server")


def postgres_bindir() -> str | None:
    """Debian keeps PostgreSQL's server programs (initdb, postgres) off PATH, per major version."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]), reverse=True)
    return os.path.dirname(found[0]) if found else None


def ensure_packages() -> tuple[str, str]:
    """(redis-server, PostgreSQL's bin folder), installing the packages first when one is missing."""
    redis, bindir = redis_server(), postgres_bindir()
    if redis and bindir:
        return redis, bindir
    apt_install(list(PACKAGES), "the cluster demo's broker and database")
    redis, bindir = redis_server(), postgres_bindir()
    if not (redis and bindir):
        raise SystemExit("apt-get installed the packages but redis-server or postgres is still missing")
    return redis, bindir
