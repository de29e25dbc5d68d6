"""Is an artifact there, complete and intact? One check shared by the sensor and its trigger.

An object (or every object matching a prefix or glob, at least ``min_count`` of them) must
exist and satisfy what was asked: exact or minimum size, expected digests (CRC32C, CRC32,
CRC64NVME and MD5 from the store when it keeps them whole, else streamed; SHA-256 always
streamed; streaming is capped in size), a
marker object, an ``OK`` row in a Ferry manifest, and stability (size and ETag unchanged over
``stable_checks`` consecutive checks). "Not there yet" and "there but wrong" are different
answers: the second fails at once unless ``wait_for_valid`` (for producers that overwrite).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import InvalidArgumentError, NotFoundError
from ferry_provider.hooks.url import parse_url, redact
from ferry_provider.transfer import checksums
from ferry_provider.transfer.manifest import OK, SKIP
from ferry_provider.transfer.manifest_file import parse_rows
from ferry_provider.transfer.sinks import is_component

OKAY, WAITING, INVALID = "ok", "waiting", "invalid"
GLOB_CHARS = "*?["
STORED_DIGESTS = ("crc32c", "crc32", "crc64nvme", "md5")  # ObjectInfo fields a store may fill
SENSOR_DIGESTS = (*(d for d in STORED_DIGESTS if d in checksums.CRCS or d == "md5"), "sha256")
HookFactory = Callable[[str, str | None], StorageHook]


@dataclass(frozen=True)
class CheckResult:
    state: str  # ok, waiting, invalid
    reason: str = ""
    objects: list[dict[str, Any]] = field(default_factory=list)
    observation: dict[str, Any] = field(default_factory=dict)  # carried to the next check (stability)


@dataclass(frozen=True)
class ArtifactCheck:
    url: str
    conn_id: str | None = None
    min_count: int = 1
    expected_size: int | None = None
    min_size: int | None = None
    expected_digests: dict[str, str] = field(default_factory=dict)  # hex; SENSOR_DIGESTS
    sha256_max_bytes: int = 1 << 30
    manifest: str | None = None  # a Ferry manifest CSV: a local path or an object URL
    manifest_conn_id: str | None = None
    stable_checks: int = 0
    marker: str | None = None
    wait_for_valid: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.expected_digests) - set(SENSOR_DIGESTS)
        if unknown:
            raise InvalidArgumentError(
                f"expected_digests: unsupported algorithm(s) {sorted(unknown)}; use {', '.join(SENSOR_DIGESTS)}"
            )
        if self.min_count < 1:
            raise InvalidArgumentError(f"min_count must be >= 1, got {self.min_count}")
        if self.min_count > 1 and not self.is_pattern:
            raise InvalidArgumentError(
                f"min_count={self.min_count}: {self.url} names one object; count objects with a prefix or a glob"
            )
        self.marker_url  # noqa: B018 - refuses a marker that cannot name an object
        if self.stable_checks < 0:
            raise InvalidArgumentError(f"stable_checks must be >= 0, got {self.stable_checks}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def marker_url(self) -> str | None:
        """A bare name (``_SUCCESS``) is a marker beside what ``url`` names, in the same folder
        (the last ``/`` of ``url``); anything with a ``/`` is a URL or path of its own."""
        if self.marker in (".", ".."):
            raise InvalidArgumentError(f"marker {self.marker!r} names a folder, not an object")
        if self.marker is None or "/" in self.marker:
            return self.marker
        return self.url[: self.url.rfind("/") + 1] + self.marker

    @property
    def is_pattern(self) -> bool:
        return self.url.endswith("/") or any(c in self.url for c in GLOB_CHARS)

    def run(self, hook_for: HookFactory, previous: dict[str, Any] | None = None) -> CheckResult:
        hook = hook_for(self.url, self.conn_id)
        if self.marker:
            marker = self.marker_url
            try:
                hook_for(marker, self.conn_id).head(marker)
            except NotFoundError:
                return CheckResult(WAITING, f"marker {marker} is not there yet")
        objects = self._objects(hook)
        if len(objects) < self.min_count:
            what = "matching objects" if self.is_pattern else "object"
            return CheckResult(WAITING, f"{len(objects)} of {self.min_count} {what} at {self.url}")
        observation = {"seen": {o.url: [o.size, o.etag] for o in objects}}
        stable = (previous or {}).get("stable", 0) + 1 if (previous or {}).get("seen") == observation["seen"] else 0
        observation["stable"] = stable
        for info in objects:
            waiting = self._size_wait(info)
            if waiting:
                return CheckResult(WAITING, waiting, observation=observation)
        if stable < self.stable_checks:
            return CheckResult(
                WAITING,
                f"not stable yet: unchanged for {stable} of {self.stable_checks} checks",
                observation=observation,
            )
        rows = self._manifest_rows(hook_for) if self.manifest else None
        validated = []
        for info in objects:
            problem, digests = self._validate(hook, info)
            if problem:
                return self._invalid(problem, observation)
            if rows is not None:
                row = rows.get(_identity(info.url))
                if row is None:
                    return CheckResult(
                        WAITING, f"no OK row for {info.url} in manifest {self.manifest}", observation=observation
                    )
                if row.get("crc32c") and digests.get("crc32c", info.crc32c) not in (None, row["crc32c"]):
                    return self._invalid(
                        f"{info.url}: crc32c {digests.get('crc32c', info.crc32c)} differs from "
                        f"the manifest's {row['crc32c']}",
                        observation,
                    )
            validated.append({**info.to_dict(), **digests})
        return CheckResult(OKAY, f"{len(validated)} object(s) valid", validated, observation)

    def _invalid(self, problem: str, observation: dict[str, Any]) -> CheckResult:
        return CheckResult(WAITING if self.wait_for_valid else INVALID, problem, observation=observation)

    def _objects(self, hook: StorageHook) -> list[ObjectInfo]:
        if not self.is_pattern:
            try:
                return [hook.head(self.url)]
            except NotFoundError:
                return []
        pattern = self.url
        local = parse_url(pattern)
        if local.is_local:  # a local store lists absolute paths, whether asked with a path or file://
            pattern = local.key.rstrip("/") + ("/" if self.url.endswith("/") else "")
        cut = min([pattern.index(c) for c in GLOB_CHARS if c in pattern] or [len(pattern)])
        prefix = pattern[:cut]
        if local.is_local and cut < len(pattern):
            prefix = prefix[: prefix.rfind("/") + 1]  # the folder: a local listing names whole files
        found = []
        for info in hook.list(prefix):
            if info.url.endswith("/") or is_component(info.url):
                continue
            if cut == len(pattern) or fnmatch.fnmatchcase(info.url, pattern):
                found.append(info)
        return found

    def _size_wait(self, info: ObjectInfo) -> str:
        size = info.size or 0
        if self.min_size is not None and size < self.min_size:
            return f"{info.url}: {size} bytes, waiting for at least {self.min_size}"
        if self.expected_size is not None and size < self.expected_size:
            return f"{info.url}: {size} of {self.expected_size} bytes so far"
        return ""

    def _validate(self, hook: StorageHook, info: ObjectInfo) -> tuple[str, dict[str, str]]:
        """A problem (empty when valid) and the digests computed by streaming the object."""
        if self.expected_size is not None and info.size != self.expected_size:
            return f"{info.url}: size {info.size}, expected {self.expected_size}", {}
        computed: dict[str, str] = {}
        for algorithm, want in self.expected_digests.items():
            have = getattr(info, algorithm, None) if algorithm in STORED_DIGESTS else None
            if not have or "-" in have:
                have = computed[algorithm] = self._stream_digest(hook, info, algorithm)
            if have != want.lower():
                return f"{info.url}: {algorithm} mismatch: expected {want.lower()}, got {have}", computed
        return "", computed

    def _stream_digest(self, hook: StorageHook, info: ObjectInfo, algorithm: str) -> str:
        if info.size is not None and info.size > self.sha256_max_bytes:
            raise InvalidArgumentError(
                f"{info.url}: {info.size} bytes exceed sha256_max_bytes={self.sha256_max_bytes}; "
                f"the store keeps no {algorithm} to compare, and streaming is capped"
            )
        hasher = checksums.new_hasher(algorithm)
        buffer = memoryview(bytearray(4 << 20))
        with hook.open_range(info.url, pin=info) as reader:
            while n := reader.readinto(buffer):
                hasher.update(buffer[:n])
        return hasher.hexdigest()

    def _manifest_rows(self, hook_for: HookFactory) -> dict[tuple[str, str, str], dict[str, str]]:
        """Rows with result OK or skip, under both their source and their destination.

        The watched object may be either end of a row: the destination of an upload (or copy),
        the source of a download (``s3://b/k`` fetched to a local path). A later row for the same
        object replaces an earlier one.
        """
        assert self.manifest is not None
        try:
            text = hook_for(self.manifest, self.manifest_conn_id).read_bytes(self.manifest).decode()
        except NotFoundError:
            return {}
        rows: dict[tuple[str, str, str], dict[str, str]] = {}
        for row in parse_rows(text):
            if row.get("result") not in (OK, SKIP):
                continue
            for end in ("source", "destination"):
                key = _identity(row.get(end) or "")
                if key is not None:
                    rows[key] = row
        return rows


def _identity(url: str) -> tuple[str, str, str] | None:
    """What an object URL names, so spellings of one object compare equal: a manifest keeps a
    download's destination as an absolute path and a source without credentials, while the sensor
    may be given ``file://``, relative or credentialed forms. None for what names no object."""
    if not url:
        return None
    try:
        parsed = parse_url(url)
    except InvalidArgumentError:
        return None
    if parsed.scheme in ("http", "https"):
        return parsed.scheme, "", redact(parsed.raw)
    return parsed.scheme, parsed.bucket, parsed.key
