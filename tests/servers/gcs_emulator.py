"""gcp-storage-emulator as a local GCS JSON API (see shared notes for its quirks)."""

from __future__ import annotations

import os
import sys

from tests.servers.process import ServerProcess, start_server


def start_gcs_emulator(workdir: str) -> tuple[ServerProcess, str]:
    """Start the emulator on 127.0.0.1; return it and its endpoint URL."""
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    proc, (port,) = start_server(
        "gcp-storage-emulator",
        os.path.join(workdir, "gcs.log"),
        1,
        lambda ports: [exe, "start", "-H", "127.0.0.1", "--port", str(ports[0]), "--in-memory"],
        lambda ports: f"http://127.0.0.1:{ports[0]}/",
        cwd=workdir,
    )
    return proc, f"http://127.0.0.1:{port}"
