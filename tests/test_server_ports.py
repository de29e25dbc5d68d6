"""Server starts never collide on ports: reserved ports, outside the ephemeral range, retried starts."""

from __future__ import annotations

import errno
import os
import socket
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers.process import PortReservation, ephemeral_range, listening_ports, start_server
from tests.servers.seaweedfs import PORT_NAMES, start_seaweedfs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_concurrent_seaweedfs_starts_all_come_up(tmp_path) -> None:
    low, high = ephemeral_range()
    for round_ in range(3):
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(start_seaweedfs, str(tmp_path / f"round{round_}-{i}")) for i in range(2)]
        started = [f.result() for f in futures if f.exception() is None]
        try:
            assert [f.exception() for f in futures] == [None, None]
            ports = [listening_ports(proc.pid) for proc, _ in started]
            for (_, endpoint), own in zip(started, ports, strict=True):
                assert len(own) == len(PORT_NAMES) and int(endpoint.url.rsplit(":", 1)[1]) in own
                # An ephemeral port may be any outgoing connection's source: it must not be chosen.
                assert [p for p in own if low <= p <= high] == []
            assert not ports[0] & ports[1]
        finally:
            for proc, _ in started:
                proc.stop(grace=0.1)  # data is throwaway; SIGTERM takes weed 20-30 s


def test_reserved_ports_are_refused_to_others_but_not_to_their_server() -> None:
    reservation = PortReservation(2)
    first, second = reservation.ports
    try:
        for port in (first, second):
            with socket.socket() as other, pytest.raises(OSError) as taken:
                other.bind(("127.0.0.1", port))  # another process probing for a free port
            assert taken.value.errno == errno.EADDRINUSE
        server = socket.socket()  # the server the ports were reserved for binds as servers do
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", first))
        server.listen()
    finally:
        reservation.release()
    with server, socket.socket() as client:
        client.connect(("127.0.0.1", first))
    with socket.socket() as other:
        other.bind(("127.0.0.1", second))  # released and never used: free again


def squat(port: int) -> socket.socket:
    """Listen on ``port`` as another server would, taking it between reservation and use."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def http_server_argv(root: str, port: int) -> list[str]:
    return [sys.executable, "-m", "tests.servers.http_range_server", "--root", root, "--port", str(port)]


def gcs_emulator_argv(root: str, port: int) -> list[str]:
    """This one does not exit when it cannot bind: only its log says so."""
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    return [exe, "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory"]


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer: it serves
    except OSError:
        return False
    return True


@pytest.mark.parametrize("argv_of", [http_server_argv, gcs_emulator_argv])
def test_a_start_that_cannot_bind_is_retried_on_new_ports(tmp_path, argv_of) -> None:
    squatted: list[int] = []
    squatters: list[socket.socket] = []

    def argv(ports: list[int]) -> list[str]:
        if not squatted:  # the first attempt loses its port to someone else
            squatted.append(ports[0])
            squatters.append(squat(ports[0]))
        return argv_of(str(tmp_path), ports[0])

    log = str(tmp_path / "server.log")
    try:
        proc, (port,) = start_server("server", log, 1, argv, lambda p: f"http://127.0.0.1:{p[0]}/", cwd=REPO)
    finally:
        for s in squatters:
            s.close()
    try:
        assert port != squatted[0] and answers(f"http://127.0.0.1:{port}/")
    finally:
        proc.stop()
    with open(log) as f:
        text = f.read()
    assert "start attempt 1 of 3" in text and "start attempt 2 of 3" in text and "start attempt 3" not in text
    assert "address already in use" in text.lower()


def test_a_server_that_never_binds_fails_clearly_after_its_attempts(tmp_path) -> None:
    squatted: list[int] = []
    squatters: list[socket.socket] = []

    def argv(ports: list[int]) -> list[str]:
        squatted.append(ports[0])
        squatters.append(squat(ports[0]))
        return http_server_argv(str(tmp_path), ports[0])

    log = str(tmp_path / "server.log")
    try:
        with pytest.raises(RuntimeError) as failed:
            start_server("squatted", log, 1, argv, lambda p: f"http://127.0.0.1:{p[0]}/", cwd=REPO, attempts=2)
    finally:
        for s in squatters:
            s.close()
    message = str(failed.value)
    assert message.startswith(f"squatted failed to start 2 times; log: {log}")
    for attempt, port in enumerate(squatted, 1):
        assert f"attempt {attempt} on ports [{port}]" in message
    assert "address already in use" in message.lower()
