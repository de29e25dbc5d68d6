"""Conversions between the digest encodings stores use and Ferry's one form: lower-case hex.

S3 and GCS send CRC32C, CRC64NVME and MD5 values as base64 of the big-endian bytes; S3 ETags
and most tools show hex. Ferry keeps hex everywhere (ObjectInfo, manifests, CLI output) and
converts at the store's edge. A composite S3 checksum keeps its part count: ``<hex>-<N>``.
"""

from __future__ import annotations

import base64
import binascii

from ferry_provider.hooks.errors import InvalidArgumentError


def b64_to_hex(value: str | None) -> str | None:
    """``'yZRlqg=='`` -> ``'c99465aa'``; ``'<b64>-3'`` -> ``'<hex>-3'``; None stays None."""
    if not value:
        return None
    body, sep, parts = value.partition("-")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgumentError(f"digest {value!r} is not valid base64") from exc
    return raw.hex() + (f"-{parts}" if sep else "")


def hex_to_b64(value: str) -> str:
    """``'c99465aa'`` -> ``'yZRlqg=='`` (the form S3 and GCS expect in requests)."""
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError as exc:
        raise InvalidArgumentError(f"digest {value!r} is not hex") from exc


def etag_md5(etag: str | None) -> str | None:
    """The MD5 hidden in an ETag, when it is one: 32 hex digits, no ``-N`` multipart suffix."""
    if not etag:
        return None
    bare = etag.strip('"').lower()
    if len(bare) == 32 and all(c in "0123456789abcdef" for c in bare):
        return bare
    return None


def etag_multipart_md5(etag: str | None) -> str | None:
    """An S3 multipart ETag, ``<32 hex>-<N>``: the MD5 of the N parts' MD5 digests, one after
    another. Checking it needs the sizes the object was uploaded in."""
    if not etag:
        return None
    body, sep, parts = etag.strip('"').lower().partition("-")
    if sep and parts.isdigit() and int(parts) >= 1 and etag_md5(body):
        return f"{body}-{int(parts)}"
    return None


def etag_part_count(etag: str | None) -> int:
    """The ``N`` of a multipart ETag ``…-N``; 0 for any other ETag."""
    multipart = etag_multipart_md5(etag)
    return int(multipart.rsplit("-", 1)[1]) if multipart else 0


def parse_digest_header(value: str) -> dict[str, str]:
    """``'crc32c=yZRlqg==,md5=XrY7u+Ae7tCTyyK7j1rNww=='`` (x-goog-hash, RFC 3230 Digest) ->
    ``{'crc32c': 'c99465aa', 'md5': '5eb63bbbe01eeed093cb22bb8f5acdc3'}``; other names ignored."""
    out: dict[str, str] = {}
    for item in value.split(","):
        name, sep, digest = item.strip().partition("=")
        if sep and digest and name.lower() in ("crc32c", "md5"):
            out[name.lower()] = b64_to_hex(digest) or ""
    return out
