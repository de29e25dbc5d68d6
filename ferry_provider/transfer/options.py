"""The options every transfer direction takes, validated once, with errors naming the option.

Download and upload extend ``TransferOptions``; an option lives here only when it has a meaning
in every direction, so none is accepted and then silently ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ferry_provider.hooks.errors import InvalidArgumentError
from ferry_provider.transfer import checksums
from ferry_provider.transfer.progress import ProgressCallback
from ferry_provider.transfer.retry import RetryPolicy
from ferry_provider.transfer.verification import CALLER_DIGESTS

ADAPTIVE_MAX_CONNECTIONS = 32  # what "connections chosen by the link" may grow to by default


def adaptive_options(parallelism: int | None) -> dict[str, object]:
    """The options a caller's parallelism means: a number is taken as it is; none lets the link
    choose, up to ADAPTIVE_MAX_CONNECTIONS."""
    if parallelism is None:
        return {"parallelism": ADAPTIVE_MAX_CONNECTIONS, "adaptive": True}
    return {"parallelism": parallelism, "adaptive": False}


def default_parallelism() -> int:
    """Two connections per core, 4 to 16: more only adds contention on a small machine, and
    high-latency stores are served by the part size growing with the object."""
    return min(16, max(4, 2 * (os.cpu_count() or 2)))


@dataclass(frozen=True)
class TransferOptions:
    parallelism: int = field(default_factory=default_parallelism)
    # With adaptive, parallelism is the most connections one transfer may use, and the link
    # decides how many it does use (transfer.link_controller); without, exactly that many.
    adaptive: bool = False
    part_size: int | None = None  # None: adaptive, 8-64 MiB, within the store's limits
    check_hashes: str = "if_fast_else_fail"  # also if_fast_else_skip, always, never (as gcloud)
    no_clobber: bool = False  # any existing destination is a skip
    skip_identical: bool = True  # an existing destination with the same size and digest is a skip
    resume: bool = True  # keep a failed transfer's parts (and tracker) for the next run
    # Re-hash the parts a resume reuses before trusting them: the source file's parts for an
    # upload, the temp file's for a download (bytes there may have been damaged since the kill).
    verify_on_resume: bool = True
    restart_on_change: bool = False  # the source changed mid-transfer: start over once
    expected_size: int | None = None  # the source must have exactly this many bytes
    expected_digests: dict[str, str] = field(default_factory=dict)  # {"sha256"|"md5"|"crc32c"|...: hex}
    state_dir: str | None = None  # tracker files here instead of beside the local file
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress_interval: float = 5.0
    progress_callback: ProgressCallback | None = None

    def __post_init__(self) -> None:
        try:
            checksums.check_hashes_mode(self.check_hashes)
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from None
        if not isinstance(self.parallelism, int) or self.parallelism < 1:
            raise InvalidArgumentError(f"parallelism must be a whole number >= 1, got {self.parallelism!r}")
        if self.part_size is not None and (not isinstance(self.part_size, int) or self.part_size <= 0):
            raise InvalidArgumentError(f"part_size must be a positive number of bytes, got {self.part_size!r}")
        if self.expected_size is not None and (not isinstance(self.expected_size, int) or self.expected_size < 0):
            raise InvalidArgumentError(f"expected_size must be a number of bytes >= 0, got {self.expected_size!r}")
        unknown = set(self.expected_digests) - set(CALLER_DIGESTS)
        if unknown:
            raise InvalidArgumentError(
                f"expected_digests: unsupported algorithm(s) {sorted(unknown)}; use {', '.join(CALLER_DIGESTS)}"
            )
        for name, value in self.expected_digests.items():
            if not isinstance(value, str) or not value or any(c not in "0123456789abcdefABCDEF" for c in value):
                raise InvalidArgumentError(f"expected_digests[{name!r}] must be a hex digest, got {value!r}")
        if self.expected_digests and self.check_hashes == "never":
            raise InvalidArgumentError("expected_digests cannot be checked with check_hashes='never'")
        if self.state_dir is not None and not os.path.isdir(self.state_dir):
            raise InvalidArgumentError(f"state_dir {self.state_dir!r} is not an existing directory")
        if self.state_dir is not None and not os.access(self.state_dir, os.W_OK | os.X_OK):
            raise InvalidArgumentError(f"state_dir {self.state_dir!r} is not writable")
        if self.retry.attempts < 1:
            raise InvalidArgumentError(f"retry attempts must be >= 1, got {self.retry.attempts}")
