"""The requests plumbing shared by the GCS and HTTP hooks: pooled sessions and error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
import urllib3.exceptions
import urllib3.response
from requests.adapters import HTTPAdapter

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

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,
    requests.exceptions.RequestException,
)


def mount_pool(session: requests.Session, max_connections: int) -> requests.Session:
    """Size the connection pool for the parallelism in use.

    No retries here: every caller retries through ``transfer.retry.RetryPolicy``, which honours
    Retry-After and knows where a streamed body can resume; two layers would multiply attempts.
    """
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max_connections, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def status_error(resp: requests.Response, url: str, *, pinned: bool = False, what: str = "") -> FerryError:
    """A Ferry error for a non-success answer; ``what`` adds context such as a connection id."""
    status = resp.status_code
    detail = _server_message(resp)
    text = f"{url}: HTTP {status} {resp.reason or ''}".rstrip() + (f": {detail}" if detail else "") + what
    if status == 404:
        return NotFoundError(text, url=url)
    if status in (401, 403):
        return PermissionDeniedError(text, url=url)
    if status == 412:
        if pinned:
            return SourceChangedError(f"{url} changed since it was examined (HTTP 412)", url=url)
        return PreconditionFailedError(text, url=url)
    if status == 409:
        return PreconditionFailedError(text, url=url)
    if status == 416:
        return InvalidRangeError(text, url=url)
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(text, url=url, retry_after=retry_after(resp))
    return InvalidArgumentError(text, url=url)


def _server_message(resp: requests.Response) -> str:
    """The server's own short explanation (GCS JSON error message), when it gave one."""
    if "json" not in resp.headers.get("Content-Type", ""):
        return ""
    try:
        body = resp.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:300]
    return ""


@contextmanager
def request_errors(url: str) -> Iterator[None]:
    """Map requests' connection-level exceptions; messages carry no headers and no credentials."""
    try:
        yield
    except FerryError:
        raise
    except requests.exceptions.SSLError as exc:
        raise PermissionDeniedError(f"{url}: TLS verification failed: {type(exc).__name__}", url=url) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise TransientError(f"{url}: cannot reach the server ({type(exc).__name__})", url=url) from exc
    except requests.exceptions.InvalidURL as exc:
        raise InvalidArgumentError(f"{url}: invalid URL", url=url) from exc
    except requests.exceptions.TooManyRedirects as exc:
        # A redirect loop answers the same way every time: retrying it only wastes the budget.
        raise FerryError(f"{url}: too many redirects (a redirect loop?)", url=url) from exc
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise TransientError(f"{url}: request failed ({type(exc).__name__})", url=url) from exc
