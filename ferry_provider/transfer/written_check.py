"""The last check of a written object: what the store reports against what was sent.

A mismatch deletes the object (it was published, or is about to be read by someone) and fails.
"""

from __future__ import annotations

import contextlib

from ferry_provider.hooks.base import ObjectInfo, StorageHook
from ferry_provider.hooks.errors import ChecksumMismatchError, FerryError
from ferry_provider.transfer import checksums
from ferry_provider.transfer.retry import RetryPolicy

READ_BACK_BUFFER = 4 << 20


def verify_written(
    hook: StorageHook,
    url: str,
    info: ObjectInfo,
    size: int | None,
    crc32c: str | None,
    check_hashes: str,
    retry: RetryPolicy,
) -> str:
    """Compare what the store reports for ``url`` with the ``size`` and ``crc32c`` (hex) sent;
    return what was verified. With check_hashes='always' and a store that keeps no full-object
    CRC32C, the object is read back and hashed; with 'never', only the size is compared."""
    if size is not None and info.size != size:
        delete_bad(hook, url, f"size mismatch: sent {size} bytes, the store has {info.size}", retry)
    if check_hashes == "never" or crc32c is None:
        return "size verified (check_hashes='never')" if check_hashes == "never" else "size verified"
    if info.crc32c and "-" not in info.crc32c:
        if info.crc32c != crc32c:
            delete_bad(hook, url, f"crc32c mismatch: sent {crc32c}, the store has {info.crc32c}", retry)
        return "stored crc32c verified"
    if check_hashes == "always":
        stored = read_back_crc32c(hook, url, retry)
        if stored != crc32c:
            delete_bad(hook, url, f"crc32c mismatch: sent {crc32c}, read back {stored}", retry)
        return "crc32c verified by reading the object back (the store reports no full-object crc32c)"
    return "size verified (the store reports no full-object crc32c)"


def read_back_crc32c(hook: StorageHook, url: str, retry: RetryPolicy, pin: ObjectInfo | None = None) -> str:
    """The CRC32C of the object at ``url`` (of the version ``pin`` names, when given), read whole."""

    def read() -> str:
        hasher = checksums.CrcHasher(checksums.CRC32C)
        buf = memoryview(bytearray(READ_BACK_BUFFER))
        with hook.open_range(url, 0, None, pin) as reader:
            while n := reader.readinto(buf):
                hasher.update(buf[:n])
        return hasher.hexdigest()

    return retry.run(read, what=f"{url}: read back")


def delete_bad(hook: StorageHook, url: str, why: str, retry: RetryPolicy) -> None:
    with contextlib.suppress(FerryError):
        retry.run(lambda: hook.delete(url), what=f"{url}: delete")
    raise ChecksumMismatchError(f"{url}: {why}; the object was deleted", url=url)
