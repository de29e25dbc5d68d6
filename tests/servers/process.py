"""Start a server process, wait until it answers, stop it by its PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence


def free_port_pair(low: int = 20000, high: int = 29999, offset: int = 10000) -> int:
    """A port P such that P and P + ``offset`` are both free (SeaweedFS puts gRPC at +10000).

    Kernel-chosen ephemeral ports are often above 55535, which would push the gRPC port past
    65535, so ports come from a fixed low range, probed by binding.
    """
    start = low + (os.getpid() * 7919 + time.monotonic_ns()) % (high - low)
    for i in range(high - low):
        port = low + (start - low + i) % (high - low)
        if _free(port) and _free(port + offset):
            return port
    raise RuntimeError(f"no free port pair in {low}-{high}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ServerProcess:
    """One child process; ``stop()`` signals its process group by PID and waits."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: str, env: dict[str, str] | None = None, cwd: str | None = None
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own group: stop() reaches helpers it spawns
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Poll ``url`` until any HTTP answer arrives (an auth error counts as up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.tail()}")
            try:
                urllib.request.urlopen(url, timeout=2).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer at {url} within {timeout}s; log: {self.tail()}")

    def tail(self, n: int = 2000) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace")

    def stop(self, grace: float = 20.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
