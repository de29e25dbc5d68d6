"""S3 requests outside botocore's request pipeline, for the ones every object pays for.

botocore spends about 1.2 ms of CPU on a PutObject and 0.5 ms on a GetObject before and after
the bytes (its event hooks, endpoint rules, signer and response parser run for each request): on
a bulk run of small objects that, not the network, decides how many objects a second one worker
moves. GETs (objects and listing pages) and single PUTs are signed here (s3_sigv4) with the
client's own credentials, for the endpoint and addressing botocore resolved for the bucket, and
sent on a urllib3 pool with the client's timeouts and TLS settings. Where botocore describes a
bucket in a way not understood here, or S3 answers that the bucket lives in another region,
botocore sends that bucket's requests (None from these methods says so).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, BinaryIO

import urllib3

from ferry_provider.hooks.connection import as_bool
from ferry_provider.hooks.s3_sigv4 import EMPTY_SHA256, PROBE_KEY, BucketTarget, SigV4Signer

log = logging.getLogger(__name__)

# A PUT body is read and sent in blocks this large (urllib3's default is 16 KiB).
SEND_BLOCK = 1 << 20
# Over TLS a PUT's body is not hashed into the signature (TLS and the CRC32C header the store
# checks protect it); over plain HTTP its SHA-256 is signed, as botocore does.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Errors with which S3 says a bucket is answered elsewhere (another region or endpoint).
ELSEWHERE = ("AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "PermanentRedirect")


class LeanRequests:
    def __init__(self, size: int, connect: float, read: float, verify: Any) -> None:
        kwargs: dict[str, Any] = {"maxsize": size, "timeout": urllib3.Timeout(connect=connect, read=read)}
        if isinstance(verify, str) and verify.lower() not in ("true", "false"):
            kwargs.update(cert_reqs="CERT_REQUIRED", ca_certs=verify)
        elif not as_bool(verify, True):
            kwargs["cert_reqs"] = "CERT_NONE"
        self.pool = urllib3.PoolManager(retries=False, blocksize=SEND_BLOCK, **kwargs)
        self._signer = SigV4Signer()
        self._targets: dict[str, BucketTarget | None] = {}

    def get(
        self, client: Any, bucket: str, key: str | None, query: dict[str, str], headers: dict[str, str]
    ) -> urllib3.BaseHTTPResponse | None:
        """GET ``key`` in ``bucket`` (the bucket itself when None, for listings), the body left
        unread; None when botocore is to send it (now, and from then on for this bucket)."""
        target = self._target(client, bucket)
        if target is None:
            return None
        signed = self._signed(client, target, "GET", key, query, headers, EMPTY_SHA256)
        if signed is None:
            return None
        pool, request_target, sent = signed
        resp = pool.urlopen(
            "GET", request_target, headers=sent, preload_content=False, decode_content=False, redirect=False
        )
        return None if self._answered_elsewhere(bucket, target, resp) else resp

    def put(
        self, client: Any, bucket: str, key: str, body: bytes | BinaryIO, size: int, headers: dict[str, str]
    ) -> urllib3.BaseHTTPResponse | None:
        """PUT ``size`` bytes of ``body`` (the answer read whole); None when botocore is to send
        it, and then ``body`` may have been read (a caller rewinds it)."""
        target = self._target(client, bucket)
        if target is None:
            return None
        payload = UNSIGNED_PAYLOAD if target.scheme == "https" else _sha256_of(body)
        if payload is None:
            return None
        sent = {**headers, "Content-Length": str(size)}
        signed = self._signed(client, target, "PUT", key, {}, sent, payload)
        if signed is None:
            return None
        pool, request_target, sent = signed
        resp = pool.urlopen("PUT", request_target, body=body, headers=sent, redirect=False)
        return None if self._answered_elsewhere(bucket, target, resp) else resp

    def _signed(
        self,
        client: Any,
        target: BucketTarget,
        method: str,
        key: str | None,
        query: dict[str, str],
        headers: dict[str, str],
        payload: str,
    ) -> tuple[urllib3.HTTPConnectionPool, str, dict[str, str]] | None:
        """The pool, request target and headers of a signed request; None without credentials
        (botocore then says why)."""
        credentials = client._request_signer._credentials  # boto3 has no public accessor
        if credentials is None:
            return None
        frozen = credentials.get_frozen_credentials()  # renews expiring keys first
        path = target.path(key) if key is not None else target.base_path or "/"
        keys = (frozen.access_key, frozen.secret_key, frozen.token)
        request_target, sent = self._signer.sign(method, target, path, query, headers, keys, payload_sha256=payload)
        # The pool itself, given a path: PoolManager would re-parse the URL and fold "." and ".."
        # segments, which are part of S3 keys.
        return self.pool.connection_from_host(target.host_name, target.port, target.scheme), request_target, sent

    def _answered_elsewhere(self, bucket: str, target: BucketTarget, resp: urllib3.BaseHTTPResponse) -> bool:
        """Whether S3 says the bucket is in another region or behind another endpoint (a client
        set to the wrong region): botocore follows such answers and learns where the bucket is,
        so from now on it sends this bucket's requests."""
        if resp.status not in (301, 307, 400):
            return False
        region = resp.headers.get("x-amz-bucket-region")
        if resp.status == 400:
            body = resp.data[:4096]  # kept by the response: still there for the error's mapping
            if not (region and region != target.region) and not any(code.encode() in body for code in ELSEWHERE):
                return False
        resp.release_conn()
        self._targets[bucket] = None
        log.info("s3://%s: answered from another region or endpoint; botocore sends its requests", bucket)
        return True

    def _target(self, client: Any, bucket: str) -> BucketTarget | None:
        if bucket not in self._targets:
            probe = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": PROBE_KEY})
            self._targets[bucket] = BucketTarget.from_presigned(probe)
        return self._targets[bucket]


def _sha256_of(body: bytes | BinaryIO) -> str | None:
    """The body's SHA-256, read through and rewound; None for a stream that cannot be rewound."""
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()
    if not (hasattr(body, "seekable") and body.seekable()):
        return None
    start = body.tell()
    digest = hashlib.sha256()
    while chunk := body.read(SEND_BLOCK):
        digest.update(chunk)
    body.seek(start)
    return digest.hexdigest()
