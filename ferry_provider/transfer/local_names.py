"""Object keys as local paths, never outside the destination folder.

A key is a name chosen by whoever wrote the bucket: ``../../etc/x``, ``/abs``, a NUL byte, a
257-byte segment or ``a//b`` must not become a path anywhere but below the destination, and must
not be silently renamed either. Such keys are refused (the object gets an ``error`` row).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from ferry_provider.hooks.errors import InvalidArgumentError

NAME_MAX = 255  # bytes per path segment on Linux file systems
PATH_MAX = 4096


def local_destination(root: str, relative: str, real_root: str = "") -> str:
    """The path for key ``relative`` below the folder ``root``; InvalidArgumentError naming the
    key and the reason when it cannot be one. ``real_root``: ``root`` resolved, when the caller
    already did (a bulk run, once for all its objects)."""

    def refuse(why: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"key {relative!r} cannot be a file below {root}: {why}")

    if not relative:
        raise refuse("it names the folder itself")
    if "\0" in relative:
        raise refuse("it contains a NUL byte")
    if relative.startswith("/"):
        raise refuse("it is an absolute path")
    segments = relative.split("/")
    for segment in segments:
        if segment in ("", "."):
            raise refuse("it has an empty or '.' path segment")
        if segment == "..":
            raise refuse("it has a '..' segment, which would leave the destination folder")
        if len(os.fsencode(segment)) > NAME_MAX:
            raise refuse(f"a path segment is longer than {NAME_MAX} bytes")
    path = os.path.join(root, *segments)
    if len(os.fsencode(path)) >= PATH_MAX:
        raise refuse(f"the path would be longer than {PATH_MAX} bytes")
    _check_folders(root, segments[:-1], path, real_root, refuse)
    return path


def _check_folders(
    root: str, folders: list[str], path: str, real_root: str, refuse: Callable[[str], InvalidArgumentError]
) -> None:
    """The folders of ``path`` below ``root`` that exist, looked at one by one from ``root``:
    plain folders need nothing more (one lstat each, where resolving the whole path costs one per
    component from ``/``: a bulk run asks this for every object); at a symbolic link, or anything
    odd, the whole path is resolved (``_check_no_escape``)."""
    at = root
    for folder in folders:
        at = os.path.join(at, folder)
        try:
            mode = os.lstat(at).st_mode
        except OSError:  # nothing deeper exists: it will be made below what was checked
            return
        if not stat.S_ISDIR(mode):  # a link, or a file where a folder must be (the transfer says so)
            _check_no_escape(root, path, real_root, refuse)
            return


def _check_no_escape(root: str, path: str, real_root: str, refuse: Callable[[str], InvalidArgumentError]) -> None:
    """A folder already below ``root`` may be a symbolic link to elsewhere: resolve the deepest
    existing ancestor of ``path`` and require it inside ``root``."""
    ancestor = os.path.dirname(path)
    while not os.path.lexists(ancestor) and ancestor != os.path.dirname(ancestor):
        ancestor = os.path.dirname(ancestor)
    if ancestor == os.path.normpath(root):  # the file goes straight into the folder: nothing to resolve
        return
    real = os.path.realpath(ancestor)
    real_root = real_root or os.path.realpath(root)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise refuse(f"{ancestor} leads outside it (to {real})")
