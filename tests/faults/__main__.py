"""``python -m tests.faults [pytest options]``: run the matrix alone and print its table."""

from __future__ import annotations

import os
import sys

import pytest


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    return int(pytest.main([here, "-q", *sys.argv[1:]]))


if __name__ == "__main__":
    raise SystemExit(main())
