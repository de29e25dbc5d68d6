"""HTTP(S) servers as a read-only source: HEAD, ranged GET, validators for pinning."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from ferry_provider.hooks.base import (
    Body,
    Capabilities,
    ObjectInfo,
    RangeReader,
    StorageHook,
    check_content_range,
    check_range_args,
)
from ferry_provider.hooks.connection import as_bool, extra_value
from ferry_provider.hooks.digests import b64_to_hex, parse_digest_header
from ferry_provider.hooks.errors import (
    InvalidArgumentError,
    RangeNotSupportedError,
    ReadOnlyStoreError,
    SourceChangedError,
)
from ferry_provider.hooks.http_session import (
    STREAM_ERRORS,
    mount_pool,
    request_errors,
    status_error,
)
from ferry_provider.hooks.socket_stream import socket_stream
from ferry_provider.hooks.url import redact

# Servers that refuse HEAD (or presigned URLs signed for GET only) answer with one of these.
_HEAD_REFUSED = frozenset({403, 405, 501})


class _HostBoundSession(requests.Session):
    """requests drops Authorization when a redirect leaves the host; the connection's own
    headers (an API key in ``headers``) are credentials too and are dropped the same way."""

    bound_headers: set[str] = set()

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        if self.bound_headers and self.should_strip_auth(response.request.url, prepared_request.url):
            for name in self.bound_headers:
                prepared_request.headers.pop(name, None)


class HTTPStore(StorageHook):
    """Read objects from HTTP(S) servers, in parallel ranges where the server allows it.

    Without a connection no credentials are sent (requests still honours the ``*_PROXY`` and
    ``REQUESTS_CA_BUNDLE`` variables); ``FerryHTTPHook`` adds them from an Airflow connection.
    """

    credential_fallback = "sending no credentials"
    schemes = ("http", "https")
    capabilities = Capabilities(ranged_reads=True, writable=False)

    def __init__(self, *, max_connections: int = 16) -> None:
        super().__init__()
        self.max_connections = max_connections
        self._session: requests.Session | None = None
        self._auth_host: str | None = None
        self._auth: Any = None
        self._auth_headers: dict[str, str] = {}
        self._timeouts: tuple[float, float] = (10.0, 30.0)  # (connect, read): set with the session
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._make_session()
        return self._session

    def _make_session(self) -> requests.Session:
        conn = self.connection()
        session = _HostBoundSession()
        session.headers["User-Agent"] = "ferry-provider"
        # Bytes as stored: a transparently decompressed body would not match sizes or digests.
        session.headers["Accept-Encoding"] = "identity"
        if conn is not None:
            extra = conn.extra_dejson
            self._auth_host = conn.host or None
            if str(extra_value(extra, "auth_type") or "").lower() == "bearer":
                self._auth_headers["Authorization"] = f"Bearer {conn.password}"
            elif conn.login:
                self._auth = (conn.login, conn.password or "")
            self._auth_headers.update({str(k): str(v) for k, v in (extra_value(extra, "headers") or {}).items()})
            session.bound_headers = set(self._auth_headers)
            proxy = extra_value(extra, "proxy")
            if proxy:
                session.proxies = {"http": proxy, "https": proxy}
            verify = extra_value(extra, "verify")
            if verify is not None:
                session.verify = verify if str(verify).lower() not in ("true", "false") else as_bool(verify, True)
            cert, key = extra_value(extra, "cert"), extra_value(extra, "key")
            if cert:
                session.cert = (cert, key) if key else cert
        self._timeouts = self.timeouts(conn.extra_dejson if conn is not None else {})
        return mount_pool(session, self.max_connections)

    def _get(self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        self.session  # noqa: B018 - settles credentials
        all_headers = dict(headers or {})
        auth = None
        if self._auth_host is None or urlsplit(url).hostname == self._auth_host:
            all_headers.update(self._auth_headers)
            auth = self._auth
        with request_errors(redact(url)):
            return self.session.request(
                method, url, headers=all_headers, auth=auth, timeout=self._timeouts, allow_redirects=True, **kwargs
            )

    def native_client(self) -> Any:
        return self.session

    def probe(self) -> str:
        """A HEAD request to the connection's host (HTTP sources have no account to check)."""
        conn = self.connection()
        if conn is None or not conn.host:
            raise InvalidArgumentError(f"{self.credentials_origin()}: no host to test; HTTP URLs name their own")
        host = conn.host if "://" in conn.host else f"{conn.schema or 'https'}://{conn.host}"
        url = f"{host}:{conn.port}/" if conn.port else host.rstrip("/") + "/"
        resp = self._get("HEAD", url)
        if resp.status_code in (401, 403) or resp.status_code >= 500:
            raise status_error(resp, redact(url))
        return f"{redact(url)} answered HTTP {resp.status_code}"

    # -- reads ------------------------------------------------------------------------------
    def head(self, url: str) -> ObjectInfo:
        u = self.parse(url)
        ref = redact(u.raw)
        resp = self._get("HEAD", u.raw)
        if resp.status_code in _HEAD_REFUSED:
            return self._head_by_get(u.raw, ref)
        if resp.status_code >= 300:
            raise status_error(resp, ref)
        length = resp.headers.get("Content-Length")
        return self._info(ref, resp, int(length) if length is not None else None)

    def _head_by_get(self, url: str, ref: str) -> ObjectInfo:
        """HEAD refused: a one-byte ranged GET tells the size (Content-Range) and validators."""
        resp = self._get("GET", url, {"Range": "bytes=0-0"}, stream=True)
        try:
            if resp.status_code == 416:  # an empty resource has no byte 0
                return self._info(ref, resp, 0)
            if resp.status_code >= 300:
                raise status_error(resp, ref)
            if resp.status_code == 206:
                total = resp.headers.get("Content-Range", "").rpartition("/")[2]
                return self._info(ref, resp, int(total) if total.isdigit() else None)
            length = resp.headers.get("Content-Length")
            return self._info(ref, resp, int(length) if length is not None else None)
        finally:
            resp.close()

    @staticmethod
    def _info(ref: str, resp: requests.Response, size: int | None) -> ObjectInfo:
        h = resp.headers
        modified = h.get("Last-Modified")
        hashes = _digest_headers(h)
        return ObjectInfo(
            url=ref,
            size=size,
            etag=h.get("ETag"),  # kept with quotes and W/ so it can be sent back verbatim
            last_modified=parsedate_to_datetime(modified) if modified else None,
            content_type=h.get("Content-Type"),
            md5=hashes.get("md5"),
            crc32c=hashes.get("crc32c"),
        )

    def open_range(
        self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None
    ) -> RangeReader:
        u = self.parse(url)
        ref = redact(u.raw)
        check_range_args(ref, start, end)
        ranged = not (start == 0 and end is None)
        if ranged and end == start:
            return RangeReader.empty(ref, start)
        headers: dict[str, str] = {}
        if ranged:
            headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
            validator = _if_range_value(pin)
            if validator:
                # If the object changed, the server answers 200 with the new whole body instead
                # of a range of it; the validators below then tell "changed" from "no ranges".
                headers["If-Range"] = validator
        resp = self._get("GET", u.raw, headers, stream=True)
        try:
            length = self._check_answer(ref, resp, ranged, start, end, pin)
        except BaseException:
            resp.close()
            raise

        def release(complete: bool) -> None:
            if complete:
                resp.raw.release_conn()
            else:
                resp.close()

        return RangeReader(
            socket_stream(resp.raw), url=ref, start=start, length=length, release=release, stream_errors=STREAM_ERRORS
        )

    def _check_answer(
        self, ref: str, resp: requests.Response, ranged: bool, start: int, end: int | None, pin: ObjectInfo | None
    ) -> int | None:
        if resp.status_code >= 300:
            raise status_error(resp, ref, pinned=pin is not None)
        if pin is not None:
            _check_validators(ref, resp, pin)
        if ranged:
            if resp.status_code != 206:
                raise RangeNotSupportedError(f"{ref}: the server does not serve byte ranges", url=ref)
            return check_content_range(ref, resp.headers.get("Content-Range"), start, end, pin)
        length = resp.headers.get("Content-Length")
        if length is None:
            return None  # chunked answer: read to the end of the stream
        if pin is not None and pin.size is not None and int(length) != pin.size:
            raise SourceChangedError(f"{ref} changed: size was {pin.size}, now {length}", url=ref)
        return int(length)

    def list(self, url: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        raise InvalidArgumentError(f"{redact(url)}: HTTP(S) servers offer no listing; name each object")

    # -- writes: refused --------------------------------------------------------------------
    def put(self, url: str, body: Body, **kwargs: Any) -> ObjectInfo:
        raise ReadOnlyStoreError(f"{redact(url)}: HTTP(S) sources are read-only; cannot write to them")

    def delete(self, url: str) -> None:
        raise ReadOnlyStoreError(f"{redact(url)}: HTTP(S) sources are read-only; cannot delete")


def _if_range_value(pin: ObjectInfo | None) -> str | None:
    """If-Range takes a strong ETag or a date (RFC 9110 13.1.5); weak ETags never match."""
    if pin is None:
        return None
    if pin.etag and not pin.etag.startswith("W/"):
        return pin.etag
    if pin.last_modified is not None:
        return pin.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return None


def _check_validators(ref: str, resp: requests.Response, pin: ObjectInfo) -> None:
    etag = resp.headers.get("ETag")
    if pin.etag and etag and etag != pin.etag:
        raise SourceChangedError(f"{ref} changed: ETag {pin.etag} -> {etag}", url=ref)
    modified = resp.headers.get("Last-Modified")
    if pin.last_modified is not None and modified and parsedate_to_datetime(modified) != pin.last_modified:
        raise SourceChangedError(f"{ref} changed: Last-Modified {pin.last_modified} -> {modified}", url=ref)


def _digest_headers(headers: Any) -> dict[str, str]:
    """Digests a server states: x-goog-hash, RFC 3230 Digest, Content-MD5 (hex out)."""
    out = parse_digest_header(headers.get("x-goog-hash", ""))
    out.update(parse_digest_header(headers.get("Digest", "")))
    if headers.get("Content-MD5"):
        out["md5"] = b64_to_hex(headers["Content-MD5"]) or ""
    return out
