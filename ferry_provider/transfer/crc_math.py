"""crc(A + B) from crc(A), crc(B) and len(B), for reflected CRCs of any width.

This is zlib's crc32_combine method: appending n zero bytes to A multiplies its CRC register by
x^(8n) modulo the polynomial, and x^(8n) comes from a table of squares in O(log n) steps. It
holds as written for CRCs whose init and xorout are both all ones (CRC32, CRC32C, CRC64NVME):
the two all-ones terms then cancel. It is the fallback when awscrt's combine is missing, and the
reference the tests hold awscrt to.
"""

from __future__ import annotations

import functools


def _multiply(a: int, b: int, width: int, poly: int) -> int:
    """a * b modulo the polynomial, in reflected bit order (the top bit is x^0's coefficient)."""
    top, mask = 1 << (width - 1), (1 << width) - 1
    product = 0
    while a:
        if a & top:
            product ^= b
        a = (a << 1) & mask
        b = (b >> 1) ^ (poly if b & 1 else 0)
    return product


@functools.cache
def _squares(width: int, poly: int) -> tuple[int, ...]:
    """x^(2^k) mod P for k = 0 .. 66 (lengths up to 2^64 bytes)."""
    table = [1 << (width - 2)]  # x^1
    for _ in range(66):
        table.append(_multiply(table[-1], table[-1], width, poly))
    return tuple(table)


def x8n(n: int, width: int, poly: int) -> int:
    """x^(8n) mod P: what multiplying a CRC register by does to it is append n zero bytes."""
    squares = _squares(width, poly)
    result = 1 << (width - 1)  # x^0
    k = 3  # x^8 = x^(2^3): one byte
    while n:
        if n & 1:
            result = _multiply(squares[k], result, width, poly)
        n >>= 1
        k += 1
    return result


def combine(crc_a: int, crc_b: int, len_b: int, width: int, poly: int) -> int:
    """The CRC of A followed by B, from the CRCs of each and B's length."""
    return _multiply(x8n(len_b, width, poly), crc_a, width, poly) ^ crc_b
