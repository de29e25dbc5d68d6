"""The one small exception hierarchy every storage hook maps its client's errors into.

The engine decides what to do from the class alone (retry a TransientError, restart on
SourceChangedError, fail on the rest), so no engine code ever inspects a client's error codes.
Messages name the URL or connection and never carry credentials.
"""

from __future__ import annotations

import re

# user:password@ inside any URL (an endpoint_url, a proxy, an HTTP source): client libraries
# quote such URLs in their messages, and those messages end up in Ferry's. Secrets may hold '/',
# '+', spaces or quotes, so everything from the scheme to the '@' goes: scrubbing too much beats
# printing a secret. Without a scheme (``user:secret@host``) the pair before the '@' goes too.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^@\n]*@(?=[\w\[])")
_BARE_CREDENTIALS = re.compile(r"(?<![\w/*])[\w.%+-]+:[^\s@/]+@(?=[\w\[])")


def scrub(text: str) -> str:
    """``text`` with any credentials inside URLs replaced by ``***``."""
    return _BARE_CREDENTIALS.sub("***@", _URL_CREDENTIALS.sub(r"\g<scheme>***@", text))


class FerryError(Exception):
    """Base class: a storage operation failed. ``url`` names the object or prefix concerned.

    Messages and URLs are scrubbed of URL credentials here, once, for every error Ferry raises."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(scrub(str(message)))
        self.url = scrub(url) if url else url


class InvalidArgumentError(FerryError, ValueError):
    """The caller passed something malformed (a URL without a bucket, an empty key, a bad range)."""


class NotFoundError(FerryError):
    """The object or bucket does not exist."""


class MissingConnectionError(InvalidArgumentError):
    """A connection id names no connection: configuration, which waiting will not mend."""


class PermissionDeniedError(FerryError):
    """The store refused the credentials or the operation (401/403, bad signature)."""


class PreconditionFailedError(FerryError):
    """A conditional request failed: the destination exists (no-clobber) or a pin did not match."""


class SourceChangedError(PreconditionFailedError):
    """The object changed between ``head`` and a pinned read (different ETag, generation or size)."""


class InvalidRangeError(InvalidArgumentError):
    """A ranged read started at or beyond the end of the object (HTTP 416)."""


class RangeNotSupportedError(FerryError):
    """The server answered a Range request with the whole body (200); read it as one stream."""


class ReadOnlyStoreError(InvalidArgumentError):
    """A write was asked of a store that can only be read (HTTP sources)."""


class TransientError(FerryError):
    """Worth retrying: connection failure, timeout, throttling (429) or a 5xx answer.

    ``retry_after`` carries the server's Retry-After, in seconds, when it sent one.
    """

    def __init__(self, message: str, *, url: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, url=url)
        self.retry_after = retry_after

    def is_throttle(self) -> bool:
        """The store asked to slow down (503 SlowDown, 429, or any answer with Retry-After)."""
        return self.retry_after is not None or any(sign in str(self) for sign in THROTTLE_SIGNS)


THROTTLE_SIGNS = ("SlowDown", "TooManyRequests", "RequestLimitExceeded", "503", "429")


class TruncatedBodyError(TransientError):
    """The connection closed before the announced number of bytes arrived."""


class ChecksumMismatchError(FerryError):
    """The bytes transferred do not match the digest the store (or the caller) expects."""
