"""Seeded English captions for Simple Shapes, and the parser that reads them back.

The grammar (docs/design.md §3, our own wording). A caption is

    HEAD  (LINKER PHRASE)*  "."

HEAD is either `OPENER NOUN` ("There is a big light green egg") or, for a quarter of the
captions, `LOCATION ", there is" a NOUN`. NOUN is `[SIZE] COLOUR SHAPE`. The PHRASEs, in a
shuffled order, state whatever HEAD did not: the location, the rotation, and the size when NOUN
left it out ("of large size"). Each attribute is stated exactly once.

What a caption keeps, and what the parser recovers:
- class: shape synonyms per class (a kite is the "diamond" class).
- size bin: < 9 tiny; 9–10 small; 11–12 medium; ≥ 13 big (`SIZE_EDGES`). The medium bin's
  adjective is "medium sized" (never a bare "medium"), so "a medium purple egg" is unambiguous.
- colour: the nearest named colour (colors.py) to the label's RGB.
- location, as a cell of a 3×3 ("coarse") or 7×7 ("fine") grid over the range of centres
  [7, 24] on the 32-pixel canvas. Fine cells nest in coarse cells: a coarse third is 6 positions,
  split 3+3 (left third: very left, left), 2+2+2 (middle: slightly left, centred, slightly
  right) and 3+3 (right third: right, very right); the same bottom to top. A fine wording
  therefore also fixes the coarse cell. x bins count from the left, y bins from the bottom.
- rotation, as a sector of 8 (45°) or 16 (22.5°) around the shape's heading; the 16 sectors
  halve the 8 ones (compass "by" points: "north by west" is the half of north leaning west), so
  the 8-way sector is always recoverable. Sector 0 is north and sectors count
  counter-clockwise (θ = π/2 points west), like the rotation label.

`parse_caption` normalises case, spaces and spacing around punctuation (a tokenizer's output
reads back), accepts "a" or "an" before any word, and raises ValueError for anything else the
grammar cannot produce, so a decoded caption is either read correctly or refused.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .colors import COLOR_INDEX, COLOR_NAMES, COLOR_RGB, nearest_color

# ---------------------------------------------------------------------------------------------
# Attribute bins
SIZE_EDGES = (8.5, 10.5, 12.5)
SIZE_CENTRES = (7.5, 9.5, 11.5, 13.5)  # mean size of each bin under the uniform 7..14 sampling
COARSE_EDGES = (12.5, 18.5)
FINE_EDGES = (9.5, 12.5, 14.5, 16.5, 18.5, 21.5)
COARSE_CENTRES = (9.5, 15.5, 21.5)
FINE_CENTRES = (8.0, 11.0, 13.5, 15.5, 17.5, 20.0, 23.0)
FINE_TO_COARSE = (0, 0, 1, 1, 1, 2, 2)


def size_bin(size: np.ndarray) -> np.ndarray:
    return np.searchsorted(SIZE_EDGES, np.asarray(size, dtype=np.float64), side="right")


def location_bins(coord: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coarse bin in 0..2, fine bin in 0..6) of canvas coordinates (x, or y counted upwards)."""
    coord = np.asarray(coord, dtype=np.float64)
    return (
        np.searchsorted(COARSE_EDGES, coord, side="right"),
        np.searchsorted(FINE_EDGES, coord, side="right"),
    )


