"""The Factory renderer: geometry on screen, colour, rotation and its asymmetry, fixed landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from global_workspace.data.factory import render, scene

SIZE = 64
RED = (255.0, 0.0, 0.0)


def _render(x: float, y: float, rotation: float, rgb: tuple[float, float, float] = RED, size: int = SIZE):
    return render.render_tables(size, np.array([x]), np.array([y]), np.array([rotation]), np.array([rgb]))[0]


def _changed(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Pixels that differ from the empty scene (the table and its shadow)."""
    return np.abs(image.astype(np.int64) - render.background(size).image).max(axis=-1) > 0


def _table_mask(image: np.ndarray) -> np.ndarray:
    """Pixels of a pure red table: changed and clearly red (the shadow is grey, the cones unchanged)."""
    px = image.astype(np.int64)
    return _changed(image) & (px[..., 0] > px[..., 1] + 60) & (px[..., 0] > px[..., 2] + 60)


def _centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


def test_table_moves_right_with_x_and_up_with_y() -> None:
    for rotation in (0.3, 2.0, 4.4):
        cols = [_centroid(_table_mask(_render(x, 0.0, rotation)))[0] for x in (-1.5, 0.0, 1.5)]
        rows = [_centroid(_table_mask(_render(0.0, y, rotation)))[1] for y in (-1.5, 0.0, 1.5)]
        assert cols[0] + 5 < cols[1] < cols[2] - 5  # East is to the right
        assert rows[0] > rows[1] + 3 > rows[2] + 6  # North is up (and further away: smaller steps)


@pytest.mark.parametrize("x, y", [(-2.0, -2.0), (2.0, -2.0), (0.0, 0.0), (-2.0, 2.0), (1.3, 1.7)])
def test_table_centroid_is_its_projection(x: float, y: float) -> None:
    """The red pixels' centroid lies within 2 px of the projected centre of the table's top."""
    view = render.background(SIZE).view
    for rotation in np.linspace(0, 2 * math.pi, 5, endpoint=False):
        centre = render.project(view, np.array([x, y, scene.TABLE_HEIGHT - 0.1]))
        assert np.linalg.norm(_centroid(_table_mask(_render(x, y, rotation))) - centre) < 2.0


def test_lit_table_pixels_have_the_label_colour() -> None:
    """The lit top has shading 1: its interior pixels carry the label RGB exactly."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        rgb = tuple(float(v) for v in rng.integers(0, 256, 3))
        x, y, rotation = rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0, 2 * math.pi)
        image = _render(x, y, rotation, rgb).astype(np.int64)
        exact = (np.abs(image - np.array(rgb)).max(axis=-1) <= 1).sum()
        assert exact >= 8, (rgb, x, y, rotation, exact)


def test_table_colour_tracks_the_label_colour() -> None:
    """Mean colour of the changed pixels that are not the shadow follows the label (per channel)."""
    rng = np.random.default_rng(1)
    labels, seen = [], []
    for _ in range(40):
        rgb = rng.integers(0, 256, 3).astype(np.float64)
        image = _render(0.3, -0.4, 1.0, tuple(rgb))
        labels.append(rgb)
        seen.append(image[_changed(image) & (np.abs(image - rgb).max(axis=-1) < 80)].mean(axis=0))
    for channel in range(3):
        corr = np.corrcoef(np.array(labels)[:, channel], np.array(seen)[:, channel])[0, 1]
        assert corr > 0.95


def _differing(a: np.ndarray, b: np.ndarray) -> int:
    return int((np.abs(a.astype(np.int64) - b).max(axis=-1) > 20).sum())


def test_rotation_is_periodic_and_not_symmetric_under_a_half_turn() -> None:
    """A table symmetric under a half-turn would render θ and θ + π identically (same faces, same
    normals); the back panel makes them differ in many pixels, as much as a quarter-turn does."""
    for y in (-1.8, 0.0, 1.8):
        for rotation in np.linspace(0, 2 * math.pi, 8, endpoint=False):
            base = _render(0.4, y, rotation)
            again = _render(0.4, y, rotation + 2 * math.pi)
            assert np.abs(base.astype(np.int64) - again).max() <= 1  # float rounding of sin/cos only
            assert _differing(base, _render(0.4, y, rotation + math.pi)) >= 15
            assert _differing(base, _render(0.4, y, rotation + math.pi / 2)) >= 15


def test_panel_stands_at_the_back() -> None:
    """Pointing West (θ = π/2) the panel is on the East end: the red silhouette rises higher on the
    right than on the left; pointing East (θ = 3π/2), the other way round."""

    def tops(rotation: float) -> tuple[int, int]:
        image = _render(0.0, 0.0, rotation, size=128)
        px = image.astype(np.int64)
        changed = np.abs(px - render.background(128).image).max(axis=-1) > 0
        rows, cols = np.nonzero(changed & (px[..., 0] > px[..., 1] + 60))
        mid = cols.mean()
        return int(rows[cols < mid].min()), int(rows[cols > mid].min())

    left, right = tops(math.pi / 2)
    assert right < left - 2
    left, right = tops(3 * math.pi / 2)
    assert left < right - 2


def test_window_renders_exactly_the_full_frame() -> None:
    """Re-casting only a window around the table changes nothing: the window holds the table and its
    shadow at every pose, including the corners of the range."""
    rng = np.random.default_rng(2)
    corners = np.array([[-2, -2], [2, -2], [-2, 2], [2, 2], [0, -2], [2, 0]], dtype=np.float64)
    xy = np.concatenate([np.repeat(corners, 8, axis=0), rng.uniform(-2, 2, (80, 2))])
    rotation = np.concatenate(
        [np.tile(np.linspace(0, 2 * math.pi, 8, endpoint=False), 6), rng.uniform(0, 7, 80)]
    )
    rgb = rng.integers(0, 256, (len(xy), 3))
    fast = render.render_tables(SIZE, xy[:, 0], xy[:, 1], rotation, rgb)
    full = render.render_tables(SIZE, xy[:, 0], xy[:, 1], rotation, rgb, full_frame=True)
    np.testing.assert_array_equal(fast, full)


def test_landmarks_are_fixed_across_examples() -> None:
    """The landmarks' pixels are the same in every image, except where a table stands in front."""
    bg = render.background(SIZE)
    n = SIZE * bg.view.ss
    kind = render.trace_scene(bg.view.eye[None, :], bg.view.dirs.reshape(-1, 3)).kind.reshape(n, n)
    blocks = kind.reshape(SIZE, bg.view.ss, SIZE, bg.view.ss)
    landmark = (blocks == render.LANDMARK).all(axis=(1, 3))
    assert landmark.sum() > 100
    rng = np.random.default_rng(3)
    m = 200
    images = render.render_tables(
        SIZE, rng.uniform(-2, 2, m), rng.uniform(-2, 2, m), rng.uniform(0, 7, m), rng.integers(0, 256, (m, 3))
    )
    same = (images == bg.image).all(axis=-1)[:, landmark].mean(axis=1)
    assert np.median(same) == 1.0
    assert same.min() > 0.9


