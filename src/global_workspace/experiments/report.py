"""A self-contained HTML report: headings, text, tables, figures and picture strips in one file.

Figures and pictures are embedded as data: URIs, styles inline, no script, no network: the file
opens offline in any browser and can be mailed as is. Nothing here knows about an experiment;
`semi_supervised` and the attention experiment both fill a `Report`.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_text

Cell = Any
"""A table or picture cell: an image (uint8 array (H, W, 3)), a number, or text."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: right; vertical-align: middle; }
th { background: #f0f4f8; }
td.text, th.text { text-align: left; max-width: 22em; }
caption { caption-side: bottom; font-size: .85em; color: #555; text-align: left; padding-top: .3em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .88em; color: #555; }
img.pixel { image-rendering: pixelated; width: 64px; height: 64px; }
.muted { color: #777; font-size: .9em; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: .85em; }
"""


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an RGB uint8 image (H, W, 3) (or grey (H, W)) as PNG, with zlib only."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(np.round(img.astype(np.float64) * (255 if img.max() <= 1.0 else 1)), 0, 255).astype(
            np.uint8
        )
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got {img.shape}")
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[row].tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def format_number(value: Any) -> str:
    """Three significant digits; integers as they are; non-finite as n/a."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "n/a"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    return f"{v:.3g}"


class Report:
    """An HTML document assembled piece by piece, then written in one go."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str, muted: bool = False) -> None:
        cls = ' class="muted"' if muted else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def figure(self, path: Path, caption: str = "", alt: str = "") -> None:
        """Embed an SVG or PNG file."""
        path = Path(path)
        mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
        uri = data_uri(path.read_bytes(), mime)
        self._parts.append(
            f'<figure><img src="{uri}" alt="{html.escape(alt or path.stem)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Cell]], caption: str = "") -> None:
        """A table; numbers are right-aligned with three significant digits, images inlined."""
        head = "".join(f'<th class="text">{html.escape(str(h))}</th>' for h in header)
        body = "".join("<tr>" + "".join(self._cell(c) for c in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def pictures(self, header: Sequence[str], rows: Sequence[Sequence[Cell]], caption: str = "") -> None:
        """A picture strip: one row per example, one column per source (truth, predictions)."""
        self.table(header, rows, caption)

    @staticmethod
    def _cell(cell: Cell) -> str:
        if isinstance(cell, np.ndarray) and cell.ndim in (2, 3) and cell.shape[0] > 1:
            uri = data_uri(png_bytes(cell), "image/png")
            return f'<td><img class="pixel" src="{uri}" alt="picture"></td>'
        if isinstance(cell, str):
            return f'<td class="text">{html.escape(cell)}</td>'
        return f"<td>{html.escape(format_number(cell))}</td>"

    def html(self) -> str:
        body = "\n".join(self._parts)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(self.title)}</h1>\n{body}\n</body>\n</html>\n"
        )

    def write(self, path: Path) -> Path:
        atomic_write_text(Path(path), self.html())
        return Path(path)
