"""Output for people (aligned tables, one-line errors) and for scripts (``--json``)."""

from __future__ import annotations

import datetime as _dt
import enum
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["error_line", "format_table", "human_size", "json_default", "print_json", "print_table"]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Align columns like ``ctr``'s tabwriter: two spaces between columns, no trailing blanks.

    Args:
        headers: Column titles.
        rows: One sequence per row (values are ``str()``-ed; ``None`` shows as ``-``).

    Returns:
        The table, one line per row after the header line, newline-terminated.
    """
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in cells
    ]
    return "\n".join(lines) + "\n"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], file: TextIO | None = None) -> None:
    """Write :func:`format_table` to ``file`` (stdout by default)."""
    (file or sys.stdout).write(format_table(headers, rows))


def human_size(size: int | None) -> str:
    """A byte count for a table: ``512B``, ``1.5KiB``, ``64.0MiB``.

    ``None`` shows as ``-``, and 4 EiB or more (a limit that is none) as ``unlimited``.
    """
    if size is None:
        return "-"
    if size >= 1 << 62:
        return "unlimited"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1024
    return str(size)  # pragma: no cover


def json_default(value: object) -> Any:
    """``json.dumps`` fallback: datetimes as RFC 3339, enums by value, protobuf messages as dicts."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bytes, bytearray)):
        return value.decode(errors="replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        from google.protobuf import json_format

        return json_format.MessageToDict(value)  # type: ignore[arg-type]
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def print_json(value: object, file: TextIO | None = None, *, compact: bool = False) -> None:
    """Write ``value`` as JSON (indented, or one line with ``compact``) and a newline."""
    out = file or sys.stdout
    if compact:
        out.write(json.dumps(value, default=json_default, separators=(",", ":")) + "\n")
    else:
        out.write(json.dumps(value, default=json_default, indent=2) + "\n")


def one_line(text: str) -> str:
    """Collapse a (possibly multi-line) message into one line."""
    return " ".join(text.split())


def error_line(message: str, file: TextIO | None = None) -> None:
    """Write ``pycontainerd: error: <message>`` as exactly one line to stderr."""
    out = file or sys.stderr
    try:
        out.write(f"pycontainerd: error: {one_line(message)}\n")
        out.flush()
    except (OSError, ValueError):
        pass  # stderr is gone: nothing else can be told
