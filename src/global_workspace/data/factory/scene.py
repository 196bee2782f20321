"""Geometry of the Factory scene: floor, fixed landmarks, the table, the camera and the light.

World frame, in metres: the floor is the plane z = 0; +x points East (to the right of the image),
+y points North (away from the camera, towards the top of the image), +z points up. The camera
stands South of the floor and looks North and down, so a table moving to larger x moves right in
the image and a table moving to larger y moves up in the image (and gets smaller).

The table stands with its centre at (x, y) ∈ [-2, 2]² and is turned counter-clockwise (seen from
above) by `rotation` ∈ [0, 2π) about the vertical axis. At rotation 0 its front points North, at
π/2 West (the Simple Shapes convention). The table is deliberately **not** symmetric under a
half-turn: a raised panel stands on its back edge, so the direction it points to is the one away
from the panel and rotation is identifiable over the whole [0, 2π).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Range of the table's centre on the floor, metres, for both x and y.
FLOOR_RANGE = (-2.0, 2.0)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box given by its lower and upper corners (in its own frame)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    color: tuple[float, float, float] = (255.0, 255.0, 255.0)


@dataclass(frozen=True)
class Cone:
    """An upright cone standing on the floor: base centre (cx, cy), base radius, height."""

    cx: float
    cy: float
    radius: float
    height: float
    color: tuple[float, float, float]
    stripe: tuple[float, float, float]  # colour of a band around the middle of the cone


@dataclass(frozen=True)
class Landmark:
    """A named fixed object; captions place the table relative to its `anchor` on the floor."""

    name: str  # the word captions use, e.g. "cones" in "close to the cones"
    anchor: tuple[float, float]


# --- the table, in its own frame: u forward (the direction it points to), v to its left, z up ---
TABLE_LENGTH = 1.2  # along u
TABLE_WIDTH = 0.7  # along v
TABLE_HEIGHT = 0.7  # height of the top surface
TOP_THICKNESS = 0.07
LEG_SIZE = 0.08
LEG_INSET = 0.04
PANEL_HEIGHT = 0.25  # the back panel rises this far above the top
PANEL_THICKNESS = 0.07


def table_boxes() -> list[Box]:
    """Top, four legs and the back panel (at u = -length/2), in the table's frame."""
    hl, hw, h = TABLE_LENGTH / 2, TABLE_WIDTH / 2, TABLE_HEIGHT
    top = Box((-hl, -hw, h - TOP_THICKNESS), (hl, hw, h))
    panel = Box((-hl, -hw, h), (-hl + PANEL_THICKNESS, hw, h + PANEL_HEIGHT))
    legs = []
    for su in (-1.0, 1.0):
        for sv in (-1.0, 1.0):
            cu = su * (hl - LEG_INSET - LEG_SIZE / 2)
            cv = sv * (hw - LEG_INSET - LEG_SIZE / 2)
            s = LEG_SIZE / 2
            legs.append(Box((cu - s, cv - s, 0.0), (cu + s, cv + s, h - TOP_THICKNESS)))
    return [top, panel, *legs]


def table_radius() -> float:
    """Radius of the table's footprint around its centre (for keeping clear of landmarks)."""
    return math.hypot(TABLE_LENGTH / 2, TABLE_WIDTH / 2)


# --- the fixed environment ---
FLOOR_COLORS = ((112.0, 116.0, 124.0), (138.0, 142.0, 150.0))  # checker tiles of 1 m
BACK_WALL_Y = 4.6
BACK_WALL_COLOR = (176.0, 168.0, 150.0)
SKY_COLOR = (40.0, 44.0, 56.0)

CONE_COLOR = (235.0, 105.0, 25.0)
CONE_STRIPE = (240.0, 240.0, 235.0)
CONES = (
    Cone(-1.95, 3.15, 0.26, 0.75, CONE_COLOR, CONE_STRIPE),
    Cone(-1.4, 3.3, 0.26, 0.75, CONE_COLOR, CONE_STRIPE),
    Cone(-1.8, 3.7, 0.26, 0.75, CONE_COLOR, CONE_STRIPE),
)
PILLAR = Box((1.55, 3.0, 0.0), (2.15, 3.6, 1.8), (160.0, 165.0, 178.0))
WALL = Box((-3.4, -1.6, 0.0), (-3.15, 1.0, 0.7), (150.0, 62.0, 48.0))
CRATE = Box((2.75, -1.15, 0.0), (3.5, -0.4, 0.7), (168.0, 118.0, 58.0))
LANDMARK_BOXES = (PILLAR, WALL, CRATE)

LANDMARKS = (
    Landmark("cones", (-1.7, 3.4)),
    Landmark("pillar", (1.85, 3.3)),
    Landmark("wall", (-3.3, -0.3)),
    Landmark("crate", (3.1, -0.75)),
)

# --- camera and light ---
CAMERA_EYE = (0.0, -5.5, 7.0)
CAMERA_TARGET = (0.0, 0.4, 0.0)
CAMERA_FOV_DEG = 50.0  # vertical field of view

#: Direction *towards* the light (unit vector): from above, West and a little South (over the
#: camera's left shoulder), so shadows fall to the right and away from the camera.
LIGHT_DIR = tuple(float(c) for c in np.array([-0.5, -0.3, 0.81]) / np.linalg.norm([-0.5, -0.3, 0.81]))
AMBIENT = 0.38
#: Diffuse gain chosen so that a horizontal lit surface has shading exactly 1: the table's top
#: (and the lit floor) show their own colour unchanged.
DIFFUSE = (1.0 - AMBIENT) / LIGHT_DIR[2]
