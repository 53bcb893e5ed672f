"""tqdm progress bars on stderr, for the commands that move blobs (``images import``, ``pull``, ``push``).

tqdm is imported by :func:`open_bar` only, so commands that show no bar never pay for it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["LABEL_WIDTH", "open_bar"]

#: The label's width: a blob shows the start of its digest's hex (64 digits in all).
LABEL_WIDTH = 19
# A terminal that reports no size (a fresh pty) would get bars of width 0 and every bar
# past "row 0" hidden: tqdm is given this size instead.
_DEFAULT_SIZE = (100, 40)


def open_bar(label: str, total: int) -> Any:
    """A byte-counting tqdm bar on stderr labelled ``label`` (cut to :data:`LABEL_WIDTH`)."""
    from tqdm import tqdm

    try:
        sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except OSError:
        sized = False
    columns, rows = (None, None) if sized else _DEFAULT_SIZE
    return tqdm(
        total=total, desc=label[:LABEL_WIDTH], unit="B", unit_scale=True, unit_divisor=1024,
        file=sys.stderr, leave=True, dynamic_ncols=sized, ncols=columns, nrows=rows,
    )
