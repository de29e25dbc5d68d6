"""A standards-minded static HTTP/1.1 server with byte ranges, run as its own process.

Serves files under ``--root``: HEAD and GET, strong ETags and Last-Modified, single byte ranges
(``a-b``, ``a-``, ``-n``) with 206 / 416 (``Content-Range: bytes */size``), If-Range (ETag or
date), If-Match (412) and If-None-Match (304); several ranges at once are answered with the
whole body, which RFC 9110 allows. Two path prefixes imitate weaker servers:
``/norange/...`` ignores Range, ``/nohead/...`` refuses HEAD with 405, and ``/chunked/...``
streams the body with chunked transfer encoding and no length, as dynamic servers do. Each request is logged
as one line (method, path, Range, status, body bytes) to ``--access-log``.

Run: ``python -m tests.servers.http_range_server --root DIR --port N [--access-log FILE]``
"""

from __future__ import annotations

import argparse
import email.utils
import os
import re
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from tests.servers.process import ServerProcess, start_server

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` inclusive, None to ignore the header (serve 200), 'unsatisfiable' for 416."""
    match = _RANGE_RE.match(header.replace(" ", ""))
    if not match or (not match[1] and not match[2]):
        return None  # malformed or multiple ranges: RFC 9110 lets a server ignore Range
    if not match[1]:  # suffix: the last n bytes
        n = int(match[2])
        if n == 0:
            return "unsatisfiable"
        return (max(0, size - n), size - 1) if size else "unsatisfiable"
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if match[2] and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


class RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FerryTestHTTP/1.0"
    root = "."
    log_lock = threading.Lock()
    access_log: str | None = None

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        ignore_range = path.startswith(("/norange/", "/chunked/"))
        chunked = path.startswith("/chunked/")
        if path.startswith(("/norange/", "/nohead/", "/chunked/")):
            if head and path.startswith("/nohead/"):
                return self._finish(HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": "GET"})
            path = "/" + path.split("/", 2)[2]
        full = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if not full.startswith(os.path.realpath(self.root) + os.sep) or not os.path.isfile(full):
            return self._finish(HTTPStatus.NOT_FOUND)
        with open(full, "rb") as f:
            st = os.fstat(f.fileno())
            size, etag = st.st_size, _etag(st)
            modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            headers = {"ETag": etag, "Last-Modified": modified, "Content-Type": "application/octet-stream"}
            if not ignore_range:
                headers["Accept-Ranges"] = "bytes"
            if chunked:
                return self._send_chunked(headers, f, head)
            if_match = self.headers.get("If-Match")
            if if_match and if_match.strip() != "*" and etag not in [t.strip() for t in if_match.split(",")]:
                return self._finish(HTTPStatus.PRECONDITION_FAILED)
            if_none = self.headers.get("If-None-Match")
            if if_none and (if_none.strip() == "*" or etag in [t.strip() for t in if_none.split(",")]):
                return self._finish(HTTPStatus.NOT_MODIFIED, {"ETag": etag})
            wanted = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if wanted and if_range and if_range.strip() not in (etag, modified):
                wanted = None  # the client's copy is stale: send the whole new body
            span = parse_range(wanted, size) if wanted and not ignore_range else None
            if span == "unsatisfiable":
                return self._finish(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"})
            if isinstance(span, tuple):
                first, last = span
                headers["Content-Range"] = f"bytes {first}-{last}/{size}"
                return self._finish(HTTPStatus.PARTIAL_CONTENT, headers, f, first, last - first + 1, head)
            return self._finish(HTTPStatus.OK, headers, f, 0, size, head)

    def _finish(
        self,
        status: HTTPStatus,
        headers: dict[str, str] | None = None,
        f: object = None,
        offset: int = 0,
        length: int = 0,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()
        sent = 0
        if f is not None and not head and length:
            try:
                sent = self.connection.sendfile(f, offset, length)  # type: ignore[arg-type]
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
        self._log_access(status, sent)

    def _send_chunked(self, headers: dict[str, str], f: BinaryIO, head: bool) -> None:
        self.send_response(HTTPStatus.OK)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        if not head:
            while chunk := f.read(100_000):
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
        self._log_access(HTTPStatus.OK, sent)

    def _log_access(self, status: HTTPStatus, sent: int) -> None:
        if not self.access_log:
            return
        line = f"{self.command} {self.path} range={self.headers.get('Range', '-')} {int(status)} {sent}\n"
        with self.log_lock, open(self.access_log, "a") as log:
            log.write(line)

    def log_message(self, format: str, *args: object) -> None:
        pass


def start_http_server(root: str, workdir: str) -> tuple[ServerProcess, str, str]:
    """Start this server as a child process; return it, its base URL and its access log path."""
    log = os.path.join(workdir, "http-access.log")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def argv(ports: list[int]) -> list[str]:
        server = [sys.executable, "-m", "tests.servers.http_range_server"]
        return [*server, "--root", root, "--port", str(ports[0]), "--access-log", log]

    proc, (port,) = start_server(
        "http-range-server",
        os.path.join(workdir, "http.log"),
        1,
        argv,
        lambda ports: f"http://127.0.0.1:{ports[0]}/",
        cwd=here,
        timeout=30,
    )
    return proc, f"http://127.0.0.1:{port}", log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-log")
    args = parser.parse_args()
    RangeHandler.root = args.root
    RangeHandler.access_log = args.access_log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), RangeHandler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
