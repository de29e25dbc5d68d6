"""What ``sync --delete`` may delete: destination objects the source does not have, and nothing else.

Deleting is the one irreversible thing Ferry does, so each rule here errs towards keeping:

- Keys are compared by name only. Size and modified-since filters choose what is transferred,
  never what is deleted: an object the source has stays, whatever its size or date on either
  side (the destination's copy may be older, or written later, than the filter's bounds).
- A source that lists no object deletes nothing: on an object store a mistyped prefix looks
  exactly like an empty one, and would otherwise empty the destination.
- Ferry's own state at the destination is not data: temporary components of uploads in
  progress (``.ferry/tmp/``), the run's manifest (compared as files, links resolved), folder
  markers (empty objects ending in '/', which the source side never transfers either), and local
  names no URL can carry (control characters) are left alone.
- In a local destination, a file reached through a link to a folder inside the destination is
  kept when the source has it under the link's name (downloads write through such links).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from ferry_provider.hooks.url import ObjectURL, parse_url
from ferry_provider.transfer.listing import Listed
from ferry_provider.transfer.manifest_file import row_key
from ferry_provider.transfer.sinks import is_component

log = logging.getLogger("ferry_provider.transfer")


def place(url: str) -> tuple[str, str, str]:
    """Where ``url`` is, for telling whether two names are one object: a local path resolved
    (links and '..' followed), else the scheme, bucket and key."""
    parsed = parse_url(url)
    if parsed.is_local:
        return "file", "", os.path.realpath(parsed.key)
    return parsed.scheme, parsed.bucket, parsed.key


def addressable(url: str) -> bool:
    """Whether Ferry can name ``url`` at all (no control characters, which URLs refuse)."""
    return not any(ord(c) < 32 or ord(c) == 127 for c in url)


class LinkAliases:
    """Links to folders inside a local destination: ``current -> v2`` makes ``v2/x`` also
    ``current/x``. Found once, by a walk that does not follow links."""

    def __init__(self, root: str) -> None:
        self._by_target: list[tuple[str, str]] = []  # (target's relative path + "/", link's + "/")
        real_root = os.path.realpath(root)
        for folder, dirs, _ in os.walk(root):
            for name in dirs:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    continue
                target = os.path.realpath(path)
                if target == real_root or target.startswith(real_root + os.sep):
                    inside = os.path.relpath(target, real_root)
                    linked = os.path.relpath(path, root)
                    self._by_target.append(("" if inside == "." else inside + "/", linked + "/"))

    def names(self, relative: str) -> Iterator[str]:
        """``relative`` and every name it also has through one of the links."""
        yield relative
        for target, link in self._by_target:
            if relative.startswith(target):
                yield link + relative[len(target) :]


def extraneous(
    listing: Iterator[Listed],
    source_keys: set[bytes],
    destination: ObjectURL,
    manifest: str | None,
) -> Iterator[Listed]:
    """The destination objects of ``listing`` (name-filtered) that the source does not have, by
    the rules above. ``source_keys``: ``row_key(relative, "")`` of every key the source listed."""
    own = place(manifest) if manifest else None
    aliases = LinkAliases(destination.key) if destination.is_local else None
    for item in listing:
        url = item.info.url
        if item.relative.endswith("/") or is_component(url):
            continue
        if not addressable(url):
            log.warning("%r: not deleted: a name with control characters, which Ferry does not address", url)
            continue
        names = aliases.names(item.relative) if aliases is not None else (item.relative,)
        if any(row_key(name, "") in source_keys for name in names):
            continue
        if own is not None and place(url) == own:
            continue
        yield item
