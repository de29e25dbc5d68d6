"""The README's main job: real objects through a real local object store (SeaweedFS).

Starts SeaweedFS on 127.0.0.1 under ``.demo/``, registers an Airflow connection for it through
the environment, writes an object with its CRC32C, and shows it with ``ferry stat``. The server
is stopped by its PID on the way out, whatever happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DIR = os.path.join(HERE, ".demo")


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    os.makedirs(DEMO_DIR)
    os.environ["AIRFLOW_HOME"] = os.path.join(DEMO_DIR, "airflow-home")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

    from tests.servers.seaweedfs import start_seaweedfs

    print("starting SeaweedFS on 127.0.0.1 ...", flush=True)
    proc, endpoint = start_seaweedfs(os.path.join(DEMO_DIR, "seaweedfs"))
    try:
        os.environ["AIRFLOW_CONN_FERRY_DEMO_S3"] = endpoint.connection_json()
        return run_demo()
    finally:
        proc.stop(grace=5)
        print(f"stopped SeaweedFS (pid {proc.pid})")


def run_demo() -> int:
    import google_crc32c

    from ferry_provider.hooks.s3 import FerryS3Hook

    hook = FerryS3Hook("ferry_demo_s3")
    hook.client.create_bucket(Bucket="ferry-demo")
    data = os.urandom(8 << 20)
    crc = f"{google_crc32c.value(data):08x}"
    with tempfile.NamedTemporaryFile(dir=DEMO_DIR) as f:
        f.write(data)
        f.flush()
        f.seek(0)
        hook.put("s3://ferry-demo/demo/object.bin", f, size=len(data), crc32c=crc)
    print(f"wrote s3://ferry-demo/demo/object.bin: {len(data)} bytes, crc32c {crc}")
    cmd = [
        sys.executable,
        "-m",
        "ferry_provider.cli",
        "stat",
        "s3://ferry-demo/demo/object.bin",
        "--conn",
        "ferry_demo_s3",
    ]
    print("$ ferry stat s3://ferry-demo/demo/object.bin --conn ferry_demo_s3", flush=True)
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
