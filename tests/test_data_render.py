"""Geometry and rasterisation of Simple Shapes: placement, orientation, colour, antialiasing."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from global_workspace.data.render import render_matplotlib
from global_workspace.data.shapes import SHAPES
from global_workspace.data.simple_shapes import render_labels, sample_labels


def _label(cls: int, x: float, y: float, size: float, rotation: float, rgb=(255, 255, 255)) -> np.ndarray:
    return np.array([[cls, x, y, size, rotation, *rgb]], dtype=np.float32)


def _coverage(labels: np.ndarray, image_size: int = 32) -> np.ndarray:
    """Rendered white shapes as coverage in [0, 1], (N, H, W)."""
    white = labels.copy()
    white[:, 5:8] = 255
    return render_labels(white, image_size)[..., 0].astype(np.float64) / 255


def _centroid(mass: np.ndarray) -> np.ndarray:
    """(column, row) mass centroid in continuous pixel coordinates (pixel j covers [j, j+1))."""
    rows, cols = np.indices(mass.shape) + 0.5
    return np.array([(mass * cols).sum(), (mass * rows).sum()]) / mass.sum()


@pytest.mark.parametrize("image_size", [32, 64])
def test_centroid_is_at_x_and_H_minus_y(image_size: int) -> None:
    """The rendered centroid is where the label puts the shape: (x, H − y), y up, scaled to the image.

    A shape's area centroid is not its box centre (a triangle's is a third of the way up), so the
    expected point is (x, H − y) plus the rotated, scaled offset of the unit shape's centroid.
    """
    rng = np.random.default_rng(0)
    scale = image_size / 32
    for _ in range(60):
        cls, x, y = int(rng.integers(3)), float(rng.integers(10, 23)), float(rng.integers(10, 23))
        size, rotation = float(rng.integers(7, 15)), float(rng.uniform(0, 2 * math.pi))
        mass = _coverage(_label(cls, x, y, size, rotation), image_size)[0]
        offset = SHAPES[cls].centroid - 0.5
        c, s = math.cos(rotation), math.sin(rotation)
        dx, dy = size * (c * offset[0] - s * offset[1]), size * (s * offset[0] + c * offset[1])
        expected = np.array([x + dx, image_size / scale - (y + dy)]) * scale
        assert np.all(np.abs(_centroid(mass) - expected) < 0.15 * scale), (cls, x, y, size, rotation)
        # and the box centre itself is within a pixel of (x, H − y) once the offset is known
        assert np.all(
            np.abs(_centroid(mass) - np.array([dx, -dy]) * scale - [x * scale, (32 - y) * scale]) < 1
        )


def test_area_grows_with_size_and_matches_the_polygon() -> None:
    for cls, shape in enumerate(SHAPES):
        areas = [_coverage(_label(cls, 16, 16, size, 0.3))[0].sum() for size in range(7, 15)]
        assert all(b > a for a, b in itertools.pairwise(areas)), areas
        expected = [shape.area * size**2 for size in range(7, 15)]
        np.testing.assert_allclose(areas, expected, rtol=0.03)


def test_every_class_points_north_at_zero_and_west_at_half_pi() -> None:
    """Every class is heavier at its base than at its tip (unit centroid below y = 0.5), so the mass
    centroid sits below the box centre at θ = 0 (tip up) and right of it at θ = π/2 (tip west)."""
    for cls in range(3):
        shift = (0.5 - SHAPES[cls].centroid[1]) * 14  # 0.8 to 2.3 px
        north = _centroid(_coverage(_label(cls, 16, 16, 14, 0.0))[0])
        west = _centroid(_coverage(_label(cls, 16, 16, 14, math.pi / 2))[0])
        south = _centroid(_coverage(_label(cls, 16, 16, 14, math.pi))[0])
        east = _centroid(_coverage(_label(cls, 16, 16, 14, 3 * math.pi / 2))[0])
        np.testing.assert_allclose(north, [16, 16 + shift], atol=0.1)
        np.testing.assert_allclose(west, [16 + shift, 16], atol=0.1)
        np.testing.assert_allclose(south, [16, 16 - shift], atol=0.1)
        np.testing.assert_allclose(east, [16 - shift, 16], atol=0.1)


@pytest.mark.parametrize("cls", [0, 1, 2])
def test_rotating_by_half_pi_rotates_the_mask(cls: int) -> None:
    """Rotating the scene by π/2 counter-clockwise about the image centre = np.rot90 of the image.

    With integer centres the box centre sits on a pixel corner, and (16, 16) is the image centre,
    so the rotated shape lands on the same pixel grid.
    """
    for theta in (0.0, 0.7, 2.0):
        a = _coverage(_label(cls, 16, 16, 13, theta))[0]
        b = _coverage(_label(cls, 16, 16, 13, theta + math.pi / 2))[0]
        np.testing.assert_allclose(np.rot90(a), b, atol=2e-2)
    a = _coverage(_label(cls, 12, 20, 11, 1.0))[0]  # off-centre: (12, 20) goes to (12, 12)
    b = _coverage(_label(cls, 12, 12, 11, 1.0 + math.pi / 2))[0]
    np.testing.assert_allclose(np.rot90(a), b, atol=2e-2)


def test_interior_has_the_label_colour_and_background_is_black() -> None:
    labels = sample_labels(np.random.default_rng(1), 300)
    images = render_labels(labels)
    cov = _coverage(labels)
    inside, outside = cov == 1.0, cov == 0.0
    for i in range(len(labels)):
        assert inside[i].sum() > 4
        np.testing.assert_array_equal(
            images[i][inside[i]], np.broadcast_to(labels[i, 5:8], (inside[i].sum(), 3))
        )
        assert not images[i][outside[i]].any()
        assert outside[i].sum() > 32 * 32 / 2  # most of the image is background
    # partly covered pixels blend the colour with black: every channel between 0 and the colour
    assert np.all(images <= labels[:, None, None, 5:8])


def test_overlap_with_matplotlib() -> None:
    """Soft IoU against matplotlib's Agg renderer (true Bézier egg, exact-area antialiasing).

    Threshold: the two differ only in how a boundary pixel is shaded (our one-pixel linear ramp
    versus Agg's exact area, most visibly at the sharp tips of small triangles); measured on 300
    examples the worst IoU is 0.945 and the mean 0.980. Any geometric mistake costs far more: a
    half-pixel shift of the largest shape gives ~0.8, a flipped y axis or a wrong rotation sense
    far less. So 0.92 per example and 0.97 on average pass every correct rendering and fail every
    half-pixel or orientation error (checked below by shifting by half a pixel).
    """
    labels = sample_labels(np.random.default_rng(2), 300)
    ours = _coverage(labels)
    theirs = render_matplotlib(labels)[..., :3].max(axis=-1) / labels[:, None, None, 5:8].max(axis=-1)
    theirs = np.clip(theirs, 0, 1)

    def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.minimum(a, b).sum(axis=(1, 2)) / np.maximum(a, b).sum(axis=(1, 2))

    scores = iou(ours, theirs)
    assert scores.min() > 0.92 and scores.mean() > 0.97, (scores.min(), scores.mean())
    shifted = labels.copy()
    shifted[:, 1] += 0.5
    assert iou(_coverage(shifted), theirs).mean() < 0.9


def _plain_render(labels: np.ndarray, image_size: int) -> np.ndarray:
    """The rasteriser's definition, written plainly: per image, float64, the whole image."""
    out = np.zeros((len(labels), image_size, image_size, 3), np.uint8)
    scale = image_size / 32
    rows, cols = np.indices((image_size, image_size)) + 0.5
    for i, (cls, x, y, size, theta, *rgb) in enumerate(np.asarray(labels, np.float64)):
        shape = SHAPES[int(cls)]
        dx, dy = cols / scale - x, 32 - rows / scale - y  # canvas offsets from the centre, y up
        qx = (math.cos(theta) * dx + math.sin(theta) * dy) / size + 0.5  # back to the unit square
        qy = (-math.sin(theta) * dx + math.cos(theta) * dy) / size + 0.5
        lines = shape.normals[:, 0, None, None] * qx + shape.normals[:, 1, None, None] * qy
        distance = (lines - shape.offsets[:, None, None]).min(axis=0) * size * scale
        out[i] = np.rint(np.clip(distance + 0.5, 0, 1)[..., None] * rgb)
    return out


@pytest.mark.parametrize("image_size", [32, 48, 128])
def test_fast_path_matches_the_plain_definition(image_size: int) -> None:
    """Windows, int16 fixed point and batching change no pixel by more than one 8-bit level."""
    labels = sample_labels(np.random.default_rng(4), 400 if image_size == 32 else 40)
    diff = np.abs(render_labels(labels, image_size).astype(int) - _plain_render(labels, image_size))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_rendering_is_independent_of_batch() -> None:
    labels = sample_labels(np.random.default_rng(3), 200)
    together = render_labels(labels)
    one_by_one = np.concatenate([render_labels(labels[i : i + 1]) for i in range(len(labels))])
    np.testing.assert_array_equal(together, one_by_one)