def rotation_sectors(rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(8-way sector 0..7, half 0..1): half 1 is the counter-clockwise half of the 8-way sector."""
    step = 2 * math.pi / 8
    phi = np.mod(np.asarray(rotation, dtype=np.float64), 2 * math.pi)
    sector8 = np.floor(phi / step + 0.5).astype(np.int64) % 8
    offset = np.mod(phi - sector8 * step + math.pi, 2 * math.pi) - math.pi
    return sector8, (offset >= 0).astype(np.int64)


def sector_centre(sector8: int, half: int | None) -> float:
    """Rotation (rad, [0, 2π)) at the centre of an 8-way sector, or of one of its halves."""
    angle = sector8 * 2 * math.pi / 8
    if half is not None:
        angle += (1 if half else -1) * 2 * math.pi / 32
    return angle % (2 * math.pi)


# ---------------------------------------------------------------------------------------------
# Vocabulary
SHAPE_WORDS = (
    ("diamond", "diamond shape", "kite", "quadrilateral", "four-sided shape"),
    ("egg", "egg shape", "water droplet", "bullet", "guitar pick", "oval shape"),
    ("triangle", "isosceles triangle", "triangle shape"),
)
SIZE_ADJECTIVES = (
    ("tiny",),
    ("small", "little"),
    ("medium sized", "average sized", "mid-sized"),
    ("big", "large"),
)
SIZE_PREDICATES = (
    ("of tiny size", "tiny in size"),
    ("of small size", "small in size"),
    ("of medium size", "of average size"),
    ("of large size", "big in size"),
)
OPENERS = (
    "a",
    "there is a",
    "it is a",
    "the image contains a",
    "the picture shows a",
    "this is a",
    "here is a",
)
LINKERS = (" ", ", ", " and ", ", and ", ", it is ", " and is ", ". it is ")
HEAD_LINK = ", there is a"  # after a leading location phrase

_COARSE_X = ("left", "middle", "right")
_COARSE_Y = ("bottom", "middle", "top")
_FINE_X = (
    ("on the very left side", "at the far left"),
    ("on the left side", "towards the left"),
    ("slightly left of centre", "a little to the left"),
    ("horizontally centred", "in the middle horizontally"),
    ("slightly right of centre", "a little to the right"),
    ("on the right side", "towards the right"),
    ("on the very right side", "at the far right"),
)
_FINE_Y = (
    ("at the very bottom", "at the bottom edge"),
    ("near the bottom", "low down"),
    ("slightly low", "a little below the centre"),
    ("vertically centred", "halfway up"),
    ("slightly high", "a little above the centre"),
    ("near the top", "high up"),
    ("at the very top", "at the top edge"),
)
_COMPASS = ("north", "northwest", "west", "southwest", "south", "southeast", "east", "northeast")
_SCREEN = (
    "the top",
    "the top-left corner",
    "the left",
    "the bottom-left corner",
    "the bottom",
    "the bottom-right corner",
    "the right",
    "the top-right corner",
)


def _coarse_phrases(cx: int, cy: int) -> list[str]:
    x, y = _COARSE_X[cx], _COARSE_Y[cy]
    if cx != 1 and cy != 1:
        return [f"at the {y} {x}", f"in the {y} {x} corner", f"in the {y}-{x} corner"]
    if cx == 1 and cy == 1:
        return ["in the middle", "in the centre", "at the center of the image", "in the middle of the image"]
    if cx == 1:
        return [f"at the {y}", f"at the {y} centre", f"in the {'upper' if cy == 2 else 'lower'} part"]
    return [f"on the {x}", f"at the middle {x}", f"in the {x} part"]


def _fine_phrases(fx: int, fy: int) -> list[str]:
    out = []
    for xw, yw in itertools.product(_FINE_X[fx], _FINE_Y[fy]):
        out += [f"{yw} and {xw}", f"{yw}, {xw}", f"{xw} and {yw}", f"{xw}, {yw}"]
    return out


def _rotation8_phrases(k: int) -> list[str]:
    d, s = _COMPASS[k], _SCREEN[k]
    return [
        f"pointing {d}",
        f"pointing to the {d}",
        f"facing {d}",
        f"pointing towards {s}",
        f"pointing to {s}",
        f"oriented towards {s}",
    ]


def _by_direction(k: int, half: int) -> int:
    """The compass point after "by": the cardinal the half leans to."""
    step = 1 if half else -1
    return (k + (2 if k % 2 == 0 else 1) * step) % 8


def _rotation16_phrases(k: int, half: int) -> list[str]:
    b = _by_direction(k, half)
    d, s = _COMPASS[k], _SCREEN[k]
    return [
        f"pointing {d} by {_COMPASS[b]}",
        f"facing {d} by {_COMPASS[b]}",
        f"pointing towards {s}, tilted towards {_SCREEN[b]}",
        f"pointing to {s}, leaning towards {_SCREEN[b]}",
    ]


COARSE_PHRASES = [[_coarse_phrases(cx, cy) for cy in range(3)] for cx in range(3)]
FINE_PHRASES = [[_fine_phrases(fx, fy) for fy in range(7)] for fx in range(7)]
ROTATION8_PHRASES = [_rotation8_phrases(k) for k in range(8)]
ROTATION16_PHRASES = [[_rotation16_phrases(k, h) for h in range(2)] for k in range(8)]


# ---------------------------------------------------------------------------------------------
# Generation
def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _with_article(prefix: str, noun: str) -> str:
    """`prefix` ends with the article "a"; make it agree with `noun`."""
    return f"{prefix[:-1]}{_article(noun)} {noun}"


def make_captions(labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One caption per label row (class, x, y, size, rotation, r, g, b); all choices from `rng`."""
    labels = np.asarray(labels, dtype=np.float64)
    n = len(labels)
    classes = labels[:, 0].astype(np.int64)
    sizes = size_bin(labels[:, 3]).tolist()
    cx, fx = location_bins(labels[:, 1])
    cy, fy = location_bins(labels[:, 2])
    k8, half = rotation_sectors(labels[:, 4])
    colours = nearest_color(np.rint(labels[:, 5:8])).tolist()
    draws = rng.random((n, 14)).tolist()
    cols = (classes.tolist(), cx.tolist(), cy.tolist(), fx.tolist(), fy.tolist(), k8.tolist(), half.tolist())
    return [
        _caption(u, c, s, COLOR_NAMES[col], (x3, y3, x7, y7), (k, h))
        for u, c, s, col, x3, y3, x7, y7, k, h in zip(draws, cols[0], sizes, colours, *cols[1:], strict=True)
    ]


def _pick(options: list[str] | tuple[str, ...], u: float) -> str:
    return options[int(u * len(options))]


def _caption(
    u: list[float], shape: int, size: int, colour: str, cells: tuple[int, int, int, int], rot: tuple[int, int]
) -> str:
    """One caption from 14 uniform draws in [0, 1)."""
    x3, y3, x7, y7 = cells
    location = _pick(COARSE_PHRASES[x3][y3] if u[0] < 0.5 else FINE_PHRASES[x7][y7], u[1])
    rotation = _pick(ROTATION8_PHRASES[rot[0]] if u[2] < 0.5 else ROTATION16_PHRASES[rot[0]][rot[1]], u[3])
    noun = f"{colour} {_pick(SHAPE_WORDS[shape], u[4])}"
    phrases = [rotation]
    if u[5] < 0.7:
        noun = f"{_pick(SIZE_ADJECTIVES[size], u[6])} {noun}"
    else:
        phrases.append(_pick(SIZE_PREDICATES[size], u[6]))
    if u[7] < 0.25:
        head = f"{location}{_with_article(HEAD_LINK, noun)}"
    else:
        head = _with_article(_pick(OPENERS, u[8]), noun)
        phrases.append(location)
    if len(phrases) > 1 and u[9] < 0.5:
        phrases.reverse()
    if len(phrases) == 3 and u[10] < 2 / 3:
        phrases.insert(0, phrases.pop(int(u[10] * 3) + 1))
    # a bare space joins the noun to the first phrase only ("a red egg pointing north, ...")
    links = [_pick(LINKERS, u[11])] + [_pick(LINKERS[1:], v) for v in u[12:14]]
    text = head + "".join(link + p for link, p in zip(links, phrases, strict=False)) + "."
    return text[0].upper() + text[1:].replace(". it is", ". It is")


# ---------------------------------------------------------------------------------------------
# Parsing
@dataclass(frozen=True)
class CaptionAttributes:
    """What a caption states. Bins and sectors as defined in the module docstring."""

    shape: int
    size_bin: int
    color: str
    color_rgb: tuple[int, int, int]
    location_grid: int  # 3 (coarse wording) or 7 (fine wording)
    location_x: int  # bin on that grid, 0 = left
    location_y: int  # bin on that grid, 0 = bottom
    coarse_x: int  # bin on the 3×3 grid, whatever the wording
    coarse_y: int
    rotation_sector8: int  # 0 = north, counter-clockwise
    rotation_half: int | None  # 16-way wording: 1 = counter-clockwise half of the 8-way sector

    def approximate_labels(self) -> np.ndarray:
        """float32 (8,) label row (class, x, y, size, rotation, r, g, b) at the stated cells' centres."""
        centres = FINE_CENTRES if self.location_grid == 7 else COARSE_CENTRES
        return np.array(
            [
                self.shape,
                centres[self.location_x],
                centres[self.location_y],
                SIZE_CENTRES[self.size_bin],
                sector_centre(self.rotation_sector8, self.rotation_half),
                *self.color_rgb,
            ],
            dtype=np.float32,
        )


# A phrase's meaning: ("location", grid, x bin, y bin), ("rotation", sector8, half or -1, 0),
# ("size", bin, 0, 0).
_Meaning = tuple[str, int, int, int]


def _build_phrase_table() -> dict[str, _Meaning]:
    table: dict[str, _Meaning] = {}
    for cx, cy in itertools.product(range(3), range(3)):
        for p in COARSE_PHRASES[cx][cy]:
            table[p] = ("location", 3, cx, cy)
    for fx, fy in itertools.product(range(7), range(7)):
        for p in FINE_PHRASES[fx][fy]:
            table[p] = ("location", 7, fx, fy)
    for k in range(8):
        for p in ROTATION8_PHRASES[k]:
            table[p] = ("rotation", k, -1, 0)
        for h in range(2):
            for p in ROTATION16_PHRASES[k][h]:
                table[p] = ("rotation", k, h, 0)
    for b, options in enumerate(SIZE_PREDICATES):
        for p in options:
            table[p] = ("size", b, 0, 0)
    if len(table) != sum(1 for _ in _all_phrases()):
        raise AssertionError("two attribute values share a phrase")
    return table


def _all_phrases() -> itertools.chain[str]:
    return itertools.chain(
        *(p for row in COARSE_PHRASES for p in row),
        *(p for row in FINE_PHRASES for p in row),
        *ROTATION8_PHRASES,
        *(p for row in ROTATION16_PHRASES for p in row),
        *SIZE_PREDICATES,
    )


_PHRASES = _build_phrase_table()
_BY_FIRST_WORD: dict[str, list[str]] = {}
for _p in sorted(_PHRASES, key=len, reverse=True):
    _BY_FIRST_WORD.setdefault(_p.split(" ")[0], []).append(_p)


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SIZE_WORD = {w: b for b, options in enumerate(SIZE_ADJECTIVES) for w in options}
_SHAPE_WORD = {w: c for c, options in enumerate(SHAPE_WORDS) for w in options}
_NOUN = (
    rf"an? (?:(?P<size>{_alternation(_SIZE_WORD)}) )?"
    rf"(?P<colour>{_alternation(COLOR_NAMES)}) (?P<shape>{_alternation(_SHAPE_WORD)})"
)
_OPENER_RE = re.compile(rf"(?:(?:{_alternation(o[:-2] for o in OPENERS if o != 'a')}) )?{_NOUN}")
_HEAD_LINK_RE = re.compile(rf", there is {_NOUN}")


def _normalise(text: str) -> str:
    text = " ".join(text.lower().split())
    text = re.sub(r" ?([,.]) ?", r"\1 ", text).strip()  # "egg , pointing" -> "egg, pointing"
    return re.sub(r" ?- ?", "-", text)


def _phrases_at(text: str, pos: int) -> list[str]:
    first = text[pos:].split(" ", 1)[0]
    return [p for p in _BY_FIRST_WORD.get(first.rstrip(",."), []) if text.startswith(p, pos)]


def _parse_rest(text: str, pos: int, found: dict[str, _Meaning]) -> dict[str, _Meaning]:
    """Parse (LINKER PHRASE)* "." from `pos`, each attribute once; backtracks over ambiguous splits."""
    if text[pos:] == ".":
        return found
    for link in LINKERS:
        if not text.startswith(link, pos):
            continue
        start = pos + len(link)
        for phrase in _phrases_at(text, start):
            meaning = _PHRASES[phrase]
            kind = str(meaning[0])
            if kind in found:
                continue
            try:
                return _parse_rest(text, start + len(phrase), {**found, kind: meaning})
            except ValueError:
                continue
    raise ValueError(f"cannot read {text[pos:]!r}")


def parse_caption(text: str) -> CaptionAttributes:
    """Read a caption of the grammar back into attributes; ValueError for any other text."""
    norm = _normalise(text)
    found: dict[str, _Meaning] = {}
    match = _OPENER_RE.match(norm)
    head_end = match.end() if match else -1
    if match is None:
        for phrase in _phrases_at(norm, 0):
            if _PHRASES[phrase][0] == "location":
                match = _HEAD_LINK_RE.match(norm, len(phrase))
                if match is not None:
                    found["location"] = _PHRASES[phrase]
                    head_end = match.end()
                    break
    if match is None:
        raise ValueError(f"not a Simple Shapes caption: {text!r}")
    if match["size"] is not None:
        found["size"] = ("size", _SIZE_WORD[match["size"]], 0, 0)
    try:
        found = _parse_rest(norm, head_end, found)
    except ValueError as exc:
        raise ValueError(f"not a Simple Shapes caption: {text!r} ({exc})") from None
    missing = {"location", "rotation", "size"} - set(found)
    if missing:
        raise ValueError(f"caption {text!r} does not state the {', '.join(sorted(missing))}")
    _, grid, lx, ly = found["location"]
    _, sector8, half, _ = found["rotation"]
    colour = match["colour"]
    to_coarse = FINE_TO_COARSE if grid == 7 else (0, 1, 2)
    r, g, b = (int(v) for v in COLOR_RGB[COLOR_INDEX[colour]])
    return CaptionAttributes(
        shape=_SHAPE_WORD[match["shape"]],
        size_bin=found["size"][1],
        color=colour,
        color_rgb=(r, g, b),
        location_grid=grid,
        location_x=lx,
        location_y=ly,
        coarse_x=to_coarse[lx],
        coarse_y=to_coarse[ly],
        rotation_sector8=sector8,
        rotation_half=None if half < 0 else half,
    )
