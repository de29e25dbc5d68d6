"""Google Cloud Storage through its JSON API, with requests and google-auth."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

from ferry_provider.hooks.base import (
    Body,
    BufferReader,
    Capabilities,
    ObjectInfo,
    RangeReader,
    StorageHook,
    as_stream,
    check_content_range,
    check_range_args,
)
from ferry_provider.hooks.connection import as_bool, extra_value
from ferry_provider.hooks.digests import b64_to_hex, hex_to_b64, parse_digest_header
from ferry_provider.hooks.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RangeNotSupportedError,
    SourceChangedError,
    TransientError,
)
from ferry_provider.hooks.http_session import (
    STREAM_ERRORS,
    mount_pool,
    request_errors,
    status_error,
)
from ferry_provider.hooks.socket_stream import socket_stream
from ferry_provider.hooks.url import ObjectURL

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)
MAX_COMPOSE_SOURCES = 32


class GCSStore(StorageHook):
    """GCS through the JSON API.

    Without a connection, credentials are application default credentials, and the endpoint is
    ``STORAGE_EMULATOR_HOST`` when set (then no credentials are sent). ``FerryGCSHook`` reads key
    files and endpoints from an Airflow connection.
    """

    credential_fallback = "using application default credentials"
    schemes = ("gs",)
    capabilities = Capabilities(
        can_compose=True,
        max_compose_sources=MAX_COMPOSE_SOURCES,
        composite_upload=True,
        server_side_copy=True,
    )

    def __init__(self, *, max_connections: int = 16) -> None:
        super().__init__()
        self.max_connections = max_connections
        self._session: requests.Session | None = None
        self._lock = threading.Lock()
        self.endpoint = DEFAULT_ENDPOINT
        self._timeouts: tuple[float, float] = (10.0, 30.0)  # (connect, read): set with the session

    # -- session ----------------------------------------------------------------------------
    @property
    def session(self) -> requests.Session:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._make_session()
        return self._session

    def _make_session(self) -> requests.Session:
        conn = self.connection()
        extra = conn.extra_dejson if conn else {}
        unsupported = [
            name
            for name in ("impersonation_chain", "key_secret_name", "extra__google_cloud_platform__key_secret_name")
            if extra_value(extra, name) is not None
        ]
        if unsupported:  # refused by name: other credentials than those asked for would be worse
            raise InvalidArgumentError(
                f"{self.credentials_origin()}: extra {', '.join(unsupported)} not supported by Ferry yet "
                "(give a key_path or keyfile_dict, or application default credentials)"
            )
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        endpoint = extra_value(extra, "endpoint_url", "extra__google_cloud_platform__endpoint_url") or emulator
        if endpoint:
            self.endpoint = (endpoint if "://" in endpoint else f"http://{endpoint}").rstrip("/")
        self._timeouts = self.timeouts(extra)
        anonymous = as_bool(extra_value(extra, "anonymous"), default=bool(endpoint) and not self._has_key(extra))
        session = requests.Session() if anonymous else self._authorized_session(extra)
        session.headers["User-Agent"] = "ferry-provider"
        return mount_pool(session, self.max_connections)

    @staticmethod
    def _has_key(extra: dict[str, Any]) -> bool:
        return bool(
            extra_value(
                extra,
                "key_path",
                "keyfile_dict",
                "extra__google_cloud_platform__key_path",
                "extra__google_cloud_platform__keyfile_dict",
            )
        )

    def _authorized_session(self, extra: dict[str, Any]) -> requests.Session:
        import google.auth
        import google.auth.exceptions
        from google.auth.transport.requests import AuthorizedSession
        from google.oauth2 import service_account

        key_path = extra_value(extra, "key_path", "extra__google_cloud_platform__key_path")
        key_dict = extra_value(extra, "keyfile_dict", "extra__google_cloud_platform__keyfile_dict")
        where = self.credentials_origin()
        try:
            if key_path:
                creds = service_account.Credentials.from_service_account_file(key_path, scopes=SCOPES)
            elif key_dict:
                info = json.loads(key_dict) if isinstance(key_dict, str) else key_dict
                creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            else:
                creds, _ = google.auth.default(scopes=SCOPES)
        except (OSError, ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            # The exception text of a bad key file can quote the key: name the cause only.
            raise PermissionDeniedError(f"{where}: cannot load Google credentials ({type(exc).__name__})") from exc
        return AuthorizedSession(creds)

    def native_client(self) -> Any:
        return self.session

    def store_identity(self) -> tuple[str, ...] | None:
        """The endpoint and who the credentials are (a service account's e-mail, never a key)."""
        session = self.session
        credentials = getattr(session, "credentials", None)
        who = "anonymous" if credentials is None else getattr(credentials, "service_account_email", None) or "default"
        return ("gs", self.endpoint, who)

    def probe(self) -> str:
        """Credentials loaded, then a request for a bucket name no one can own ('_' is not allowed
        in bucket names at this position): 404 or 400 proves the store answered the credentials,
        401/403 that it refused them."""
        self.session  # noqa: B018 - loads (and for service accounts, refreshes) the credentials
        resp = self._request("GET", f"{self.endpoint}/storage/v1/b/_ferry-connection-test", "gs://")
        if resp.status_code in (401, 403):
            raise status_error(resp, "gs://", what=f" ({self.credentials_origin()})")
        if resp.status_code >= 500:
            raise status_error(resp, "gs://")
        return f"{self.endpoint} answered (HTTP {resp.status_code}); credentials accepted"

    # -- addresses --------------------------------------------------------------------------
    def _object_url(self, u: ObjectURL) -> str:
        self.session  # noqa: B018 - resolving the session settles the endpoint
        return f"{self.endpoint}/storage/v1/b/{u.bucket}/o/{quote(u.key, safe='')}"

    def _request(self, method: str, url: str, ref: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeouts)
        with request_errors(ref):
            return self.session.request(method, url, **kwargs)

    def _json(self, method: str, url: str, ref: str, *, pinned: bool = False, **kwargs: Any) -> dict[str, Any]:
        resp = self._request(method, url, ref, **kwargs)
        if resp.status_code >= 300:
            raise status_error(
                resp,
                ref,
                pinned=pinned,
                what=f" ({self.credentials_origin()})" if resp.status_code in (401, 403) else "",
            )
        return resp.json() if resp.content else {}

    def _info(self, resource: dict[str, Any]) -> ObjectInfo:
        updated = resource.get("updated")
        return ObjectInfo(
            url=f"gs://{resource['bucket']}/{resource['name']}",
            size=int(resource.get("size", 0)),
            etag=resource.get("etag"),
            version=str(resource["generation"]) if resource.get("generation") else None,
            last_modified=datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None,
            content_type=resource.get("contentType"),
            md5=b64_to_hex(resource.get("md5Hash")),
            crc32c=b64_to_hex(resource.get("crc32c")),
            checksum_type="FULL_OBJECT" if resource.get("crc32c") else None,
            # A key patched to null is gone (real GCS drops it; the emulator keeps the null).
            metadata={k: str(v) for k, v in (resource.get("metadata") or {}).items() if v is not None},
        )

    # -- reads ------------------------------------------------------------------------------
    def head(self, url: str) -> ObjectInfo:
        u = self.parse(url).require_key()
        return self._info(self._json("GET", self._object_url(u), u.raw))

    def open_range(
        self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None
    ) -> RangeReader:
        u = self.parse(url).require_key()
        check_range_args(u.raw, start, end)
        ranged = not (start == 0 and end is None)
        if ranged and end == start:
            return RangeReader.empty(u.raw, start)
        params: dict[str, str] = {"alt": "media"}
        if pin is not None and pin.version:
            params["ifGenerationMatch"] = pin.version
        headers = {"Range": f"bytes={start}-{'' if end is None else end - 1}"} if ranged else {}
        resp = self._request("GET", self._object_url(u), u.raw, params=params, headers=headers, stream=True)
        try:
            length = self._check_media(u.raw, resp, ranged, start, end, pin)
        except BaseException:
            resp.close()
            raise

        def release(complete: bool) -> None:
            # A fully read body leaves the connection clean for the pool; otherwise drop it.
            if complete:
                resp.raw.release_conn()
            else:
                resp.close()

        return RangeReader(
            socket_stream(resp.raw), url=u.raw, start=start, length=length, release=release, stream_errors=STREAM_ERRORS
        )

    def _check_media(
        self, ref: str, resp: requests.Response, ranged: bool, start: int, end: int | None, pin: ObjectInfo | None
    ) -> int:
        """Validate a media answer against the request and the pin; return the body length."""
        if resp.status_code >= 300:
            raise status_error(resp, ref, pinned=pin is not None)
        if pin is not None:
            generation = resp.headers.get("x-goog-generation")
            if generation and pin.version and generation != pin.version:
                raise SourceChangedError(f"{ref} changed: generation {pin.version} -> {generation}", url=ref)
            crc = parse_digest_header(resp.headers.get("x-goog-hash", "")).get("crc32c")
            if crc and pin.crc32c and crc != pin.crc32c:
                raise SourceChangedError(f"{ref} changed: crc32c {pin.crc32c} -> {crc}", url=ref)
        if ranged:
            if resp.status_code != 206:
                raise RangeNotSupportedError(f"{ref}: the server ignored the Range header", url=ref)
            return check_content_range(ref, resp.headers.get("Content-Range"), start, end, pin)
        length = int(resp.headers.get("Content-Length", "-1"))
        if pin is not None and pin.size is not None and length >= 0 and length != pin.size:
            raise SourceChangedError(f"{ref} changed: size was {pin.size}, now {length}", url=ref)
        return length if length >= 0 else (pin.size if pin and pin.size is not None else -1)

    def list(self, url: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        u = self.parse(url)
        self.session  # noqa: B018
        api = f"{self.endpoint}/storage/v1/b/{u.bucket}/o"
        token: str | None = None
        while True:
            params: dict[str, Any] = {"maxResults": page_size}
            if u.key:
                params["prefix"] = u.key
            if token:
                params["pageToken"] = token
            page = self._json("GET", api, u.raw, params=params)
            for item in page.get("items", []):
                yield self._info(item)
            token = page.get("nextPageToken")
            if not token:
                return

    # -- writes -----------------------------------------------------------------------------
    def put(
        self,
        url: str,
        body: Body,
        *,
        size: int | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        crc32c: str | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        u = self.parse(url).require_key()
        data = as_stream(body)
        if size is None:
            if not isinstance(data, (bytes, BufferReader)):
                raise InvalidArgumentError(f"{u.raw}: size is required when the body is a stream", url=u.raw)
            size = len(data)
        resource: dict[str, Any] = {"name": u.key, "contentType": content_type or "application/octet-stream"}
        if metadata:
            resource["metadata"] = dict(metadata)
        if crc32c:
            resource["crc32c"] = hex_to_b64(crc32c)  # GCS rejects the upload if the bytes disagree
        params: dict[str, str] = {"uploadType": "multipart"}
        if if_absent:
            params["ifGenerationMatch"] = "0"
        payload = _MultipartRelated(resource, data, size)
        self.session  # noqa: B018
        try:
            answer = self._json(
                "POST",
                f"{self.endpoint}/upload/storage/v1/b/{u.bucket}/o",
                u.raw,
                params=params,
                data=payload,
                headers={"Content-Type": payload.content_type, "Content-Length": str(len(payload))},
            )
        except InvalidArgumentError as exc:
            if crc32c and "crc32c" in str(exc).lower():
                # A 400 for the CRC32C sent: the bytes were damaged on the way (resending cures
                # that, as S3's BadDigest) or the source changed, which the caller checks.
                raise TransientError(
                    f"{u.raw}: the store's CRC32C differs from the one sent: {exc}", url=u.raw
                ) from exc
            raise
        return self._info(answer)

    def delete(self, url: str) -> None:
        u = self.parse(url).require_key()
        with contextlib.suppress(NotFoundError):
            self._json("DELETE", self._object_url(u), u.raw)

    def copy(
        self,
        src: str,
        dst: str,
        *,
        pin: ObjectInfo | None = None,
        if_absent: bool = False,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        resume_token: str | None = None,
        on_token: Callable[[str], None] | None = None,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Server-side rewrite, looping on the rewrite token (large and cross-location copies);
        each token goes to ``on_token`` so a later run can continue with ``resume_token``.
        ``checksum`` changes nothing: GCS keeps every object's CRC32C."""
        s = self.parse(src).require_key()
        d = self.parse(dst).require_key()
        url = f"{self._object_url(s)}/rewriteTo/b/{d.bucket}/o/{quote(d.key, safe='')}"
        params: dict[str, str] = {}
        if pin is not None and pin.version:
            params["ifSourceGenerationMatch"] = pin.version
        if if_absent:
            params["ifGenerationMatch"] = "0"
        if resume_token:
            params["rewriteToken"] = resume_token
        body: dict[str, Any] = {}
        if content_type is not None:
            body["contentType"] = content_type
        if metadata is not None:
            body["metadata"] = dict(metadata)
        while True:
            with self.copy_preconditions(s.raw, d.raw, if_absent):
                result = self._json("POST", url, d.raw, params=params, json=body)
            if result.get("done"):
                return self._apply_metadata(d, self._info(result["resource"]), content_type, metadata)
            params["rewriteToken"] = result["rewriteToken"]
            if on_token is not None:
                on_token(result["rewriteToken"])

    def _apply_metadata(
        self, d: ObjectURL, info: ObjectInfo, content_type: str | None, metadata: dict[str, str] | None
    ) -> ObjectInfo:
        """Make a rewritten object carry the content type and metadata asked for, when the
        rewrite did not apply them (the emulator ignores the rewrite's object resource): a patch,
        with the keys not asked for set to null, so the given metadata replaces the old."""
        patch: dict[str, Any] = {}
        if content_type is not None and info.content_type != content_type:
            patch["contentType"] = content_type
        if metadata is not None and info.metadata != metadata:
            patch["metadata"] = {**dict.fromkeys(info.metadata), **metadata}
        if not patch:
            return info
        return self._info(self._json("PATCH", self._object_url(d), d.raw, json=patch))

    def compose(
        self,
        sources: Sequence[str],
        dst: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        d = self.parse(dst).require_key()
        parsed = [self.parse(s).require_key() for s in sources]
        if not 1 <= len(parsed) <= MAX_COMPOSE_SOURCES:
            raise InvalidArgumentError(
                f"{d.raw}: compose takes 1 to {MAX_COMPOSE_SOURCES} sources, got {len(parsed)}", url=d.raw
            )
        other = [p.raw for p in parsed if p.bucket != d.bucket]
        if other:
            raise InvalidArgumentError(f"{d.raw}: compose sources must be in bucket {d.bucket!r}: {other[0]}")
        destination: dict[str, Any] = {"contentType": content_type or "application/octet-stream"}
        if metadata:
            destination["metadata"] = dict(metadata)
        params = {"ifGenerationMatch": "0"} if if_absent else {}
        body = {"sourceObjects": [{"name": p.key} for p in parsed], "destination": destination}
        return self._info(self._json("POST", f"{self._object_url(d)}/compose", d.raw, params=params, json=body))


class _MultipartRelated:
    """A multipart/related upload body (metadata + media) streamed from a file or bytes.

    requests sends an object with ``__len__`` and ``read`` with a Content-Length and in chunks,
    so a large component is never held in memory.
    """

    def __init__(self, resource: dict[str, Any], data: Any, size: int) -> None:
        boundary = f"ferry-{uuid.uuid4().hex}"
        self.content_type = f'multipart/related; boundary="{boundary}"'
        self._head = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(resource)}\r\n--{boundary}\r\nContent-Type: {resource['contentType']}\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._data = data
        self._size = size
        self._stage = 0  # 0 head, 1 media, 2 tail, 3 done
        self._sent = 0

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def read(self, n: int = -1) -> bytes:
        if self._stage == 0:
            self._stage = 1
            if isinstance(self._data, bytes):
                self._stage = 2
                return self._head + self._data
            return self._head
        if self._stage == 1:
            want = self._size - self._sent if n < 0 else min(n, self._size - self._sent)
            chunk = self._data.read(want) if want > 0 else b""
            self._sent += len(chunk)
            if self._sent >= self._size or not chunk:
                if self._sent != self._size:
                    raise InvalidArgumentError(f"upload body ended after {self._sent} of {self._size} bytes")
                self._stage = 2
            if chunk:
                return chunk
        if self._stage == 2:
            self._stage = 3
            return self._tail
        return b""
