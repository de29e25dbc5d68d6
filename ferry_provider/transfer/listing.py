"""The objects under a prefix, filtered, as a stream: never the whole listing in memory.

A prefix is a folder: ``s3://raw/day`` and ``s3://raw/day/`` both mean the keys under ``day/``
(a bare prefix match would also take ``day2/``). Each object comes with its key relative to the
folder, which is what the destination side appends to its own prefix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.hooks.url import ObjectURL, parse_url


@dataclass(frozen=True)
class ListFilter:
    """Which objects under the prefix take part. ``glob`` and ``regex`` match the relative key
    (``*`` does not cross ``/``; ``**`` does); sizes are bytes, inclusive."""

    glob: str | None = None
    regex: str | None = None
    min_size: int | None = None
    max_size: int | None = None
    modified_since: datetime | None = None

    def __post_init__(self) -> None:
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise InvalidArgumentError(f"regex {self.regex!r} is not a valid regular expression: {exc}") from None
        for name in ("min_size", "max_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InvalidArgumentError(f"{name} must be a number of bytes >= 0, got {value!r}")
        if self.modified_since is not None and self.modified_since.tzinfo is None:
            raise InvalidArgumentError("modified_since must carry a time zone (e.g. 2026-11-23T00:00:00+00:00)")

    def names_only(self) -> ListFilter:
        """The same filter on names (glob, regex), without sizes and dates."""
        return ListFilter(self.glob, self.regex)

    def matches(self, relative: str, info: ObjectInfo) -> bool:
        if self.glob is not None and not _glob_match(relative, self.glob):
            return False
        if self.regex is not None and not re.search(self.regex, relative):
            return False
        size = info.size or 0
        if self.min_size is not None and size < self.min_size:
            return False
        if self.max_size is not None and size > self.max_size:
            return False
        since = self.modified_since
        return since is None or (info.last_modified is not None and info.last_modified >= since)


def _glob_match(relative: str, pattern: str) -> bool:
    """``*`` and ``?`` stay within one path segment, ``**`` spans segments (as in gcloud)."""
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            regex += "[^/]"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, relative, re.DOTALL) is not None


@dataclass(frozen=True)
class Listed:
    """One object to transfer: what the listing said of it, and its key below the prefix."""

    info: ObjectInfo
    relative: str


def folder(url: str) -> ObjectURL:
    """``url`` as a folder prefix (a trailing ``/`` added where there is none)."""
    parsed = parse_url(url)
    if parsed.is_local:
        return parse_url(parsed.key.rstrip("/") + "/")
    if parsed.key and not parsed.key.endswith("/"):
        return parse_url(url + "/")
    return parsed


def relative_key(prefix: ObjectURL, info: ObjectInfo) -> str:
    """The object's key below ``prefix`` (a folder)."""
    if not prefix.is_local and info.url.startswith(prefix.raw):
        return info.url[len(prefix.raw) :]  # the common case, without parsing a million URLs
    base = prefix.key.rstrip("/") + "/" if prefix.is_local else prefix.key
    if prefix.is_local and info.url.startswith(base):
        return info.url[len(base) :]  # a local name need not be a valid URL (a tab in it)
    key = parse_url(info.url).key
    if not key.startswith(base):
        raise InvalidArgumentError(f"{info.url} is not under {prefix.raw}")
    return key[len(base) :]


def list_prefix(hook: StorageHook, prefix: ObjectURL, only: ListFilter | None = None) -> Iterator[Listed]:
    """Every object under ``prefix`` that ``only`` admits, page by page, in the store's order."""
    only = only or ListFilter()
    listing_url = prefix.raw if not prefix.is_local else prefix.key.rstrip("/") + os.sep
    for info in hook.list(listing_url):
        relative = relative_key(prefix, info)
        if only.matches(relative, info):
            yield Listed(info, relative)
