"""A reverse proxy in front of SeaweedFS that gives answers real S3 gives and SeaweedFS does not
(a bucket in another region; a listing as a store that ignores encoding-type would send it)."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


class RewritingProxy:
    """A reverse proxy in front of SeaweedFS for answers real stores give and SeaweedFS does not:
    ``region``: refuse requests signed for another region as S3 does (400
    AuthorizationHeaderMalformed naming the bucket's region, which botocore follows);
    ``rewrite(path, body)``: change a GET answer's body."""

    def __init__(
        self, upstream: str, region: str | None = None, rewrite: Callable[[str, bytes], bytes] | None = None
    ) -> None:
        up = urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                signed = self.headers.get("Authorization", "") + unquote(self.path)
                scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/s3/", signed)
                if region and scope and scope.group(1) != region:
                    error = (
                        "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region "
                        f"'{scope.group(1)}' is wrong; expecting '{region}'</Message><Region>{region}</Region></Error>"
                    ).encode()
                    self._answer(400, {"x-amz-bucket-region": region, "Content-Type": "application/xml"}, error)
                    return
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                    resp = conn.getresponse()
                    data = resp.read()
                    skip = {"transfer-encoding", "connection", "content-length", "keep-alive"}
                    headers = {k: v for k, v in resp.getheaders() if k.lower() not in skip}
                    if self.command == "HEAD":
                        headers["Content-Length"] = resp.getheader("Content-Length", "0")
                        self.send_response(resp.status)
                        for name, value in headers.items():
                            self.send_header(name, value)
                        self.end_headers()
                        return
                    if rewrite is not None and self.command == "GET":
                        data = rewrite(self.path, data)
                    self._answer(resp.status, headers, data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
