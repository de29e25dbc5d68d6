"""Reading a response body straight from its socket. A module of its own: the S3 store uses it
too, and importing it must not import requests (30 ms of every ``ferry cp`` start-up)."""

from __future__ import annotations

import http.client
from typing import Any

import urllib3.response


def socket_stream(response: urllib3.response.BaseHTTPResponse) -> Any:
    """The fastest ``readinto`` source under a urllib3 response.

    urllib3's own ``readinto`` reads into a new bytes object and copies it; the http.client
    response beneath it reads from the socket straight into the caller's buffer. That is safe
    only when urllib3 has nothing buffered and no content decoding to do, which holds for the
    bodies Ferry reads (it asks for stored bytes, never a transcoded encoding).
    """
    inner = getattr(response, "_fp", None)
    decoder = getattr(response, "_decoder", None)
    buffered = getattr(response, "_decoded_buffer", None)
    if (
        isinstance(inner, http.client.HTTPResponse)
        and decoder is None
        and not response.headers.get("Content-Encoding")
        and not (buffered is not None and len(buffered))
    ):
        return inner
    return response
