"""Result lines on stdout for the ``ferry`` command (single objects and bulk alike)."""

from __future__ import annotations

import os
import sys


def print_result(line: str) -> None:
    """Print a result line; a reader that went away (``| head``) does not undo transfers that
    succeeded, so the exit code stays the transfers'. Later lines go nowhere."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # later writes and the exit-time flush go nowhere
        os.close(devnull)
