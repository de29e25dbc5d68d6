"""Start a server process on ports nobody else can take, wait until it serves, stop it by its PID.

Ports are a race: a port found free can be taken before the server binds it, by another start
(a thread, or another test run on the machine) or by any outgoing connection the kernel gives
that port as its ephemeral source. So ports come from outside the kernel's ephemeral range and
stay reserved (bound, not listening) until the server listens on every one of them; a start
that still dies early, or logs a bind failure, is retried on new ports.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

START_ATTEMPTS = 3
PORT_FLOOR = 20000  # below this live well-known development ports (8080, 9000, ...)
BIND_FAILURE = "address already in use"  # Go's and Python's wording alike, matched case-insensitively
LISTEN = "0A"  # TCP state in /proc/net/tcp


class StartFailed(Exception):
    """The server died or could not bind while starting: worth another try on other ports."""


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the source ports of outgoing connections (inclusive)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def candidate_ports() -> range:
    """Ports outside the ephemeral range, where only deliberate binds compete."""
    low, high = ephemeral_range()
    if low - PORT_FLOOR >= 2000:
        return range(PORT_FLOOR, low)
    return range(max(high + 1, PORT_FLOOR), 65536)


class PortReservation:
    """``count`` ports, each held by a socket bound to 127.0.0.1 but not listening.

    While held, the kernel gives none of them to an outgoing connection, and a probe by bind in
    any process finds them taken; the server can still bind and listen on them because both its
    socket and the holder set SO_REUSEADDR and only the server listens (Linux's rule). Release
    once the server listens: from then on its own listener keeps the port.
    """

    def __init__(self, count: int) -> None:
        self._held: list[socket.socket] = []
        candidates = candidate_ports()
        start = random.randrange(len(candidates))  # spreads concurrent starts apart; a clash just probes on
        for i in range(len(candidates)):
            if len(self._held) == count:
                break
            held = _hold(candidates[(start + i) % len(candidates)])
            if held is not None:
                self._held.append(held)
        if len(self._held) < count:
            self.release()
            raise RuntimeError(f"fewer than {count} free ports in {candidates.start}-{candidates.stop - 1}")
        self.ports = [s.getsockname()[1] for s in self._held]

    def release(self) -> None:
        for s in self._held:
            s.close()
        self._held = []


def _hold(port: int) -> socket.socket | None:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))  # without SO_REUSEADDR: fails on any other holder, listener or TIME_WAIT
    except OSError:
        s.close()
        return None
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # now let the server bind beside it
    return s


def free_port() -> int:
    """A port nobody listens on right now (for a client that must find nothing there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (IPv4 and IPv6), from /proc: its socket inodes
    matched to the LISTEN entries, so someone else's listener on the same port does not count."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == LISTEN and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def remove_stale_socket(path: str) -> None:
    """Unlink the unix socket ``path`` if nobody listens on it; a live one belongs to someone else."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
        except ConnectionRefusedError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        except OSError:
            pass


def interrupt_on_sigterm() -> None:
    """Let SIGTERM unwind like Ctrl-C, so ``finally`` blocks and fixtures stop servers and clean up."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, interrupt)


class ServerProcess:
    """One child process; ``stop()`` signals its process group by PID, waits, and removes the
    ``leftovers`` (unix sockets the server leaves behind) that nobody listens on any more."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        leftovers: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.leftovers = list(leftovers)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_start = self._log.tell()  # this start's output, when a log holds several attempts
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own group: stop() reaches helpers it spawns
        )
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, url: str | None, ports: Sequence[int] = (), timeout: float = 60.0) -> None:
        """Wait until this process listens on every port in ``ports`` and ``url`` answers (an HTTP
        error counts; no ``url``: a server that does not speak HTTP, listening is enough). Raise
        StartFailed when it exits or logs a bind failure first; on timeout stop it and raise
        RuntimeError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartFailed(f"exited with {self.proc.returncode}: {self.tail(start=self._log_start)}")
            output = self.tail(start=self._log_start)
            if BIND_FAILURE in output.lower():
                raise StartFailed(f"could not bind: {output}")
            if set(ports) <= listening_ports(self.pid) and (url is None or _answers(url)):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer at {url} within {timeout}s; log: {self.tail()}")

    def tail(self, n: int = 2000, start: int = 0) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(start, f.tell() - n))
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
        for path in self.leftovers:
            remove_stale_socket(path)
        self._log.close()
        with _LIVE_LOCK:
            _LIVE.discard(self)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def start_server(
    name: str,
    log_path: str,
    port_count: int,
    argv_for: Callable[[list[int]], Sequence[str]],
    url_for: Callable[[list[int]], str | None],
    *,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    leftovers_for: Callable[[list[int]], Sequence[str]] = lambda ports: (),
    timeout: float = 60.0,
    attempts: int = START_ATTEMPTS,
) -> tuple[ServerProcess, list[int]]:
    """Start a server on ``port_count`` reserved ports; return it once it serves on all of them.

    ``argv_for``, ``url_for`` and ``leftovers_for`` map the ports to the command, the URL that
    answers when it is up (``None`` for a server that does not speak HTTP), and the unix sockets
    to sweep at stop. A start that dies early or
    logs a bind failure is retried on new ports, ``attempts`` times in all.
    """
    failures = []
    for attempt in range(1, attempts + 1):
        reservation = PortReservation(port_count)
        ports = reservation.ports
        try:
            with open(log_path, "ab") as log:
                log.write(f"--- {name}: start attempt {attempt} of {attempts} on ports {ports}\n".encode())
            proc = ServerProcess(name, argv_for(ports), log_path, env=env, cwd=cwd, leftovers=leftovers_for(ports))
            try:
                proc.wait_ready(url_for(ports), ports, timeout)
            except StartFailed as exc:
                proc.stop(grace=1)
                failures.append(f"attempt {attempt} on ports {ports}: {str(exc)[-600:]}")
                continue
            return proc, ports
        finally:
            reservation.release()
    raise RuntimeError(f"{name} failed to start {attempts} times; log: {log_path}\n" + "\n".join(failures))


# Servers still running when the interpreter exits (a script that raised, an interrupted run
# whose teardown was skipped) are stopped, so no orphan keeps ports and leaves sockets behind.
_LIVE: set[ServerProcess] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for server in live:
        server.stop(grace=1)
