"""Seeded English captions for Factory, and the parser that reads them back.

The grammar. A caption is

    HEAD  (LINKER PHRASE)*  "."

HEAD is `OPENER [COLOUR] NOUN` ("There is an orange table") or, for a quarter of the captions,
`REGION ", there is" a [COLOUR] NOUN`. The PHRASEs, in a shuffled order, state whatever HEAD did
not: the nearby landmark, the region, the direction and, when HEAD left it out, the colour
("painted orange"). Each attribute is stated at most once; only the landmark may go unsaid, and
then no landmark is near. For example "A red table close to the cones at the top left, pointing
to the top right." or "In the middle of the scene, there is an orange desk facing West."

What a caption keeps, and what the parser recovers (`FactoryCaption`):
- colour: the nearest named colour (data/colors.py) to the label's RGB.
- landmark: the landmark (scene.LANDMARKS) whose anchor is nearest to the table's centre, if it
  is nearer than NEAR_DISTANCE metres ("close to the cones"); otherwise none, said ("away from
  the landmarks") or left unsaid, each half of the time.
- region: a cell of the 3×3 grid over the floor range [-2, 2]² (thirds of 4/3 m); column 0 is
  the left (West, small x), row 0 the bottom (South, near the camera, small y).
- direction: the 8-way sector (45°) around the rotation the table points to; sector 0 is the top
  (North, away from the camera) and sectors count counter-clockwise, like the rotation label.

`parse_factory_caption` normalises case and spacing and raises ValueError for any text the grammar
cannot produce. `approximate_labels` turns what a caption states back into continuous attributes.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import numpy as np

from ..captions import rotation_sectors, sector_centre
from ..colors import COLOR_INDEX, COLOR_NAMES, COLOR_RGB, nearest_color
from . import scene

NEAR_DISTANCE = 2.5  # metres from a landmark's anchor below which a table is "close to" it
NOUNS = ("table", "desk", "work table")
OPENERS = ("a", "there is a", "it is a", "the scene shows a", "the picture shows a", "here is a", "we see a")
FIRST_LINKERS = (" ", ", ")
LINKERS = (" ", ", ", " and ", ", and ", ", it is ", " and is ")
HEAD_LINK = ", there is a"  # after a leading region phrase

_COLS = ("left", "middle", "right")
_ROWS = ("bottom", "middle", "top")
# direction sectors 0..7 counter-clockwise from the top (North)
_COMPASS = ("North", "North-West", "West", "South-West", "South", "South-East", "East", "North-East")
_SCREEN = ("top", "top left", "left", "bottom left", "bottom", "bottom right", "right", "top right")


def _region_phrases(cx: int, cy: int) -> list[str]:
    x, y = _COLS[cx], _ROWS[cy]
    if cx != 1 and cy != 1:
        return [f"at the {y} {x}", f"in the {y} {x} corner", f"at the {y} {x} of the scene"]
    if cx == 1 and cy == 1:
        return ["at the middle of the scene", "in the middle", "in the centre of the scene", "in the center"]
    if cx == 1:
        depth = "back" if cy == 2 else "front"
        return [f"at the {y}", f"at the {y} of the scene", f"towards the {depth} of the room"]
    return [f"on the {x}", f"on the {x} side", f"at the middle {x}"]


def _landmark_phrases(landmark: int | None) -> list[str]:
    if landmark is None:
        return ["away from the landmarks", "far from the landmarks", "in the open"]
    name = scene.LANDMARKS[landmark].name
    return [f"close to the {name}", f"next to the {name}", f"near the {name}", f"beside the {name}"]


def _direction_phrases(k: int) -> list[str]:
    c, s = _COMPASS[k], _SCREEN[k]
    hyphen = s.replace(" ", "-")
    return [
        f"pointing to the {c}",
        f"pointing {c.lower()}",
        f"facing {c}",
        f"pointing to the {s}",
        f"facing the {hyphen} side" if " " in s else f"facing the {s}",
        f"turned towards the {s}",
    ]


def _colour_phrases(colour: str) -> list[str]:
    return [f"painted {colour}", f"coloured {colour}", f"in {colour}"]


_LANDMARK_NAMES = [lm.name for lm in scene.LANDMARKS]
REGION_PHRASES = [[_region_phrases(cx, cy) for cy in range(3)] for cx in range(3)]
LANDMARK_PHRASES = [_landmark_phrases(k) for k in range(len(scene.LANDMARKS))]
NO_LANDMARK_PHRASES = _landmark_phrases(None)
DIRECTION_PHRASES = [_direction_phrases(k) for k in range(8)]


# ---------------------------------------------------------------------------------------------
# Attribute bins
def region_cells(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column, row) in 0..2 of floor positions; column 0 is left (West), row 0 bottom (South)."""
    lo, hi = scene.FLOOR_RANGE
    edges = np.linspace(lo, hi, 4)[1:3]  # thirds of the range

    def cell(v: np.ndarray) -> np.ndarray:
        return np.searchsorted(edges, np.asarray(v, dtype=np.float64), side="right")

    return cell(x), cell(y)


