"""Parsing of the object URLs Ferry accepts: s3://, gs://, http(s)://, file:// and plain paths."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from ferry_provider.hooks.errors import InvalidArgumentError, scrub

BUCKET_SCHEMES = ("s3", "gs")
SUPPORTED_SCHEMES = ("s3", "gs", "http", "https", "file")

# S3 and GCS agree on lower-case letters, digits, dots, dashes (and GCS underscores); GCS allows
# dotted names up to 222 characters. Stricter per-store rules are the server's to enforce.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class ObjectURL:
    """A parsed object location. ``bucket`` is empty for http(s) and file URLs."""

    scheme: str
    bucket: str
    key: str
    raw: str

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def path(self) -> str:
        """The local filesystem path (file URLs only)."""
        return self.key

    def require_key(self) -> ObjectURL:
        """Raise unless the URL names an object (not just a bucket or prefix)."""
        if not self.key or (self.scheme in BUCKET_SCHEMES and self.key.endswith("/")):
            raise InvalidArgumentError(f"URL {self.raw!r} names no object: the key is empty", url=self.raw)
        return self

    def sibling(self, key: str) -> str:
        """The URL of ``key`` in this URL's bucket (bucket stores only)."""
        if self.scheme not in BUCKET_SCHEMES:
            raise InvalidArgumentError(f"URL {self.raw!r} has no bucket to name {key!r} in", url=self.raw)
        return f"{self.scheme}://{self.bucket}/{key}"

    def __str__(self) -> str:
        return self.raw


def redact(url: str) -> str:
    """The URL without any user:password part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def parse_url(url: str | os.PathLike[str]) -> ObjectURL:
    """Parse and validate ``url``; raise InvalidArgumentError naming the URL and the fault."""
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgumentError(f"URL must be a non-empty string, got {url!r}")
    # Taken as given: a key or file name may begin or end with a space, and URL parsers silently
    # drop tabs and line breaks, which would name another object than the one meant.
    text = url
    bad = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        where = scrub(redact(text)).replace(bad, repr(bad)[1:-1])
        raise InvalidArgumentError(f"URL {where!r} contains the control character {bad!r}", url=scrub(redact(text)))
    if "://" not in text:
        # A plain path is a local file; refuse things that look like an unknown scheme.
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) and not re.match(r"^[A-Za-z]:[\\/]", text):
            scheme = text.split(":", 1)[0]
            if scheme.lower() in SUPPORTED_SCHEMES:
                shape = f"{scheme}://BUCKET/KEY" if scheme.lower() in BUCKET_SCHEMES else f"{scheme}://..."
                shown = scrub(text) if "@" not in text else f"{scheme}:..."  # user:secret@ must not be echoed
                raise InvalidArgumentError(f"URL {shown!r} is malformed: expected {shape}", url=shown)
            shown = scrub(text) if "@" not in text else f"{scheme}:..."
            raise InvalidArgumentError(
                f"URL {shown!r} has unsupported scheme {scheme!r}; use one of {', '.join(SUPPORTED_SCHEMES)}",
                url=shown,
            )
        return ObjectURL("file", "", os.path.abspath(os.path.expanduser(text)), text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise InvalidArgumentError(
            f"URL {redact(text)!r} has unsupported scheme {scheme!r}; use one of {', '.join(SUPPORTED_SCHEMES)}",
            url=redact(text),
        )
    if scheme != "http" and scheme != "https" and "@" in parts.netloc:
        shown = redact(text) if parts.password is not None else f"{scheme}://***@{parts.netloc.rsplit('@', 1)[1]}/..."
        raise InvalidArgumentError(
            f"URL {shown!r} carries credentials; give them through a connection or the environment", url=shown
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidArgumentError(f"file URL {text!r} must not name a host ({parts.netloc!r})", url=text)
        # From the text, not urlsplit's path: '?' and '#' in a file name belong to it.
        after = text[len(parts.scheme) + 3 :]
        path = unquote(after[len(parts.netloc) :])
        if not path:
            raise InvalidArgumentError(f"file URL {text!r} has no path", url=text)
        return ObjectURL("file", "", os.path.abspath(path), text)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidArgumentError(f"URL {redact(text)!r} has no host", url=redact(text))
        return ObjectURL(scheme, "", parts.path or "/", text)
    # The bucket and key are cut from the text itself: urlsplit drops an empty query or fragment,
    # so the key 'x?' would name the object 'x'. Every '?' and '#' belongs to the key.
    after = text[len(parts.scheme) + 3 :]
    bucket, _, key = after.partition("/")
    if not bucket:
        raise InvalidArgumentError(f"URL {text!r} has no bucket: expected {scheme}://BUCKET/KEY", url=text)
    if not _BUCKET_RE.match(bucket):
        raise InvalidArgumentError(
            f"URL {text!r}: {bucket!r} is not a valid bucket name "
            "(3-222 characters: lower-case letters, digits, '.', '-', '_')",
            url=text,
        )
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidArgumentError(f"URL {text[:80]!r}...: key longer than {MAX_KEY_BYTES} bytes", url=text)
    if "\r" in key or "\n" in key:
        raise InvalidArgumentError(f"URL {text!r}: key contains a line break", url=text)
    return ObjectURL(scheme, bucket, key, text)


def local_path(text: str | os.PathLike[str], what: str) -> str:
    """The absolute local path a plain path or a file:// URL names; ``what`` (the argument's
    name) is in the error when ``text`` names a remote object instead."""
    parsed = parse_url(text)
    if not parsed.is_local:
        where = redact(parsed.raw)
        raise InvalidArgumentError(f"{what} {where!r} must be a local path or a file:// URL", url=where)
    return parsed.path
