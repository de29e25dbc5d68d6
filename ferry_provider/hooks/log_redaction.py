"""Keeps credentials out of the client libraries' debug logs.

At DEBUG, botocore logs response bodies (an AssumeRole answer carries the role's secret key and
session token), request headers and canonical requests (the session token), and urllib3 logs
every URL it requests (a presigned URL's signature and token are bearer credentials). Ferry's own
messages never carry them; these loggers are filtered so that turning on debug logging to chase a
problem does not put keys in a task log.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_LOGGERS = (
    "botocore.parsers",
    "botocore.endpoint",
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.httpsession",
    "botocore.hooks",
    "botocore.credentials",
    "urllib3.connectionpool",
)
_PATTERNS = (
    # XML answers: <SecretAccessKey>...</SecretAccessKey>, <SessionToken>...</SessionToken>
    re.compile(r"(<(?:SecretAccessKey|SessionToken|Token)>)[^<]*(</)", re.IGNORECASE),
    # query strings of presigned URLs
    re.compile(r"((?:X-Amz-Signature|Signature|X-Amz-Security-Token)=)[^&\s'\"]+", re.IGNORECASE),
    # headers as botocore prints them: 'X-Amz-Security-Token': '...', b'...', or in a canonical request
    re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}]+", re.IGNORECASE),
    re.compile(r"(Signature=)[0-9a-f]+", re.IGNORECASE),
    # botocore's Python signer prints the signature on a line of its own
    re.compile(r"(Signature:\s*)[0-9a-f]{64}", re.IGNORECASE),
)


class CredentialRedactor(logging.Filter):
    """Rewrites a record's message with credentials masked: known secret values, and the
    shapes above whatever their value."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def remember(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v and len(v) >= 8)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(2) if m.lastindex == 2 else ""), text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to logging's own handling
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


REDACTOR = CredentialRedactor()
_installed = False


def install() -> CredentialRedactor:
    """Attach the redactor to the client libraries' loggers (once per process)."""
    global _installed
    if not _installed:
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(REDACTOR)
        _installed = True
    return REDACTOR
