"""Debian packages the demos and the benchmarks need outside the checkout's .venv."""

from __future__ import annotations

import os
import subprocess


def apt_install(packages: list[str], why: str) -> None:
    """Install ``packages`` with apt-get (root only; the package lists refreshed first, as a fresh
    machine may have none); SystemExit naming the command when not root."""
    command = f"apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0:
        raise SystemExit(f"{why} need {', '.join(packages)}: run `{command}` as root")
    print(f"installing {', '.join(packages)} with apt-get ...", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    subprocess.run(["apt-get", "update", "-qq"], check=True, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, **quiet)