def nearest_landmarks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into scene.LANDMARKS of the nearest anchor, whether it is nearer than NEAR_DISTANCE)."""
    anchors = np.array([lm.anchor for lm in scene.LANDMARKS])
    pos = np.stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)], axis=-1)
    dist = np.linalg.norm(pos[..., None, :] - anchors, axis=-1)
    nearest = dist.argmin(axis=-1)
    return nearest, np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0] < NEAR_DISTANCE


@dataclass(frozen=True)
class FactoryCaption:
    """What a caption states (bins as in the module docstring)."""

    color: str
    color_rgb: tuple[int, int, int]
    landmark: str | None  # the landmark nearer than NEAR_DISTANCE, if any
    region_x: int  # 0 left .. 2 right
    region_y: int  # 0 bottom .. 2 top
    direction: int  # 8-way sector, 0 = top (North), counter-clockwise


def describe(labels: np.ndarray) -> list[FactoryCaption]:
    """The binned attributes each label row (x, y, rotation, r, g, b) maps to; what captions say."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 6)
    cx, cy = region_cells(labels[:, 0], labels[:, 1])
    lm, near = nearest_landmarks(labels[:, 0], labels[:, 1])
    k8, _ = rotation_sectors(labels[:, 2])
    colours = nearest_color(np.rint(labels[:, 3:6]))
    out = []
    for i in range(len(labels)):
        name = COLOR_NAMES[colours[i]]
        r, g, b = (int(v) for v in COLOR_RGB[colours[i]])
        out.append(
            FactoryCaption(
                name,
                (r, g, b),
                scene.LANDMARKS[lm[i]].name if near[i] else None,
                int(cx[i]),
                int(cy[i]),
                int(k8[i]),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Generation
def _with_article(prefix: str, words: str) -> str:
    """`prefix` ends with the article "a"; make it agree with `words`."""
    return f"{prefix[:-1]}{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _pick(options: list[str] | tuple[str, ...], u: float) -> str:
    return options[int(u * len(options))]


def make_factory_captions(labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One caption per label row (x, y, rotation, r, g, b); every word choice from `rng`."""
    facts = describe(labels)
    draws = rng.random((len(facts), 16)).tolist()
    return [_caption(u, f) for u, f in zip(draws, facts, strict=True)]


def _caption(u: list[float], f: FactoryCaption) -> str:
    """One caption from 16 uniform draws in [0, 1)."""
    region = _pick(REGION_PHRASES[f.region_x][f.region_y], u[0])
    phrases = [_pick(DIRECTION_PHRASES[f.direction], u[2])]
    if f.landmark is not None:
        phrases.append(_pick(LANDMARK_PHRASES[_LANDMARK_NAMES.index(f.landmark)], u[1]))
    elif u[1] < 0.5:
        phrases.append(_pick(NO_LANDMARK_PHRASES, 2 * u[1]))
    noun = _pick(NOUNS, u[3])
    if u[4] < 0.75:
        noun = f"{f.color} {noun}"
    else:
        phrases.append(_pick(_colour_phrases(f.color), u[5]))
    if u[6] < 0.25:
        head = f"{region}{_with_article(HEAD_LINK, noun)}"
    else:
        head = _with_article(_pick(OPENERS, u[7]), noun)
        phrases.append(region)
    order = sorted(range(len(phrases)), key=lambda i: u[8 + i])  # a shuffle from the draws
    links = [_pick(FIRST_LINKERS, u[12])] + [_pick(LINKERS, v) for v in u[13:16]]
    text = head + "".join(links[j] + phrases[i] for j, i in enumerate(order)) + "."
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------------------------------------
# Parsing
# A phrase's meaning: (kind, values): ("region", (column, row)), ("landmark", (index or -1,)),
# ("direction", (sector,)), ("colour", (index into COLOR_NAMES,)).
_Meaning = tuple[str, tuple[int, ...]]


def _phrase_table() -> dict[str, _Meaning]:
    entries: list[tuple[str, _Meaning]] = []
    for cx, cy in itertools.product(range(3), range(3)):
        entries += [(p, ("region", (cx, cy))) for p in REGION_PHRASES[cx][cy]]
    for k in range(len(scene.LANDMARKS)):
        entries += [(p, ("landmark", (k,))) for p in LANDMARK_PHRASES[k]]
    entries += [(p, ("landmark", (-1,))) for p in NO_LANDMARK_PHRASES]
    for k in range(8):
        entries += [(p, ("direction", (k,))) for p in DIRECTION_PHRASES[k]]
    for i, colour in enumerate(COLOR_NAMES):
        entries += [(p, ("colour", (i,))) for p in _colour_phrases(colour)]
    table: dict[str, _Meaning] = {}
    for phrase, meaning in entries:
        key = _normalise(phrase)
        if table.setdefault(key, meaning) != meaning:
            raise AssertionError(f"two attribute values share the phrase {phrase!r}")
    return table


def _normalise(text: str) -> str:
    """Lower case, single spaces, ", " after commas, no spaces around hyphens."""
    text = " ".join(text.lower().split())
    text = re.sub(r" ?([,.]) ?", r"\1 ", text).strip()  # "table , pointing" -> "table, pointing"
    return re.sub(r" ?- ?", "-", text)


def _alternation(words: list[str] | tuple[str, ...]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@dataclass(frozen=True)
class _Grammar:
    phrases: dict[str, _Meaning]
    by_first_word: dict[str, list[str]]  # phrases by their first word, longest first
    head: re.Pattern[str]
    head_after_region: re.Pattern[str]


@functools.lru_cache(maxsize=1)
def _grammar() -> _Grammar:
    phrases = _phrase_table()
    by_first: dict[str, list[str]] = {}
    for p in sorted(phrases, key=len, reverse=True):
        by_first.setdefault(p.split(" ")[0], []).append(p)
    noun = rf"an? (?:(?P<colour>{_alternation(COLOR_NAMES)}) )?(?P<noun>{_alternation(NOUNS)})"
    openers = _alternation([o[:-2] for o in OPENERS if o != "a"])
    return _Grammar(
        phrases, by_first, re.compile(rf"(?:(?:{openers}) )?{noun}"), re.compile(rf", there is {noun}")
    )


def _phrases_at(text: str, pos: int) -> list[str]:
    first = text[pos:].split(" ", 1)[0].rstrip(",.")
    return [p for p in _grammar().by_first_word.get(first, []) if text.startswith(p, pos)]


def _parse_rest(
    text: str, pos: int, found: dict[str, tuple[int, ...]], first: bool
) -> dict[str, tuple[int, ...]]:
    """Parse (LINKER PHRASE)* "." from `pos`, each attribute once; backtracks over ambiguous splits."""
    if text[pos:] == ".":
        return found
    for link in FIRST_LINKERS if first else LINKERS:
        if not text.startswith(link, pos):
            continue
        start = pos + len(link)
        for phrase in _phrases_at(text, start):
            kind, value = _grammar().phrases[phrase]
            if kind in found:
                continue
            try:
                return _parse_rest(text, start + len(phrase), {**found, kind: value}, first=False)
            except ValueError:
                continue
    raise ValueError(f"cannot read {text[pos:]!r}")


def parse_factory_caption(text: str) -> FactoryCaption:
    """Read a Factory caption back into what it states; ValueError for any other text."""
    grammar = _grammar()
    norm = _normalise(text)
    norm = norm if norm.endswith(".") else norm + "."  # the final full stop may be left out
    found: dict[str, tuple[int, ...]] = {}
    match = grammar.head.match(norm)
    if match is None:
        for phrase in _phrases_at(norm, 0):
            kind, value = grammar.phrases[phrase]
            match = grammar.head_after_region.match(norm, len(phrase)) if kind == "region" else None
            if match is not None:
                found["region"] = value
                break
    if match is None:
        raise ValueError(f"not a Factory caption: {text!r}")
    if match["colour"] is not None:
        found["colour"] = (COLOR_INDEX[match["colour"]],)
    try:
        found = _parse_rest(norm, match.end(), found, first=True)
    except ValueError as exc:
        raise ValueError(f"not a Factory caption: {text!r} ({exc})") from None
    missing = {"colour", "region", "direction"} - set(found)
    if missing:
        raise ValueError(f"caption {text!r} does not state the {', '.join(sorted(missing))}")
    (colour,), (landmark,), (cx, cy), (direction,) = (
        found.get(k, (-1,)) for k in ("colour", "landmark", "region", "direction")
    )
    r, g, b = (int(v) for v in COLOR_RGB[colour])
    name = _LANDMARK_NAMES[landmark] if landmark >= 0 else None
    return FactoryCaption(COLOR_NAMES[colour], (r, g, b), name, cx, cy, direction)


# ---------------------------------------------------------------------------------------------
# Back to continuous attributes
@functools.lru_cache(maxsize=1)
def _floor_grid(
    steps: int = 121,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = scene.FLOOR_RANGE
    g = np.linspace(lo, hi, steps)
    xx, yy = (a.ravel() for a in np.meshgrid(g, g))
    cx, cy = region_cells(xx, yy)
    lm, near = nearest_landmarks(xx, yy)
    return xx, yy, cx, cy, lm, near


def approximate_labels(caption: FactoryCaption) -> np.ndarray:
    """float32 (6,) label row (x, y, rotation, r, g, b) consistent with what a caption states.

    (x, y) is the centroid of the floor points in the stated region that are near the stated
    landmark, or near none if none is stated (the region's centroid if no point of the range
    fits); the rotation is the centre of the stated sector, the colour the named colour's RGB.
    """
    xx, yy, cx, cy, lm, near = _floor_grid()
    cell = (cx == caption.region_x) & (cy == caption.region_y)
    if caption.landmark is None:
        fits = cell & ~near
    else:
        fits = cell & near & (lm == _LANDMARK_NAMES.index(caption.landmark))
    if not fits.any():
        fits = cell
    rotation = sector_centre(caption.direction, None)
    return np.array([xx[fits].mean(), yy[fits].mean(), rotation, *caption.color_rgb], dtype=np.float32)
