"""Which digest proves a download, and how its value is had: streamed or re-read from the file.

A store may keep several digests; the cheapest one that proves every byte is chosen. A
full-object CRC (CRC32C, CRC64NVME, CRC32) is computed while the bytes stream and costs almost
nothing. An MD5 means reading the file again. A per-part value (S3's composite CRC ``<hex>-N``,
or a multipart ETag, the MD5 of the parts' MD5s) can be checked only with the sizes the object
was uploaded in; a composite CRC is then still streamed, with ranges that follow the parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ferry_provider.hooks.base import ObjectInfo
from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.transfer import checksums
from ferry_provider.transfer.plan import layout_spans

DIGESTS_CHECKED_BY_REREAD = ("md5", "sha256", "sha1", "sha512")
CALLER_DIGESTS = (*sorted(checksums.CRCS), *DIGESTS_CHECKED_BY_REREAD)


@dataclass(frozen=True)
class Check:
    """A digest the downloaded bytes must match. ``expected`` is lower-case hex; a per-part value
    ends in ``-N`` and comes with the ``part_sizes`` it was computed over."""

    algorithm: str
    expected: str
    part_sizes: tuple[int, ...] = ()

    @property
    def per_part(self) -> bool:
        return "-" in self.expected

    @property
    def streamed(self) -> bool:
        """Computed from the bytes as they arrive (a CRC), not by reading the file again."""
        return self.algorithm in checksums.CRCS

    def describe(self) -> str:
        if not self.per_part:
            return self.algorithm
        count = len(self.part_sizes)
        parts = f"{count} part" if count == 1 else f"{count} parts"
        if self.streamed:
            return f"composite {self.algorithm} of {parts}"
        return f"{self.algorithm} of {parts} (multipart ETag)"


@dataclass(frozen=True)
class Selection:
    checks: tuple[Check, ...]
    why_none: str = ""  # when there is no check: why only the size was verified

    @property
    def layout(self) -> tuple[int, ...]:
        """The part sizes ranges must follow: those of a streamed per-part check."""
        return next((c.part_sizes for c in self.checks if c.per_part and c.streamed), ())


def choose_checks(
    pin: ObjectInfo,
    mode: str,
    expected_digests: Mapping[str, str],
    part_sizes: Callable[[], Sequence[int] | None],
) -> Selection:
    """The caller's digests, else the store's cheapest. ``part_sizes`` is asked only when a
    per-part value is the best the store has. ``mode`` is check_hashes (as in gcloud)."""
    if mode == "never":
        return Selection((), "verified size only (check_hashes='never')")
    if expected_digests:
        checks = [Check(name, value.lower()) for name, value in expected_digests.items()]
        return _fast_enough(checks, mode, pin.url)
    full = [(name, getattr(pin, name)) for name in ("crc32c", "crc64nvme", "crc32")]
    for name, value in full:
        if value and "-" not in value and name in checksums.CRCS:
            return _fast_enough([Check(name, value)], mode, pin.url)
    if pin.md5:
        return Selection((Check("md5", pin.md5),))
    per_part = [(name, value) for name, value in (*full, ("md5", pin.multipart_md5)) if value and "-" in value]
    if not per_part:
        if pin.crc64nvme and "crc64nvme" not in checksums.CRCS:
            return Selection((), "verified size only: the store keeps only crc64nvme, which needs awscrt")
        return Selection((), "verified size only: the source states no digest")
    if pin.size and all(value.endswith("-1") for _, value in per_part):
        sizes: tuple[int, ...] = (pin.size,)  # uploaded in one part: that part is the whole object
    else:
        sizes = tuple(part_sizes() or ())
    for name, value in per_part:
        if sizes and str(len(sizes)) == value.rsplit("-", 1)[1] and (name == "md5" or name in checksums.CRCS):
            return _fast_enough([Check(name, value, sizes)], mode, pin.url)
    kind = "multipart ETag" if per_part[0][0] == "md5" else f"composite (per-part) {per_part[0][0]}"
    return Selection((), f"verified size only: the store keeps a {kind} and gives no part layout")


def _fast_enough(checks: list[Check], mode: str, url: str) -> Selection:
    """CRC32C without a fast implementation: an error, dropped, or kept, as ``mode`` says."""
    if checksums.CRC32C_IS_FAST or mode == "always" or not any(c.algorithm == "crc32c" for c in checks):
        return Selection(tuple(checks))
    if mode == "if_fast_else_fail":
        raise InvalidArgumentError(
            f"{url}: only a slow CRC32C implementation ({checksums.CRC32C_IMPLEMENTATION}) is installed; "
            "install awscrt, or set check_hashes='if_fast_else_skip' or 'always'"
        )
    kept = tuple(c for c in checks if c.algorithm != "crc32c")
    return Selection(kept, "" if kept else "verified size only: crc32c skipped, no fast implementation")


def digest_of_file(path: str, check: Check, workers: int = 1) -> str:
    """``check``'s kind of digest, computed from the file at ``path`` (per-part values with
    ``workers`` threads)."""
    if not check.per_part:
        return checksums.file_digest(path, check.algorithm)
    digests = checksums.span_digests(path, check.algorithm, layout_spans(check.part_sizes), workers)
    if check.streamed:
        return checksums.CRCS[check.algorithm].composite([int(d, 16) for d in digests])
    return multipart_etag([bytes.fromhex(d) for d in digests])


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """S3's multipart ETag from its parts' MD5 digests: ``<md5 of them, joined>-<N>``."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"
