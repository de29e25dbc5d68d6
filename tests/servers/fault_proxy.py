"""A fault-injecting HTTP reverse proxy on a real socket, for faults real servers won't produce.

It forwards each request unchanged (the Host header too, so SigV4 signatures stay valid) to the
upstream server and streams the answer back, counting body bytes per request in both directions.
Faults, armed by the test:

- answer bodies (GET): flip one byte of the object at a given offset; after N body bytes either
  close the connection (a truncated body: the full Content-Length was announced) or reset it (RST);
- request bodies (PUT/POST): flip a byte at a body offset; after N body bytes reset the connection,
  or forward the body cut short upstream (the store sees a truncated body) and close without answer;
- answer with error statuses (and Retry-After) a number of times, for chosen methods;
- stall: hold a request without answering, or stop sending mid-body, until ``release_stalls()``,
  the client hangs up, or a bounded time, then close the connection; the first requests can be
  let through unharmed;
- slow: sleep before forwarding each PUT/POST, or per 64 KiB of GET body.

Every wait is bounded, so a test that forgets to release a stall cannot hang. ``wait_until``
lets a test await the proxy's own counters (requests begun, requests held) instead of sleeping.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
CHUNK = 65536


@dataclass
class Faults:
    flip_offset: int | None = None  # object offset whose byte is inverted in GET bodies
    cut_after: int | None = None  # end the GET answer after this many body bytes...
    cut_times: int = 0  # ...this many times
    cut_mode: str = "close"  # "close": a clean close, a truncated body; "reset": a TCP RST
    error_status: int = 0  # answer GETs with this status...
    error_times: int = 0  # ...this many times
    error_after_requests: int = 0  # ...but only after this many GETs went through unharmed
    error_statuses: tuple[int, ...] = ()  # if set, the statuses of successive error answers (else error_status)
    retry_after: str | None = None
    error_body: bytes = b""  # the error answer's body (e.g. an S3 XML error naming its code)...
    error_content_type: str = "application/xml"  # ...and its type
    error_methods: tuple[str, ...] = ("GET",)  # which requests the error fault applies to
    request_delay: float = 0.0  # seconds slept before forwarding each PUT or POST: a slow upload
    only_path: str | None = None  # faults apply only to paths containing this
    delay_per_chunk: float = 0.0  # seconds slept per 64 KiB of GET body: a slow link
    # Request bodies (uploads): the methods these apply to, then a cut or a flipped byte.
    request_fault_methods: tuple[str, ...] = ("PUT", "POST")
    request_cut_after: int | None = None  # after this many request body bytes...
    request_cut_times: int = 0  # ...this many times...
    request_cut_mode: str = "reset"  # ...reset the client; or "truncate": forward a short body, close
    request_flip_offset: int | None = None  # request body offset whose byte is inverted...
    request_flip_times: int = 0  # ...in this many requests
    # Stalls: hold matching requests (after the first ``stall_after_requests`` of them) without
    # answering (``stall_at_byte`` None) or after that many answer body bytes, for at most
    # ``stall_seconds`` or until release_stalls(); then close the connection.
    stall_methods: tuple[str, ...] = ()
    stall_after_requests: int = 0
    stall_times: int = 0
    stall_at_byte: int | None = None
    stall_seconds: float = 30.0


@dataclass
class Record:
    method: str
    path: str
    range: str | None
    status: int  # 0: no answer was sent (a stalled, reset or truncated request)
    body_bytes: int  # answer body bytes sent
    request_bytes: int = 0  # request body bytes received


@dataclass
class FaultProxy:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    records: list[Record] = field(default_factory=list)
    generation: int = 0  # bumped by reset(): requests begun before it are not recorded
    fired: Counter[str] = field(default_factory=Counter)  # faults applied, by kind ("error", "cut", ...)
    begun: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of requests begun
    held: int = 0  # requests stalled right now
    active: int = 0  # requests being handled right now
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition | None = None
    _release_epoch: int = 0
    _version: int = 0  # bumped by every change a waiter may care about
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def start(self) -> str:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self.release_stalls()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def body_bytes(self, method: str = "GET", path_part: str = "") -> int:
        with self._lock:
            return sum(r.body_bytes for r in self.records if r.method == method and path_part in r.path)

    def answered(self, method: str, path_part: str = "") -> int:
        """Requests that got a success (2xx) answer: e.g. the upload parts the store took."""
        with self._lock:
            return sum(1 for r in self.records if r.method == method and path_part in r.path and 200 <= r.status < 300)

    def begun_count(self, method: str, path_part: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.begun if m == method and path_part in p)

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self.begun.clear()
            self.fired.clear()
            self.faults = Faults()
            self.generation += 1
            self._release_epoch += 1  # a reset also ends every stall
            self._notify()

    def release_stalls(self) -> None:
        """End every stall now (their connections close) and arm no new ones."""
        with self._lock:
            self.faults.stall_times = 0
            self._release_epoch += 1
            self._notify()

    def wait_until(self, predicate: Callable[[FaultProxy], bool], timeout: float) -> bool:
        """Wait (bounded) until ``predicate(self)`` holds; it is re-checked whenever a request
        begins, ends, stalls or is recorded. Returns whether it held."""
        deadline = time.monotonic() + timeout
        assert self._changed is not None
        while True:
            seen = self._version
            if predicate(self):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                if self._version == seen:
                    self._changed.wait(min(left, 0.5))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until no request is being handled, e.g. those of a killed client."""
        return self.wait_until(lambda p: p.active == 0, timeout)

    def _notify(self) -> None:
        """Wake waiters; the caller holds the lock."""
        assert self._changed is not None
        self._version += 1
        self._changed.notify_all()

    def _applies(self, path: str) -> bool:
        return not self.faults.only_path or self.faults.only_path in path

    def _take(self, kind: str, path: str, method: str = "GET") -> bool:
        """Consume one use of an armed fault, if it applies to ``path``."""
        with self._lock:
            f = self.faults
            if not self._applies(path):
                return False
            if kind == "error" and f.error_times > 0:
                if f.error_after_requests > 0:
                    f.error_after_requests -= 1
                    return False
                f.error_times -= 1
                return self._fire(kind)
            if kind == "cut" and f.cut_times > 0 and f.cut_after is not None:
                f.cut_times -= 1
                return self._fire(kind)
            if kind == "request_cut" and method in f.request_fault_methods and f.request_cut_times > 0:
                f.request_cut_times -= 1
                return self._fire(kind)
            if kind == "request_flip" and method in f.request_fault_methods and f.request_flip_times > 0:
                f.request_flip_times -= 1
                return self._fire(kind)
            if kind == "stall" and method in f.stall_methods and f.stall_times > 0:
                if f.stall_after_requests > 0:
                    f.stall_after_requests -= 1
                    return False
                f.stall_times -= 1
                return self._fire(kind)
            return False

    def _fire(self, kind: str) -> bool:
        """Count an applied fault; the caller holds the lock."""
        self.fired[kind] += 1
        return True

    def _count(self, kind: str) -> None:
        with self._lock:
            self._fire(kind)

    def _error_status(self) -> int:
        """The status of the error answer just taken: the next of ``error_statuses``, if given."""
        with self._lock:
            f = self.faults
            if not f.error_statuses:
                return f.error_status
            return f.error_statuses[(self.fired["error"] - 1) % len(f.error_statuses)]

    def _stall(self, seconds: float, client: socket.socket) -> None:
        """Hold the calling request until released, reset, stopped, or ``seconds`` pass, or until
        the client closes its connection: a client that gave up (its read timeout) is counted
        as ``fired["abandoned"]``, so a test can tell a timeout from the stall's own end."""
        deadline = time.monotonic() + seconds
        assert self._changed is not None
        with self._changed:
            epoch = self._release_epoch
            self.held += 1
            self._notify()
        try:
            while True:
                with self._changed:
                    left = deadline - time.monotonic()
                    if self._release_epoch != epoch or left <= 0:
                        return
                    self._changed.wait(min(left, 0.1))
                if _peer_closed(client):
                    self._count("abandoned")
                    return
        finally:
            with self._changed:
                self.held -= 1
                self._notify()


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the other end closed (or reset) the connection; never blocks."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        proxy = self.owner
        with proxy._lock:
            self._generation = proxy.generation
            proxy.begun.append((self.command, self.path))
            proxy.active += 1
            proxy._notify()
        self._received = 0
        try:
            self._handle()
        finally:
            with proxy._lock:
                proxy.active -= 1
                proxy._notify()

    def _handle(self) -> None:
        proxy = self.owner
        body = self._read_body()
        if body is None:
            return  # the connection was reset mid-body
        if proxy.faults.request_delay and self.command in ("PUT", "POST"):
            time.sleep(proxy.faults.request_delay)
        if self.command in proxy.faults.error_methods and proxy._take("error", self.path):
            status = proxy._error_status()
            self.send_response(status)
            if proxy.faults.retry_after:
                self.send_header("Retry-After", proxy.faults.retry_after)
            error_body = proxy.faults.error_body if self.command != "HEAD" else b""
            if error_body:
                self.send_header("Content-Type", proxy.faults.error_content_type)
            self.send_header("Content-Length", str(len(error_body)))
            # Recorded before the answer leaves (end_headers sends it): a client that returns on
            # it must find it in the records, not race the proxy's thread to them.
            self._record(status, len(error_body))
            self.end_headers()
            self.wfile.write(error_body)
            return
        stall = proxy._take("stall", self.path, self.command)
        if stall and proxy.faults.stall_at_byte is None:
            proxy._stall(proxy.faults.stall_seconds, self.connection)  # accept, and never answer
            self._drop(0)
            return
        truncate = body and proxy.faults.request_cut_mode == "truncate"
        if truncate and proxy._take("request_cut", self.path, self.command):
            self._forward_truncated(body, proxy.faults.request_cut_after or 0)
            return
        up = urlsplit(proxy.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data_len = resp.getheader("Content-Length")
        payload = None if data_len is not None else resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        total = int(data_len) if data_len is not None else len(payload or b"")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        offset = 0
        match = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
        if match:
            offset = int(match[1])
        cut = self.command == "GET" and resp.status in (200, 206) and proxy._take("cut", self.path)
        stall_at = proxy.faults.stall_at_byte if stall else None
        sent = 0
        try:
            while sent < total:
                want = min(CHUNK, total - sent)
                if stall_at is not None and sent < stall_at:
                    want = min(want, stall_at - sent)
                chunk = payload[sent : sent + want] if payload is not None else resp.read(want)
                if not chunk:
                    break
                chunk = bytearray(chunk)
                flip = proxy.faults.flip_offset
                if flip is not None and self.command == "GET" and resp.status in (200, 206):
                    rel = flip - (offset + sent)
                    if 0 <= rel < len(chunk):
                        chunk[rel] ^= 0xFF
                        proxy._count("flip")
                if cut and sent + len(chunk) > (proxy.faults.cut_after or 0):
                    keep = max(0, (proxy.faults.cut_after or 0) - sent)
                    self.wfile.write(chunk[:keep])
                    sent += keep
                    self.close_connection = True
                    if proxy.faults.cut_mode == "reset":
                        self._reset()
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
                if stall_at is not None and sent >= stall_at:
                    proxy._stall(proxy.faults.stall_seconds, self.connection)  # stop sending mid-body
                    self.close_connection = True
                    break
                if proxy.faults.delay_per_chunk and self.command == "GET":
                    time.sleep(proxy.faults.delay_per_chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            conn.close()
            self._record(resp.status, sent)

    def _read_body(self) -> bytes | None:
        """The request body, read in chunks (counted as they arrive); a flipped byte or a reset
        mid-body applied as armed. None when the connection was reset."""
        proxy = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return b""
        f = proxy.faults
        cut_at = None
        resets = f.request_cut_mode == "reset" and f.request_cut_after is not None
        if resets and proxy._take("request_cut", self.path, self.command):
            cut_at = f.request_cut_after
        body = bytearray()
        while len(body) < length:
            want = min(CHUNK, length - len(body))
            if cut_at is not None:
                want = min(want, cut_at - len(body))
            chunk = self.rfile.read(want) if want > 0 else b""
            body += chunk
            self._received = len(body)
            if cut_at is not None and len(body) >= cut_at:
                self._reset()
                self._record(0, 0)
                return None
            if not chunk:
                break
        flip = proxy.faults.request_flip_offset
        if flip is not None and flip < len(body) and proxy._take("request_flip", self.path, self.command):
            body[flip] ^= 0xFF
        return bytes(body)

    def _forward_truncated(self, body: bytes, keep: int) -> None:
        """Send the upstream store the full Content-Length but only ``keep`` body bytes, then
        close both connections without an answer: the store sees a truncated body."""
        up = urlsplit(self.owner.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in _HOP_BY_HOP:
                    conn.putheader(k, v)
            conn.endheaders()
            conn.send(body[:keep])
        except OSError:
            pass
        finally:
            conn.close()
        self._drop(0)

    def _drop(self, sent: int) -> None:
        """Close the client's connection without (the rest of) an answer."""
        self.close_connection = True
        self._record(0, sent)

    def _reset(self) -> None:
        """Abort the client's connection with a TCP RST (linger 0) instead of a clean close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _record(self, status: int, sent: int) -> None:
        with self.owner._lock:
            if self._generation != self.owner.generation:
                return  # a request from before reset(), e.g. of a killed client, still draining
            self.owner.records.append(
                Record(self.command, self.path, self.headers.get("Range"), status, sent, self._received)
            )
            self.owner._notify()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward
