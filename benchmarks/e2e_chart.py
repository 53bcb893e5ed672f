"""A horizontal bar chart as PNG, written with zlib + struct only (no matplotlib).

Each bar is "how much better than ctr" (1.0 = as good as ctr; > 1 better),
with the issue's target as a vertical tick and a dashed line at 1.0. Labels
use a built-in 5x7 bitmap font (upper case, digits and a little punctuation).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

# 5x7 glyphs, one string of 7 rows of 5 bits per character.
_FONT_ROWS = {
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    ">": "01000 00100 00010 00001 00010 00100 01000",
    "/": "00001 00010 00010 00100 01000 01000 10000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
    "?": "01110 10001 00001 00010 00100 00000 00100",
    ",": "00000 00000 00000 00000 01100 00100 01000",
}
_FONT = {ch: [int(row, 2) for row in rows.split()] for ch, rows in _FONT_ROWS.items()}

_WHITE = (255, 255, 255)
_BLACK = (20, 20, 20)
_GREY = (150, 150, 150)
_GOOD = (46, 139, 87)
_BAD = (205, 92, 92)
_TARGET = (30, 30, 160)


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(_WHITE * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        for y in range(max(0, y0), min(self.height, y1)):
            start = (y * self.width + max(0, x0)) * 3
            count = max(0, min(self.width, x1) - max(0, x0))
            self.pixels[start : start + count * 3] = bytes(color) * count

    def text(self, x: int, y: int, text: str, color: tuple[int, int, int] = _BLACK, scale: int = 2) -> None:
        for ch in text.upper():
            glyph = _FONT.get(ch, _FONT["?"])
            for row, bits in enumerate(glyph):
                for col in range(5):
                    if bits & (1 << (4 - col)):
                        self.rect(
                            x + col * scale,
                            y + row * scale,
                            x + (col + 1) * scale,
                            y + (row + 1) * scale,
                            color,
                        )
            x += 6 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\0" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def write_chart(
    path: Path | str,
    bars: Sequence[tuple[str, float | None, float | None]],
    title: str = "pycontainerd vs ctr: times better (target tick, 1.0 dashed)",
) -> None:
    """Write a bar chart of ``(label, value, target)`` rows to ``path`` as PNG.

    Args:
        path: The PNG file.
        bars: One row per bar; ``value`` ``None`` draws no bar, ``target`` ``None`` no tick.
        title: The line above the chart.
    """
    label_w, bar_w, row_h, top = 540, 560, 34, 50
    width, height = label_w + bar_w + 90, top + row_h * max(1, len(bars)) + 40
    canvas = _Canvas(width, height)
    canvas.text(10, 14, title, scale=2)
    values = [v for _, v, _ in bars if v] + [t for _, _, t in bars if t] + [1.0]
    top_value = max(values) * 1.1
    scale = bar_w / top_value
    x0 = label_w
    for i, (label, value, target) in enumerate(bars):
        y = top + i * row_h
        canvas.text(10, y + 8, label[:44], scale=2)
        if value is not None:
            met = target is None or value >= target
            canvas.rect(x0, y + 4, x0 + int(value * scale), y + row_h - 6, _GOOD if met else _BAD)
            canvas.text(x0 + int(value * scale) + 6, y + 8, f"{value:.2f}", scale=2)
        if target is not None:
            tx = x0 + int(target * scale)
            canvas.rect(tx - 1, y, tx + 2, y + row_h - 2, _TARGET)
    one = x0 + int(scale)
    for y in range(top - 4, top + row_h * len(bars), 8):
        canvas.rect(one, y, one + 1, y + 4, _GREY)
    canvas.rect(x0, top - 4, x0 + 1, top + row_h * len(bars), _BLACK)
    canvas.text(x0, height - 26, "0", color=_GREY)
    canvas.text(one - 10, height - 26, "1.0", color=_GREY)
    Path(path).write_bytes(canvas.png())
