"""Whether a downloaded folder holds exactly the generated one: the demos' last check."""

from __future__ import annotations

import filecmp
import os


def same_tree(left: str, right: str) -> bool:
    """Every file under ``left`` is under ``right`` with the same bytes, and nothing more.
    (``filecmp.dircmp`` compares only the top level, which holds only folders here.)"""

    def files(root: str) -> set[str]:
        return {os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names}

    ours = files(left)
    return (
        bool(ours)
        and ours == files(right)
        and all(filecmp.cmp(os.path.join(left, f), os.path.join(right, f), shallow=False) for f in ours)
    )
