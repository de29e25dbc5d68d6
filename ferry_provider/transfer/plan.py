"""How an object is cut into parts: sizes adaptive to the object, the parallelism and the store."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ferry_provider.hooks.base import Capabilities
from ferry_provider.hooks.errors import InvalidArgumentError

MiB = 1 << 20
MIN_AUTO_PART = 8 * MiB
MAX_AUTO_PART = 64 * MiB
PARTS_PER_WORKER = 4  # enough parts that a slow one does not leave the other workers idle


@dataclass(frozen=True)
class Part:
    """Bytes ``[start, end)`` of the object; ``index`` is 0-based."""

    index: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class RangePlan:
    """Ranges of at most ``part_size`` bytes. With a ``layout`` (the sizes of the parts the object
    was uploaded in) no range crosses an upload part's boundary, so each upload part's checksum
    can be combined from its ranges' checksums. With ``whole_parts`` too, each range is instead
    one or more whole upload parts (as many as fit in ``part_size``), for digests that cannot be
    combined and must see each upload part from its first byte to its last."""

    size: int
    part_size: int
    layout: tuple[int, ...] = ()
    whole_parts: bool = False

    @property
    def spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` of each upload part; the whole object when there is no layout."""
        if not self.layout:
            return [(0, self.size)]
        if sum(self.layout) != self.size:
            raise ValueError(f"the part layout adds up to {sum(self.layout)} bytes, not {self.size}")
        return layout_spans(self.layout)

    @property
    def parts(self) -> list[Part]:
        if self.size == 0:
            return [Part(0, 0, 0)]
        if self.whole_parts and self.layout:
            groups: list[tuple[int, int]] = []
            start = end = 0
            for span_start, span_end in self.spans:
                if end > start and span_end - start > self.part_size:  # this upload part starts a new range
                    groups.append((start, end))
                    start = span_start
                end = span_end
            groups.append((start, end))
            return [Part(index, s, e) for index, (s, e) in enumerate(groups)]
        parts: list[Part] = []
        for span_start, span_end in self.spans:
            for start in range(span_start, span_end, self.part_size):
                parts.append(Part(len(parts), start, min(start + self.part_size, span_end)))
        return parts

    def parts_by_span(self) -> list[list[Part]]:
        """The ranges inside each upload part, in order."""
        parts = iter(self.parts)
        grouped: list[list[Part]] = []
        for _, span_end in self.spans:
            group: list[Part] = []
            for part in parts:
                group.append(part)
                if part.end == span_end:
                    break
            grouped.append(group)
        return grouped


def layout_spans(part_sizes: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of each of consecutive parts of ``part_sizes`` bytes."""
    ends = list(itertools.accumulate(part_sizes))
    return list(zip([0, *ends[:-1]], ends, strict=True))


def choose_part_size(
    size: int,
    parallelism: int,
    *,
    requested: int | None = None,
    min_part: int = 0,
    max_part: int = 0,
    max_parts: int = 0,
) -> int:
    """The part size for ``size`` bytes.

    A ``requested`` size is honoured but must respect the store's minimum (an error names both
    values) and is raised when it would need more parts than the store allows. Otherwise the
    size aims at ``PARTS_PER_WORKER`` parts per worker, within 8-64 MiB, rounded to whole MiB.
    """
    if requested is not None:
        if requested <= 0:
            raise InvalidArgumentError(f"part_size must be positive, got {requested}")
        if min_part and requested < min_part and requested < size:
            raise InvalidArgumentError(
                f"part_size {requested} is below the store's minimum part size of {min_part} bytes"
            )
        part = requested
    else:
        target = -(-size // max(1, parallelism * PARTS_PER_WORKER))
        part = min(MAX_AUTO_PART, max(MIN_AUTO_PART, -(-target // MiB) * MiB))
        part = max(part, min_part)
    if max_parts and size > part * max_parts:
        part = -(-size // max_parts)
        part = -(-part // MiB) * MiB
    if max_part and part > max_part:
        if max_parts and size > max_part * max_parts:
            raise InvalidArgumentError(f"{size} bytes need more than {max_parts} parts of at most {max_part} bytes")
        part = max_part
    return max(part, 1)


def sink_part_size(size: int, parallelism: int, caps: Capabilities, requested: int | None = None) -> int:
    """choose_part_size within the limits of the store the parts are written to."""
    return choose_part_size(
        size,
        parallelism,
        requested=requested,
        min_part=caps.min_part_size,
        max_part=caps.max_part_size,
        max_parts=caps.max_parts,
    )
