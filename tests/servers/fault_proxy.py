"""A fault-injecting HTTP reverse proxy on a real socket, for faults real servers won't produce.

It forwards each request unchanged (the Host header too, so SigV4 signatures stay valid) to the
upstream server and streams the answer back, counting body bytes per request. Faults, armed by
the test: flip one byte of the object at a given offset, cut the connection after N body bytes,
or answer with an error status (and Retry-After) a number of times.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


@dataclass
class Faults:
    flip_offset: int | None = None  # object offset whose byte is inverted in GET bodies
    cut_after: int | None = None  # close the connection after this many body bytes...
    cut_times: int = 0  # ...this many times
    error_status: int = 0  # answer GETs with this status...
    error_times: int = 0  # ...this many times
    error_after_requests: int = 0  # ...but only after this many GETs went through unharmed
    retry_after: str | None = None
    error_methods: tuple[str, ...] = ("GET",)  # which requests the error fault applies to
    request_delay: float = 0.0  # seconds slept before forwarding each PUT or POST: a slow upload
    only_path: str | None = None  # faults apply only to paths containing this
    delay_per_chunk: float = 0.0  # seconds slept per 64 KiB of GET body: a slow link


@dataclass
class Record:
    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int


@dataclass
class FaultProxy:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    records: list[Record] = field(default_factory=list)
    generation: int = 0  # bumped by reset(): requests begun before it are not recorded
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def body_bytes(self, method: str = "GET", path_part: str = "") -> int:
        with self._lock:
            return sum(r.body_bytes for r in self.records if r.method == method and path_part in r.path)

    def reset(self) -> None:
        with self._lock:
            self.records.clear()
            self.faults = Faults()
            self.generation += 1

    def _take(self, kind: str, path: str) -> bool:
        """Consume one use of an armed fault, if it applies to ``path``."""
        with self._lock:
            f = self.faults
            if f.only_path and f.only_path not in path:
                return False
            if kind == "error" and f.error_times > 0:
                if f.error_after_requests > 0:
                    f.error_after_requests -= 1
                    return False
                f.error_times -= 1
                return True
            if kind == "cut" and f.cut_times > 0 and f.cut_after is not None:
                f.cut_times -= 1
                return True
            return False


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        proxy = self.owner
        self._generation = proxy.generation
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if proxy.faults.request_delay and self.command in ("PUT", "POST"):
            time.sleep(proxy.faults.request_delay)
        if self.command in proxy.faults.error_methods and proxy._take("error", self.path):
            self.send_response(proxy.faults.error_status)
            if proxy.faults.retry_after:
                self.send_header("Retry-After", proxy.faults.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self._record(proxy.faults.error_status, 0)
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
        sent = 0
        try:
            while sent < total:
                chunk = payload[sent:] if payload is not None else resp.read(min(65536, total - sent))
                if not chunk:
                    break
                chunk = bytearray(chunk)
                flip = proxy.faults.flip_offset
                if flip is not None and self.command == "GET" and resp.status in (200, 206):
                    rel = flip - (offset + sent)
                    if 0 <= rel < len(chunk):
                        chunk[rel] ^= 0xFF
                if cut and sent + len(chunk) > (proxy.faults.cut_after or 0):
                    keep = max(0, (proxy.faults.cut_after or 0) - sent)
                    self.wfile.write(chunk[:keep])
                    sent += keep
                    self.close_connection = True
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
                if proxy.faults.delay_per_chunk and self.command == "GET":
                    time.sleep(proxy.faults.delay_per_chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            conn.close()
            self._record(resp.status, sent)

    def _record(self, status: int, sent: int) -> None:
        with self.owner._lock:
            if self._generation != self.owner.generation:
                return  # a request from before reset(), e.g. of a killed client, still draining
            self.owner.records.append(Record(self.command, self.path, self.headers.get("Range"), status, sent))

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward
