"""The clients every single-object workload runs: Ferry at its defaults first (the baseline of
every ratio), then each peer at its documented defaults and at flags tuned for the workload.

All are timed as whole processes, start-up included, as a user (or an Airflow task running a
command) meets them. ``{RUN}`` in an upload's key makes every run write a new object.
"""

from __future__ import annotations

import os
import sys

from bench.common import Contender, rclone_remote, s3_env
from tests.servers.seaweedfs import S3Endpoint

PY = sys.executable
BIN = os.path.dirname(PY)
FERRY, S5CMD, RCLONE = (os.path.join(BIN, name) for name in ("ferry", "s5cmd", "rclone"))


def s3_downloaders(
    endpoint_url: str, endpoint: S3Endpoint, bucket: str, key: str, dest: str, tuned: dict[str, list[str]]
) -> list[Contender]:
    """Ferry, s5cmd, rclone and boto3 fetching s3://bucket/key to ``dest``; ``tuned`` maps a tool
    to its best flags for the workload (a tool missing there gets only its defaults row)."""
    env = {**s3_env(endpoint), "AWS_ENDPOINT_URL": endpoint_url}
    url = f"s3://{bucket}/{key}"
    rows = {
        "ferry cp": [FERRY, "cp", url, dest],
        "s5cmd cp": [S5CMD, "--endpoint-url", endpoint_url, "cp", url, dest],
        "rclone copyto": [RCLONE, "copyto", f"bench:{bucket}/{key}", dest],
        "boto3 download_file": [PY, "-m", "bench.clients.boto3_get", endpoint_url, bucket, key, dest],
    }
    return _with_tuned(rows, tuned, env, rclone_remote("bench", endpoint, endpoint_url))


def s3_uploaders(
    endpoint_url: str, endpoint: S3Endpoint, source: str, bucket: str, tuned: dict[str, list[str]]
) -> list[Contender]:
    """The same tools putting ``source`` to a new key under ``up/`` every run."""
    env = {**s3_env(endpoint), "AWS_ENDPOINT_URL": endpoint_url}
    key = "up/{RUN}.bin"
    rows = {
        "ferry cp": [FERRY, "cp", source, f"s3://{bucket}/{key}"],
        "s5cmd cp": [S5CMD, "--endpoint-url", endpoint_url, "cp", source, f"s3://{bucket}/{key}"],
        "rclone copyto": [RCLONE, "--s3-no-check-bucket", "copyto", source, f"bench:{bucket}/{key}"],
        "boto3 upload_file": [PY, "-m", "bench.clients.boto3_put", endpoint_url, source, bucket, key],
    }
    return _with_tuned(rows, tuned, env, rclone_remote("bench", endpoint, endpoint_url))


def _with_tuned(
    rows: dict[str, list[str]], tuned: dict[str, list[str]], env: dict[str, str], rclone: dict[str, str]
) -> list[Contender]:
    out = []
    for name, argv in rows.items():
        child_env = {**env, **rclone} if name.startswith("rclone") else env
        out.append(Contender(name if name.startswith("ferry") else f"{name} (defaults)", argv, env=child_env))
        if name in tuned:
            flags = tuned[name]
            # flags go after the subcommand (s5cmd/rclone/ferry) or at the end (the boto3 scripts)
            at = 4 if name.startswith("s5cmd") else 2 if name.startswith(("ferry", "rclone")) else len(argv)
            out.append(Contender(f"{name} {' '.join(flags)}", [*argv[:at], *flags, *argv[at:]], env=child_env))
    return out
