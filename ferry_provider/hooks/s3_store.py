"""S3 and S3-compatible stores through boto3."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO

import boto3
import botocore.exceptions as bex
import urllib3.exceptions
from botocore.config import Config

from ferry_provider.hooks.base import (
    Body,
    BufferReader,
    Capabilities,
    ObjectInfo,
    PartInfo,
    RangeReader,
    StorageHook,
    UploadInfo,
    as_stream,
    check_content_range,
    check_range_args,
)
from ferry_provider.hooks.connection import as_bool, extra_dict, extra_value
from ferry_provider.hooks.digests import b64_to_hex, etag_md5, etag_multipart_md5, etag_part_count, hex_to_b64
from ferry_provider.hooks.errors import (
    FerryError,
    InvalidArgumentError,
    InvalidRangeError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    SourceChangedError,
    TransientError,
)
from ferry_provider.hooks.log_redaction import install as install_log_redaction
from ferry_provider.hooks.s3_assume_role import assumed_role_session, role_settings
from ferry_provider.hooks.s3_lean import LeanRequests
from ferry_provider.hooks.s3_list_page import parse_list_page
from ferry_provider.hooks.socket_stream import socket_stream
from ferry_provider.hooks.url import ObjectURL

log = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30
MAX_SINGLE_REQUEST = 5 * GiB  # PutObject and CopyObject limit
PART_HEAD_CONCURRENCY = 8  # HEADs in flight when a multipart object's layout is read part by part

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "401"}
_TRANSIENT = {
    "429",
    "500",
    "502",
    "503",
    "504",
    "SlowDown",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeTooSkewed",
    "BadDigest",
    "XAmzContentSHA256Mismatch",
}
# BadDigest means the bytes were damaged on the way to the server: resending the part is the cure.


class S3Store(StorageHook):
    """S3 (and S3-compatible stores such as SeaweedFS, MinIO, Ceph) through one boto3 client.

    Without a connection (``connection()`` is None) everything comes from boto3's default chain:
    ``AWS_*`` variables, profiles, instance roles, and ``AWS_ENDPOINT_URL(_S3)`` for the endpoint.
    ``FerryS3Hook`` reads the same settings from an Airflow connection.
    """

    credential_fallback = "using boto3's default credential chain"
    schemes = ("s3",)
    capabilities = Capabilities(
        multipart_upload=True,
        part_copy=True,
        server_side_copy=True,
        min_part_size=5 * MiB,
        max_part_size=5 * GiB,
        max_parts=10_000,
        max_single_put=MAX_SINGLE_REQUEST,
    )

    def __init__(self, *, max_connections: int = 16) -> None:
        super().__init__()
        self.max_connections = max_connections
        self._client: Any = None
        self._role_arn: str | None = None
        self._lock = threading.Lock()

    # -- client -----------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """One boto3 client (thread-safe) with a pool sized for the parallelism in use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        conn = self.connection()
        extra = conn.extra_dejson if conn else {}
        self._refuse_unsupported(extra)
        # The Amazon provider's per-service settings: service_config.s3 wins over the top level.
        origin = self.credentials_origin()
        s3_config = extra_dict(extra_dict(extra, "service_config", origin), "s3", origin)
        # The top-level endpoint serves every service (STS too), as in the Amazon provider.
        shared_endpoint = extra_value(extra, "endpoint_url") or (
            conn.host if conn and conn.host and "://" in conn.host else None
        )
        endpoint = extra_value(s3_config, "endpoint_url") or shared_endpoint
        # boto3 reads these itself; they matter here only for the addressing-style default.
        custom_endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = extra_value(s3_config, "region_name") or extra_value(extra, "region_name")
        secret = (conn.password if conn else None) or extra_value(extra, "aws_secret_access_key")
        token = extra_value(extra, "aws_session_token")
        install_log_redaction().remember(secret, token)
        session = self._session(
            aws_access_key_id=(conn.login if conn else None) or extra_value(extra, "aws_access_key_id"),
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name=region,
            profile_name=extra_value(extra, "profile_name"),
        )
        verify = extra_value(extra, "verify")
        connect_timeout, read_timeout = self.timeouts(extra)
        role = role_settings(extra, self.conn_id, shared_endpoint, region, origin)
        if role is not None:
            session = assumed_role_session(session, role, origin, (connect_timeout, read_timeout))
        self._role_arn = role.role_arn if role else None
        self._lean = not any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"))
        self._lean_http = LeanRequests(self.max_connections, connect_timeout, read_timeout, verify)
        config = Config(
            max_pool_connections=self.max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # One attempt per request: Ferry's RetryPolicy retries (honouring Retry-After, which
            # botocore ignores) and knows where a part can resume; two layers would multiply.
            retries={"mode": "standard", "total_max_attempts": 1},
            s3={"addressing_style": extra_value(extra, "addressing_style") or ("path" if custom_endpoint else "auto")},
            # Ferry computes and checks CRC32C itself; asking botocore to do it again costs CPU and
            # breaks S3-compatible stores that reject the trailing checksums (boto3#4400).
            request_checksum_calculation="when_required",
            # SigV4 for presigned URLs too (botocore may presign with SigV2, which stores refuse
            # with temporary keys and AWS's newer regions refuse outright).
            signature_version="s3v4",
            response_checksum_validation="when_required",
        )
        try:
            return session.client(
                "s3",
                endpoint_url=endpoint,
                config=config,
                verify=(
                    verify
                    if isinstance(verify, str) and verify.lower() not in ("true", "false")
                    else as_bool(verify, True)
                ),
            )
        except (ValueError, bex.BotoCoreError) as exc:
            raise InvalidArgumentError(f"{self.credentials_origin()}: cannot build an S3 client: {exc}") from exc

    def native_client(self) -> Any:
        return self.client

    def store_identity(self) -> tuple[str, ...] | None:
        """The endpoint and the access key id (not the secret)."""
        client = self.client
        if self._role_arn is not None:  # its temporary keys change; the role is what they reach
            return ("s3", client.meta.endpoint_url, client.meta.region_name or "", self._role_arn)
        credentials = client._request_signer._credentials  # boto3 has no public accessor
        access_key = getattr(credentials, "access_key", None) if credentials is not None else None
        return ("s3", client.meta.endpoint_url, client.meta.region_name or "", access_key or "anonymous")

    def probe(self) -> str:
        """ListBuckets: a signed request any valid key may make. AccessDenied still proves the
        key and signature were accepted (a key limited to some buckets gets it)."""
        try:
            with self._errors("s3://"):
                count = len(self.client.list_buckets().get("Buckets", []))
        except PermissionDeniedError as exc:
            if "AccessDenied" in str(exc):
                return "credentials accepted (this key may not list buckets)"
            raise
        return f"credentials accepted; {count} bucket(s) visible"

    def _session(self, **settings: Any) -> Any:
        try:
            return boto3.session.Session(**settings)
        except bex.ProfileNotFound as exc:
            raise InvalidArgumentError(f"{self.credentials_origin()}: {exc}") from None

    def _refuse_unsupported(self, extra: dict[str, Any]) -> None:
        """The Amazon provider's ``config_kwargs`` (a botocore Config) is refused by name rather than
        ignored: Ferry sets the pool, timeouts and retries itself."""
        if extra_value(extra, "config_kwargs") is not None:
            raise InvalidArgumentError(
                f"{self.credentials_origin()}: extra config_kwargs not supported by Ferry "
                "(its timeouts are extra connect_timeout / read_timeout; retries are Ferry's own)"
            )

    # -- error mapping ----------------------------------------------------------------------
    @contextmanager
    def _errors(self, url: str, *, pinned: bool = False) -> Iterator[None]:
        """Translate botocore's exceptions into Ferry's, naming the URL and connection."""
        try:
            yield
        except FerryError:
            raise
        except bex.ClientError as exc:
            raise self._map_client_error(exc, url, pinned) from exc
        except bex.NoCredentialsError as exc:
            raise PermissionDeniedError(
                f"{url}: no AWS credentials found ({self.credentials_origin()}, then boto3's chain)", url=url
            ) from exc
        except (bex.EndpointConnectionError, bex.ConnectTimeoutError) as exc:
            raise TransientError(f"{url}: cannot reach the S3 endpoint: {exc}", url=url) from exc
        except (
            bex.ReadTimeoutError,
            bex.ConnectionClosedError,
            bex.ResponseStreamingError,
            bex.IncompleteReadError,
            urllib3.exceptions.HTTPError,
        ) as exc:
            raise TransientError(f"{url}: connection failed: {exc}", url=url) from exc
        except (bex.ParamValidationError, bex.EndpointResolutionError) as exc:
            raise InvalidArgumentError(f"{url}: {exc}", url=url) from exc
        except bex.BotoCoreError as exc:
            raise FerryError(f"{url}: {exc}", url=url) from exc

    def _map_client_error(self, exc: bex.ClientError, url: str, pinned: bool) -> FerryError:
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(err.get("Code", ""))
        status = str(meta.get("HTTPStatusCode", ""))
        message = err.get("Message") or code or status
        text = f"{url}: {code or status}: {message}"
        if code in _NOT_FOUND or status == "404":
            return NotFoundError(text, url=url)
        if code in _DENIED or status in ("401", "403"):
            return PermissionDeniedError(f"{text} ({self.credentials_origin()})", url=url)
        if code in ("PreconditionFailed", "412") or status == "412":
            if pinned:
                return SourceChangedError(f"{url} changed since it was examined ({code})", url=url)
            return PreconditionFailedError(text, url=url)
        if code == "ConditionalRequestConflict" or status == "409":
            return PreconditionFailedError(text, url=url)
        if code in ("InvalidRange", "416") or status == "416":
            return InvalidRangeError(text, url=url)
        if code in _TRANSIENT or status in _TRANSIENT:
            headers = meta.get("HTTPHeaders", {})
            retry_after = headers.get("retry-after")
            return TransientError(
                text, url=url, retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None
            )
        return InvalidArgumentError(text, url=url)

    # -- reads ------------------------------------------------------------------------------
    def head(self, url: str) -> ObjectInfo:
        u = self.parse(url).require_key()
        with self._errors(u.raw):
            resp = self.client.head_object(Bucket=u.bucket, Key=u.key, ChecksumMode="ENABLED")
        return self._info(u, resp, resp["ContentLength"])

    def _info(self, u: ObjectURL, resp: dict[str, Any], size: int) -> ObjectInfo:
        etag = (resp.get("ETag") or "").strip('"') or None
        # SSE-KMS and SSE-C ETags look like MD5s but are not; trust them only for plain objects.
        # ("aws:kms" and "aws:kms:dsse"; SSE-S3's "AES256" keeps the MD5 ETag.)
        sse = str(resp.get("ServerSideEncryption") or "")
        encrypted = sse.startswith("aws:kms") or bool(resp.get("SSECustomerAlgorithm"))
        return ObjectInfo(
            url=u.raw,
            size=size,
            etag=etag,
            version=resp.get("VersionId"),
            last_modified=resp.get("LastModified"),
            content_type=resp.get("ContentType"),
            md5=None if encrypted else etag_md5(etag),
            crc32c=b64_to_hex(resp.get("ChecksumCRC32C")),
            crc32=b64_to_hex(resp.get("ChecksumCRC32")),
            crc64nvme=b64_to_hex(resp.get("ChecksumCRC64NVME")),
            checksum_type=resp.get("ChecksumType"),
            multipart_md5=None if encrypted else etag_multipart_md5(etag),
            metadata=dict(resp.get("Metadata") or {}),
        )

    def part_sizes(self, url: str, pin: ObjectInfo) -> list[int] | None:
        """From GetObjectAttributes (ObjectParts, 1,000 per page), else, for a multipart ETag, from
        a HEAD of each part (PartNumber): AWS lists parts only for objects uploaded with a checksum.
        Stores or policies that refuse both give None, not an error."""
        u = self.parse(url).require_key()
        sizes = self._part_sizes_from_attributes(u, pin)
        if sizes is None and etag_part_count(pin.etag) >= 2:
            sizes = self._part_sizes_from_heads(u, pin, etag_part_count(pin.etag))
        if sizes is None or len(sizes) < 2 or sum(sizes) != pin.size:
            return None  # one part, or a layout that does not add up: nothing to verify against
        return sizes

    def _part_sizes_from_attributes(self, u: ObjectURL, pin: ObjectInfo) -> list[int] | None:
        kwargs: dict[str, Any] = {"Bucket": u.bucket, "Key": u.key, "ObjectAttributes": ["ObjectParts"]}
        if pin.version:
            kwargs["VersionId"] = pin.version
        sizes: list[int] = []
        marker = 0
        while True:
            try:
                with self._errors(u.raw):
                    resp = self.client.get_object_attributes(**kwargs, MaxParts=1000, PartNumberMarker=marker)
            except (NotFoundError, TransientError):
                raise
            except FerryError as exc:
                log.info("%s: the store gives no part layout (%s)", u.raw, exc)
                return None
            parts = resp.get("ObjectParts") or {}
            sizes += [int(p["Size"]) for p in parts.get("Parts") or []]
            if not parts.get("IsTruncated"):
                break
            marker = int(parts["NextPartNumberMarker"])
        total = parts.get("TotalPartsCount")
        return sizes if sizes and (total is None or total == len(sizes)) else None

    def _part_sizes_from_heads(self, u: ObjectURL, pin: ObjectInfo, count: int) -> list[int] | None:
        """HEAD ?partNumber=1..count, a few at a time, each pinned to the version ``pin`` saw."""
        kwargs: dict[str, Any] = {"Bucket": u.bucket, "Key": u.key}
        if pin.etag:
            kwargs["IfMatch"] = f'"{pin.etag}"'
        if pin.version:
            kwargs["VersionId"] = pin.version

        def size_of(number: int) -> int:
            with self._errors(u.raw, pinned=True):
                return int(self.client.head_object(**kwargs, PartNumber=number)["ContentLength"])

        try:
            with ThreadPoolExecutor(max_workers=min(PART_HEAD_CONCURRENCY, count)) as pool:
                return list(pool.map(size_of, range(1, count + 1)))
        except (NotFoundError, TransientError, SourceChangedError):
            raise
        except FerryError as exc:
            log.info("%s: the store gives no part sizes (%s)", u.raw, exc)
            return None

    def open_range(
        self, url: str, start: int = 0, end: int | None = None, pin: ObjectInfo | None = None
    ) -> RangeReader:
        u = self.parse(url).require_key()
        check_range_args(u.raw, start, end)
        kwargs: dict[str, Any] = {"Bucket": u.bucket, "Key": u.key}
        ranged = not (start == 0 and end is None)
        if ranged:
            if end is not None and end == start:
                return RangeReader.empty(u.raw, start)
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if pin is not None:
            if pin.etag:
                kwargs["IfMatch"] = f'"{pin.etag}"'
            if pin.version:
                kwargs["VersionId"] = pin.version
        if self._lean_allowed():
            reader = self._lean_range(u, kwargs, start, end, pin)
            if reader is not None:
                return reader
        with self._errors(u.raw, pinned=pin is not None):
            resp = self.client.get_object(**kwargs)
        raw = resp["Body"]._raw_stream  # urllib3 response: readinto straight from the socket
        length = resp["ContentLength"]
        return _reader(u, raw, resp.get("ContentRange") if ranged else None, length, ranged, start, end, pin)

    def _lean_allowed(self) -> bool:
        """Whether GETs, listings and single PUTs may skip botocore's request pipeline (s3_lean):
        not behind a proxy, which botocore handles and a bare pool would not."""
        self.client  # noqa: B018 - builds the client, and with it the lean pool
        return self._lean

    def _lean_range(
        self, u: ObjectURL, params: dict[str, Any], start: int, end: int | None, pin: ObjectInfo | None
    ) -> RangeReader | None:
        """GetObject signed here (s3_lean) and sent on a plain urllib3 pool, errors mapped as
        botocore's would be; None when botocore is to send it."""
        headers = {name: params[key] for key, name in (("Range", "Range"), ("IfMatch", "If-Match")) if key in params}
        query = {"versionId": params["VersionId"]} if "VersionId" in params else {}
        with self._errors(u.raw, pinned=pin is not None):
            resp = self._lean_http.get(self.client, u.bucket, u.key, query, headers)
        if resp is None:
            return None
        if resp.status >= 300:
            raise self._lean_error(resp, "GetObject", u.raw, pin is not None)
        ranged = "Range" in headers
        content_range = resp.headers.get("Content-Range") if ranged and resp.status == 206 else None
        length = int(resp.headers.get("Content-Length", "0"))
        return _reader(u, resp, content_range, length, ranged, start, end, pin)

    def _lean_error(self, resp: urllib3.BaseHTTPResponse, operation: str, url: str, pinned: bool) -> FerryError:
        """A lean request's error answer, mapped as botocore's ClientError for it would be."""
        body = resp.data[:4096].decode(errors="replace")
        resp.release_conn()
        error = {"Code": _xml_field(body, "Code") or str(resp.status), "Message": _xml_field(body, "Message")}
        meta = {"HTTPStatusCode": resp.status, "HTTPHeaders": {k.lower(): v for k, v in resp.headers.items()}}
        answer = bex.ClientError({"Error": error, "ResponseMetadata": meta}, operation)
        return self._map_client_error(answer, url, pinned)

    def list(self, url: str, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        u = self.parse(url)
        if self._lean_allowed():
            yield from self._lean_list(u, page_size)
        else:
            yield from self._listed(u, page_size)

    def _listed(self, u: ObjectURL, page_size: int, token: str | None = None) -> Iterator[ObjectInfo]:
        """The listing through botocore's paginator, from ``token`` when given."""
        paging: dict[str, Any] = {"PageSize": page_size}
        if token:
            paging["StartingToken"] = token
        pages = self._pages(u, "list_objects_v2", Prefix=u.key, PaginationConfig=paging)
        for page in pages:
            for item in page.get("Contents", []):
                etag = (item.get("ETag") or "").strip('"') or None
                yield ObjectInfo(
                    url=u.sibling(item["Key"]),
                    size=item["Size"],
                    etag=etag,
                    last_modified=item.get("LastModified"),
                    md5=etag_md5(etag),
                )

    def _lean_list(self, u: ObjectURL, page_size: int) -> Iterator[ObjectInfo]:
        """ListObjectsV2 pages signed here (s3_lean) and parsed by s3_list_page, one page in
        memory; botocore's paginator takes over from the page it is handed."""
        query = {"list-type": "2", "prefix": u.key, "max-keys": str(page_size), "encoding-type": "url"}
        tokens: set[str] = set()
        while True:
            with self._errors(u.raw):
                resp = self._lean_http.get(self.client, u.bucket, None, query, {})
                if resp is not None and resp.status >= 300:
                    raise self._lean_error(resp, "ListObjectsV2", u.raw, False)
                body = resp.data if resp is not None else None
            if body is None:
                yield from self._listed(u, page_size, query.get("continuation-token"))
                return
            try:
                page = parse_list_page(body)
            except ValueError as exc:
                raise TransientError(f"{u.raw}: unreadable listing page: {exc}", url=u.raw) from None
            if page.next_token is not None and page.next_token in tokens:
                # botocore's paginator stops the same way: the listing would go round forever.
                raise FerryError(f"{u.raw}: the store sent the same continuation token twice", url=u.raw)
            for item in page.objects:
                yield ObjectInfo(
                    url=u.sibling(item.key),
                    size=item.size,
                    etag=item.etag,
                    last_modified=item.last_modified,
                    md5=etag_md5(item.etag),
                )
            if page.next_token is None:
                return
            tokens.add(page.next_token)
            query["continuation-token"] = page.next_token

    def _pages(self, u: ObjectURL, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The pages of a listing ``operation`` in ``u``'s bucket, fetched one at a time as the
        caller reads them (never the whole listing in memory), each request's errors mapped."""
        pages = iter(self.client.get_paginator(operation).paginate(Bucket=u.bucket, **kwargs))
        while True:
            with self._errors(u.raw):
                page = next(pages, None)
            if page is None:
                return
            yield page

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
        if size > MAX_SINGLE_REQUEST:
            raise InvalidArgumentError(f"{u.raw}: {size} bytes exceed S3's single PUT limit; use multipart")
        args = self._write_args(content_type, metadata, crc32c, if_absent)
        # Signed here when a CRC32C goes with it for the store to check, and the body can be
        # rewound for botocore (s3_lean may read it to hash it, or hand the bucket back).
        start = None if isinstance(data, bytes) or not data.seekable() else data.tell()
        lean = crc32c and self._lean_allowed() and (isinstance(data, bytes) or start is not None)
        answer = self._lean_put(u, data, size, args) if lean else None
        if answer is None:
            if start is not None:
                data.seek(start)
            with self._errors(u.raw):
                answer = self.client.put_object(Bucket=u.bucket, Key=u.key, Body=data, ContentLength=size, **args)
        return self._info(u, {**answer, "ContentType": content_type, "Metadata": metadata}, size)

    def _lean_put(self, u: ObjectURL, data: bytes | BinaryIO, size: int, args: dict[str, Any]) -> dict[str, Any] | None:
        """PutObject signed here (s3_lean); its answer's headers as botocore's fields, or None when
        botocore is to send it."""
        headers = {f"x-amz-meta-{k}": str(v) for k, v in args.get("Metadata", {}).items()}
        for field, header in _PUT_HEADERS.items():
            if field in args:
                headers[header] = args[field]
        with self._errors(u.raw):  # urllib3's errors too
            resp = self._lean_http.put(self.client, u.bucket, u.key, data, size, headers)
        if resp is None:
            return None
        if resp.status >= 300:
            raise self._lean_error(resp, "PutObject", u.raw, False)
        return {field: resp.headers[header] for field, header in _ANSWER_HEADERS.items() if header in resp.headers}

    @staticmethod
    def _write_args(
        content_type: str | None, metadata: dict[str, str] | None, crc32c: str | None, if_absent: bool
    ) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if content_type:
            _check_header_value("content type", content_type)
            args["ContentType"] = content_type
        if metadata:
            for key, value in metadata.items():
                # S3 sends metadata as HTTP headers, which carry ASCII only.
                if not (key.isascii() and str(value).isascii()):
                    raise InvalidArgumentError(
                        f"metadata {key!r}: S3 metadata keys and values must be ASCII (got {value!r})"
                    )
                _check_header_value(f"metadata {key!r}", str(value))
            args["Metadata"] = dict(metadata)
        if crc32c:
            # Sent with the algorithm name so the store keeps it and rejects damaged bytes.
            args["ChecksumAlgorithm"] = "CRC32C"
            args["ChecksumCRC32C"] = hex_to_b64(crc32c)
        if if_absent:
            args["IfNoneMatch"] = "*"
        return args

    def delete(self, url: str) -> None:
        u = self.parse(url).require_key()
        with self._errors(u.raw):
            self.client.delete_object(Bucket=u.bucket, Key=u.key)

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
        """CopyObject, pinned to the version and ETag seen; the new object gets a CRC32C of its
        own. Above 5 GiB, S3 copies only in parts: the engine's UploadPartCopy job does that."""
        s = self.parse(src).require_key()
        d = self.parse(dst).require_key()
        info = pin or self.head(s.raw)
        if info.size is not None and info.size > MAX_SINGLE_REQUEST:
            raise InvalidArgumentError(f"{s.raw}: CopyObject takes at most 5 GiB; copy it in parts", url=s.raw)
        source: dict[str, str] = {"Bucket": s.bucket, "Key": s.key}
        if info.version:
            source["VersionId"] = info.version
        kwargs: dict[str, Any] = {"Bucket": d.bucket, "Key": d.key, "CopySource": source}
        if checksum:
            kwargs["ChecksumAlgorithm"] = "CRC32C"
        if info.etag:
            kwargs["CopySourceIfMatch"] = f'"{info.etag}"'
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        if content_type is not None or metadata is not None:
            kwargs["MetadataDirective"] = "REPLACE"
            kwargs["ContentType"] = content_type or info.content_type or "binary/octet-stream"
            kwargs["Metadata"] = dict(info.metadata if metadata is None else metadata)
        with self.copy_preconditions(s.raw, d.raw, if_absent), self._errors(d.raw):
            self.client.copy_object(**kwargs)
        return self.head(d.raw)

    # -- multipart --------------------------------------------------------------------------
    def create_multipart(
        self,
        url: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        checksum: bool = True,
    ) -> str:
        u = self.parse(url).require_key()
        kwargs: dict[str, Any] = {"Bucket": u.bucket, "Key": u.key}
        if checksum:
            kwargs.update(ChecksumAlgorithm="CRC32C", ChecksumType="FULL_OBJECT")
        kwargs.update(self._write_args(content_type, metadata, None, False))
        with self._errors(u.raw):
            return self.client.create_multipart_upload(**kwargs)["UploadId"]

    def upload_part(
        self, url: str, upload_id: str, number: int, body: Body, *, size: int, crc32c: str | None = None
    ) -> PartInfo:
        u = self.parse(url).require_key()
        data = as_stream(body)
        kwargs: dict[str, Any] = {
            "Bucket": u.bucket,
            "Key": u.key,
            "UploadId": upload_id,
            "PartNumber": number,
            "Body": data,
            "ContentLength": size,
        }
        if crc32c:
            kwargs["ChecksumAlgorithm"] = "CRC32C"
            kwargs["ChecksumCRC32C"] = hex_to_b64(crc32c)
        with self._errors(u.raw):
            resp = self.client.upload_part(**kwargs)
        return PartInfo(number, resp["ETag"].strip('"'), size, b64_to_hex(resp.get("ChecksumCRC32C")) or crc32c)

    def upload_part_copy(
        self, url: str, upload_id: str, number: int, src: str, start: int, end: int, pin: ObjectInfo | None
    ) -> PartInfo:
        u = self.parse(url).require_key()
        s = self.parse(src).require_key()
        source: dict[str, str] = {"Bucket": s.bucket, "Key": s.key}
        kwargs: dict[str, Any] = {
            "Bucket": u.bucket,
            "Key": u.key,
            "UploadId": upload_id,
            "PartNumber": number,
            "CopySource": source,
            "CopySourceRange": f"bytes={start}-{end - 1}",
        }
        if pin is not None:
            if pin.version:
                source["VersionId"] = pin.version
            if pin.etag:
                kwargs["CopySourceIfMatch"] = f'"{pin.etag}"'
        with self.copy_preconditions(s.raw, u.raw), self._errors(u.raw):
            resp = self.client.upload_part_copy(**kwargs)["CopyPartResult"]
        return PartInfo(number, resp["ETag"].strip('"'), end - start, b64_to_hex(resp.get("ChecksumCRC32C")))

    def list_parts(self, url: str, upload_id: str) -> list[PartInfo]:
        u = self.parse(url).require_key()
        return [
            PartInfo(p["PartNumber"], p["ETag"].strip('"'), p["Size"], b64_to_hex(p.get("ChecksumCRC32C")))
            for page in self._pages(u, "list_parts", Key=u.key, UploadId=upload_id)
            for p in page.get("Parts", [])
        ]

    def complete_multipart(
        self,
        url: str,
        upload_id: str,
        parts: Sequence[PartInfo],
        *,
        crc32c: str | None = None,
        size: int | None = None,
        if_absent: bool = False,
    ) -> ObjectInfo:
        u = self.parse(url).require_key()
        listed = []
        for p in sorted(parts, key=lambda p: p.number):
            entry: dict[str, Any] = {"PartNumber": p.number, "ETag": f'"{p.etag}"'}
            if p.crc32c:
                entry["ChecksumCRC32C"] = hex_to_b64(p.crc32c)
            listed.append(entry)
        kwargs: dict[str, Any] = {
            "Bucket": u.bucket,
            "Key": u.key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": listed},
        }
        if crc32c:
            kwargs["ChecksumCRC32C"] = hex_to_b64(crc32c)
            kwargs["ChecksumType"] = "FULL_OBJECT"
        if size is not None:
            kwargs["MpuObjectSize"] = size
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        with self._errors(u.raw):
            self.client.complete_multipart_upload(**kwargs)
        return self.head(u.raw)

    def abort_multipart(self, url: str, upload_id: str) -> None:
        u = self.parse(url).require_key()
        try:
            with self._errors(u.raw):
                self.client.abort_multipart_upload(Bucket=u.bucket, Key=u.key, UploadId=upload_id)
        except NotFoundError:
            pass  # already aborted or completed: the goal (no orphan) holds

    def list_multipart_uploads(self, url: str) -> Iterator[UploadInfo]:
        u = self.parse(url)
        for page in self._pages(u, "list_multipart_uploads", Prefix=u.key):
            for up in page.get("Uploads", []):
                yield UploadInfo(u.sibling(up["Key"]), up["UploadId"], up.get("Initiated"))


def _reader(
    u: ObjectURL,
    raw: Any,
    content_range: str | None,
    content_length: int,
    ranged: bool,
    start: int,
    end: int | None,
    pin: ObjectInfo | None,
) -> RangeReader:
    """A RangeReader over a GetObject answer's body (a urllib3 response), its length checked
    against the range asked for and the pinned size."""
    if content_range:
        length = check_content_range(u.raw, content_range, start, end, pin)
    else:
        length = content_length
        if pin is not None and pin.size is not None and not ranged and length != pin.size:
            raw.close()
            raise SourceChangedError(f"{u.raw} changed: size was {pin.size}, now {length}", url=u.raw)

    def release(complete: bool) -> None:
        if complete:
            raw.release_conn()
        else:
            raw.close()

    return RangeReader(
        socket_stream(raw),
        url=u.raw,
        start=start,
        length=length,
        release=release,
        stream_errors=(urllib3.exceptions.HTTPError, bex.BotoCoreError),
    )


# PutObject's arguments (as _write_args gives them) and answer fields, as HTTP headers.
_PUT_HEADERS = {
    "ContentType": "Content-Type",
    "ChecksumAlgorithm": "x-amz-sdk-checksum-algorithm",
    "ChecksumCRC32C": "x-amz-checksum-crc32c",
    "IfNoneMatch": "If-None-Match",
}
_ANSWER_HEADERS = {
    "ETag": "ETag",
    "VersionId": "x-amz-version-id",
    "ChecksumCRC32C": "x-amz-checksum-crc32c",
    "ChecksumType": "x-amz-checksum-type",
    "ServerSideEncryption": "x-amz-server-side-encryption",
    "SSECustomerAlgorithm": "x-amz-server-side-encryption-customer-algorithm",
}


def _check_header_value(name: str, value: str) -> None:
    """A header value cannot hold control characters (CR/LF would end the header); tabs pass."""
    if any(c != "\t" and (ord(c) < 32 or ord(c) == 127) for c in value):
        raise InvalidArgumentError(f"{name}: control characters (such as CR or LF) cannot be sent in an S3 header")


def _xml_field(body: str, name: str) -> str:
    """One field of an S3 XML error body ('' when absent): enough to map the error."""
    start = body.find(f"<{name}>")
    end = body.find(f"</{name}>", start)
    return body[start + len(name) + 2 : end] if start >= 0 and end > start else ""
