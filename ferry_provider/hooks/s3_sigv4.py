"""AWS Signature Version 4 for S3 requests sent outside botocore (header authorization).

Signing a GET through botocore costs about 0.25 ms of CPU (its endpoint rules run per request,
then its signer), and a presigned URL then costs urllib3 as much again to re-encode its long
query string: together half the CPU of fetching a 64 KiB object. Signing here is the
specification's few hashes with the day's key cached. What botocore knows (endpoint, addressing
style, signing region and name) is learnt once per bucket from one presigned URL, so both agree.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ALGORITHM = "AWS4-HMAC-SHA256"
# A key no one names an object: only its position in the presigned URL's path is read.
PROBE_KEY = "ferry-sigv4-probe"


@dataclass(frozen=True)
class BucketTarget:
    """Where a bucket's objects are addressed and how requests to it are signed."""

    scheme: str
    host: str  # as the Host header carries it (with the port when not the default)
    host_name: str
    port: int | None
    base_path: str  # the path before "/<key>": "" (virtual-hosted) or "/bucket" (path style)
    region: str
    service: str

    @classmethod
    def from_presigned(cls, url: str) -> BucketTarget | None:
        """The target a presigned GET of PROBE_KEY shows; None when it does not have the expected
        shape (botocore then keeps signing for this bucket)."""
        parts = urlsplit(url)
        suffix = "/" + PROBE_KEY
        credential = parse_qs(parts.query).get("X-Amz-Credential", [""])[0].split("/")
        if not parts.path.endswith(suffix) or len(credential) != 5 or credential[4] != "aws4_request":
            return None
        return cls(
            parts.scheme,
            parts.netloc,
            parts.hostname or "",
            parts.port,
            parts.path[: -len(suffix)],
            credential[2],
            credential[3],
        )

    def path(self, key: str) -> str:
        """The request path of ``key``, encoded as S3 signs it (no dot-segment folding)."""
        return f"{self.base_path}/{quote(key, safe='/~')}"


class SigV4Signer:
    """Adds SigV4 authorization headers; the signing key is derived once a day per scope."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._lock = threading.Lock()

    def sign(
        self,
        method: str,
        target: BucketTarget,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        credentials: tuple[str, str, str | None],
        *,
        payload_sha256: str = EMPTY_SHA256,
        now: float | None = None,
    ) -> tuple[str, dict[str, str]]:
        """The request target (path and query string) and every header to send, authorization
        included. ``credentials``: access key, secret key, session token (or None)."""
        access_key, secret_key, token = credentials
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        day = stamp[:8]
        sent = {name.lower(): value.strip() for name, value in headers.items()}
        sent.update({"host": target.host, "x-amz-date": stamp, "x-amz-content-sha256": payload_sha256})
        if token:
            sent["x-amz-security-token"] = token
        names = sorted(sent)
        # Values are signed with each run of spaces or tabs as one space (and sent as given).
        canonical_headers = "".join(f"{name}:{' '.join(sent[name].split())}\n" for name in names)
        canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
        canonical = "\n".join(
            (
                method,
                path,
                canonical_query,
                canonical_headers,
                ";".join(names),
                payload_sha256,
            )
        )
        scope = f"{day}/{target.region}/{target.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(
            self._key(secret_key, day, target.region, target.service), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        sent["authorization"] = (
            f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return (f"{path}?{canonical_query}" if canonical_query else path), sent

    def _key(self, secret: str, day: str, region: str, service: str) -> bytes:
        scope = (secret, day, region, service)
        key = self._keys.get(scope)
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, region, service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            with self._lock:
                if len(self._keys) > 16:  # yesterday's keys and rotated secrets
                    self._keys.clear()
                self._keys[scope] = key
        return key