def test_fast_path_matches_the_reference_tracer() -> None:
    """The windowed batch renderer against the plain tracer over the whole scene: the same
    silhouette; shading differs only where the reference also shadows the table itself."""
    rng = np.random.default_rng(4)
    for _ in range(6):
        x, y, rotation = rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(0, 2 * math.pi)
        rgb = tuple(float(v) for v in rng.integers(60, 256, 3))
        fast = _render(x, y, rotation, rgb).astype(np.int64)
        ref = render.render_reference(SIZE, x, y, rotation, rgb).astype(np.int64)
        background = render.background(SIZE).image.astype(np.int64)
        fast_mask = np.abs(fast - background).max(axis=-1) > 0
        ref_mask = np.abs(ref - background).max(axis=-1) > 0
        iou = (fast_mask & ref_mask).sum() / (fast_mask | ref_mask).sum()
        assert iou > 0.9
        assert (np.abs(fast - ref).max(axis=-1) <= 1).mean() > 0.98


def _square_gap(lo: tuple[float, float], hi: tuple[float, float]) -> float:
    """Distance between the range of table centres [-2, 2]² and the rectangle lo–hi on the floor."""
    a, b = scene.FLOOR_RANGE
    dx = max(lo[0] - b, a - hi[0], 0.0)
    dy = max(lo[1] - b, a - hi[1], 0.0)
    return math.hypot(dx, dy)


def test_no_pose_puts_the_table_into_a_landmark() -> None:
    reach = scene.table_radius()
    for box in scene.LANDMARK_BOXES:
        assert _square_gap(box.lo[:2], box.hi[:2]) > reach
    for cone in scene.CONES:
        assert _square_gap((cone.cx, cone.cy), (cone.cx, cone.cy)) > reach + cone.radius


def test_landmark_shadows_never_reach_the_table() -> None:
    """The fast path gives the table no shadows from landmarks; this is why it need not."""
    reach = scene.table_radius()
    lo, hi = scene.FLOOR_RANGE
    grid = np.linspace(lo - reach, hi + reach, 50)
    xx, yy = (a.ravel() for a in np.meshgrid(grid, grid))
    occluders = [render.Placed(b) for b in scene.LANDMARK_BOXES]
    for h in np.linspace(0.0, scene.TABLE_HEIGHT + scene.PANEL_HEIGHT, 5):
        points = np.stack([xx, yy, np.full_like(xx, h)], axis=1)
        assert not render._occluded(points, occluders, scene.CONES).any()
