"""gcp-storage-emulator as a local GCS JSON API (see shared notes for its quirks)."""

from __future__ import annotations

import os
import sys

from tests.servers.process import ServerProcess, free_port


def start_gcs_emulator(workdir: str) -> tuple[ServerProcess, str]:
    """Start the emulator on 127.0.0.1; return it and its endpoint URL."""
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    argv = [exe, "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory"]
    proc = ServerProcess("gcp-storage-emulator", argv, os.path.join(workdir, "gcs.log"), cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/", timeout=60)
    return proc, url
