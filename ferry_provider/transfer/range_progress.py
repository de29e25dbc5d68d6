"""How far a worker has read its byte range, with the digests of the bytes before that point.

A retry continues at ``pos`` with these digests instead of starting the range again, so the
record is kept across attempts; it is what a part's checkpoint entry is made from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry_provider.transfer.checksums import CrcAlgorithm


@dataclass
class RangeProgress:
    """``crcs`` run in the order of the algorithms ``feed`` is given. With ``md5_ends`` (the
    absolute offsets where upload parts inside this range end), each of those parts gets its
    own MD5 from its first byte: ``md5s``, in order, as each end is passed."""

    pos: int
    crcs: list[int]
    md5_ends: Sequence[int] = ()
    md5s: list[str] = field(default_factory=list)
    _md5: Any = field(default=None, repr=False)

    @classmethod
    def at(cls, pos: int, crc_count: int, md5_ends: Sequence[int] | None = None) -> RangeProgress:
        progress = cls(pos, [0] * crc_count, md5_ends or ())
        if md5_ends is not None:
            progress._md5 = hashlib.md5()
        return progress

    @property
    def hashes_md5(self) -> bool:
        return self._md5 is not None

    def feed(self, algorithms: Sequence[CrcAlgorithm], chunk: memoryview) -> None:
        """``chunk`` is the next bytes of the range, from ``pos``."""
        crcs = self.crcs
        for i, algorithm in enumerate(algorithms):
            crcs[i] = algorithm.update(chunk, crcs[i])
        if self._md5 is not None:
            self._feed_md5(chunk)
        self.pos += len(chunk)

    def _feed_md5(self, chunk: memoryview) -> None:
        at = self.pos
        while chunk:
            end = self.md5_ends[len(self.md5s)]
            take = min(len(chunk), end - at)
            self._md5.update(chunk[:take])
            at, chunk = at + take, chunk[take:]
            if at == end:
                self.md5s.append(self._md5.hexdigest())
                self._md5 = hashlib.md5()
