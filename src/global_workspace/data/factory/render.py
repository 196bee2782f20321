"""A vectorised CPU ray caster for the Factory scene (numpy only, headless).

Two paths share the scene of `scene.py`:

- `trace_scene`, a plain ray tracer over any list of oriented boxes and cones with Lambert
  shading (directional light + ambient) and shadow rays. It renders the fixed background once per
  image size, and serves as the reference a whole image is checked against (`render_reference`).
- `render_tables`, the fast path. The background (colour, depth, floor mask) is cached; for each
  image only a square window around the table and its shadow (from the projection of the table's
  bounding box) is re-cast, and only against the table's six boxes, vectorised over the images
  whose windows have the same size. The slab test works in the table's own frame, where every box
  is axis-aligned; each distinct slab is intersected once and shared by the boxes lying on it.
  Outside the window the image is the background, so the output equals a full-frame re-cast
  (`full_frame=True`) bit for bit.

Antialiasing: each output pixel averages `ss × ss` rays (supersampling, 2 × 2 by default).

Shading: `AMBIENT + DIFFUSE · max(0, n·L)`, with DIFFUSE chosen so that a lit horizontal
surface has shading exactly 1: the table's top shows the label colour unchanged. The table
casts a shadow on the floor (a shadow ray from each floor point against the table's boxes); it
receives no shadows (neither from the landmarks, whose shadows never reach the table's range,
nor from itself).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import scene
from .scene import Box, Cone

SUPERSAMPLE = 2
_EPS = 1e-4

# surface kinds returned by trace_scene
SKY, FLOOR, BACK_WALL, LANDMARK, TABLE = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class View:
    """The fixed perspective camera at one image size: eye, orthonormal frame, per-ray directions."""

    size: int
    ss: int
    eye: np.ndarray  # (3,)
    forward: np.ndarray  # (3,)
    right: np.ndarray  # (3,)
    up: np.ndarray  # (3,)
    tan_half: float
    dirs: np.ndarray  # (S, S, 3) unit ray directions, S = size · ss, row 0 at the top of the image


def make_view(size: int, ss: int = SUPERSAMPLE) -> View:
    eye = np.asarray(scene.CAMERA_EYE, dtype=np.float64)
    forward = np.asarray(scene.CAMERA_TARGET, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    tan_half = math.tan(math.radians(scene.CAMERA_FOV_DEG) / 2)
    n = size * ss
    centres = (np.arange(n) + 0.5) / n * 2.0 - 1.0  # in (-1, 1)
    px = centres[None, :, None] * tan_half
    py = -centres[:, None, None] * tan_half  # row 0 at the top
    dirs = forward + px * right + py * up
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    return View(size, ss, eye, forward, right, up, tan_half, dirs)


def project(view: View, points: np.ndarray) -> np.ndarray:
    """Image coordinates (..., 2) as (column, row) in output pixels of world points (..., 3).

    Pixel (r, c) covers [c, c + 1) × [r, r + 1); rows grow downwards.
    """
    q = np.asarray(points, dtype=np.float64) - view.eye
    depth = q @ view.forward
    px = (q @ view.right) / (depth * view.tan_half)
    py = (q @ view.up) / (depth * view.tan_half)
    return np.stack([(px + 1.0) / 2.0 * view.size, (1.0 - py) / 2.0 * view.size], axis=-1)


# --------------------------------------------------------------------------------------------
# The plain tracer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A box turned by `angle` (counter-clockwise about z, its frame to the world) then moved to (x, y)."""

    box: Box
    x: float = 0.0
    y: float = 0.0
    angle: float = 0.0
    color: tuple[float, float, float] | None = None  # overrides box.color


def placed_table(x: float, y: float, rotation: float, rgb: tuple[float, float, float]) -> list[Placed]:
    """The table's boxes in the world. Its frame has u forward, v left: u maps to the direction
    (−sin θ, cos θ), i.e. the frame is turned by θ + π/2."""
    return [Placed(b, x, y, rotation + math.pi / 2, rgb) for b in scene.table_boxes()]


def _box_hit(o: np.ndarray, d: np.ndarray, p: Placed) -> tuple[np.ndarray, np.ndarray]:
    """Entry distance (N,) (inf where missed) and world normal (N, 3) of rays o, d (N, 3)."""
    c, s = math.cos(p.angle), math.sin(p.angle)
    ox, oy = o[:, 0] - p.x, o[:, 1] - p.y
    lo_ = np.stack([c * ox + s * oy, -s * ox + c * oy, o[:, 2]], axis=1)  # world → box frame
    ld = np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / ld
        t1 = (np.asarray(p.box.lo) - lo_) * inv
        t2 = (np.asarray(p.box.hi) - lo_) * inv
    t1 = np.nan_to_num(t1, nan=-np.inf)
    t2 = np.nan_to_num(t2, nan=np.inf)
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    near, far = tmin.max(axis=1), tmax.min(axis=1)
    hit = (near <= far) & (far > _EPS)
    t = np.where(hit, np.maximum(near, 0.0), np.inf)
    axis = tmin.argmax(axis=1)
    local_n = np.zeros_like(lo_)
    local_n[np.arange(len(o)), axis] = -np.sign(ld[np.arange(len(o)), axis])
    normal = np.stack(
        [c * local_n[:, 0] - s * local_n[:, 1], s * local_n[:, 0] + c * local_n[:, 1], local_n[:, 2]], axis=1
    )
    return t, normal


def _cone_hit(o: np.ndarray, d: np.ndarray, cone: Cone) -> tuple[np.ndarray, np.ndarray]:
    """Nearest positive hit (N,) on the side of an upright cone, and its unit normal (N, 3)."""
    k2 = (cone.radius / cone.height) ** 2
    dx, dy, w = o[:, 0] - cone.cx, o[:, 1] - cone.cy, cone.height - o[:, 2]
    a = d[:, 0] ** 2 + d[:, 1] ** 2 - k2 * d[:, 2] ** 2
    b = 2.0 * (dx * d[:, 0] + dy * d[:, 1] + k2 * w * d[:, 2])
    cc = dx**2 + dy**2 - k2 * w**2
    disc = b * b - 4 * a * cc
    t = np.full(len(o), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = np.sqrt(np.maximum(disc, 0.0))
        for root in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)):
            z = o[:, 2] + root * d[:, 2]
            ok = (disc >= 0) & (root > _EPS) & (z >= 0.0) & (z <= cone.height) & (root < t)
            t = np.where(ok, root, t)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    n = np.stack([p[:, 0] - cone.cx, p[:, 1] - cone.cy, k2 * (cone.height - p[:, 2])], axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return t, n


def _occluded(p: np.ndarray, boxes: list[Placed], cones: tuple[Cone, ...]) -> np.ndarray:
    """Whether the shadow ray from each point p (N, 3) towards the light hits any object."""
    light = np.broadcast_to(np.asarray(scene.LIGHT_DIR), p.shape)
    blocked = np.zeros(len(p), dtype=bool)
    for b in boxes:
        blocked |= np.isfinite(_box_hit(p, light, b)[0])
    for c in cones:
        blocked |= np.isfinite(_cone_hit(p, light, c)[0])
    return blocked


@dataclass(frozen=True)
class Traced:
    color: np.ndarray  # (N, 3) float64, 0–255
    depth: np.ndarray  # (N,) distance along the unit ray, inf for the sky
    kind: np.ndarray  # (N,) SKY, FLOOR, BACK_WALL, LANDMARK or TABLE
    albedo: np.ndarray  # (N, 3) unshaded surface colour


def trace_scene(o: np.ndarray, d: np.ndarray, extra: list[Placed] | None = None) -> Traced:
    """Trace rays o, d (N, 3) through the landmarks, floor and back wall (+ `extra` boxes, kind TABLE)."""
    n = len(d)
    o = np.broadcast_to(o, d.shape)
    best = np.full(n, np.inf)
    normal = np.zeros((n, 3))
    albedo = np.zeros((n, 3))
    kind = np.full(n, SKY, dtype=np.int64)

    def take(t: np.ndarray, nrm: np.ndarray, col: np.ndarray, k: int) -> None:
        nonlocal best
        closer = t < best
        best = np.where(closer, t, best)
        normal[closer] = np.broadcast_to(nrm, (n, 3))[closer]
        albedo[closer] = np.broadcast_to(col, (n, 3))[closer]
        kind[closer] = k

    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(d[:, 2] < 0, -o[:, 2] / d[:, 2], np.inf)
        t_wall = np.where(d[:, 1] > 0, (scene.BACK_WALL_Y - o[:, 1]) / d[:, 1], np.inf)
    fp = o + np.where(np.isfinite(t_floor), t_floor, 0.0)[:, None] * d
    t_floor = np.where(fp[:, 1] < scene.BACK_WALL_Y, t_floor, np.inf)
    tile = (np.floor(fp[:, 0]) + np.floor(fp[:, 1])).astype(np.int64) % 2
    take(t_floor, np.array([0.0, 0.0, 1.0]), np.asarray(scene.FLOOR_COLORS)[tile], FLOOR)
    take(t_wall, np.array([0.0, -1.0, 0.0]), np.asarray(scene.BACK_WALL_COLOR), BACK_WALL)

    occluders = [Placed(b) for b in scene.LANDMARK_BOXES]
    for p in occluders:
        t, nrm = _box_hit(o, d, p)
        take(t, nrm, np.asarray(p.box.color), LANDMARK)
    for cone in scene.CONES:
        t, nrm = _cone_hit(o, d, cone)
        z = o[:, 2] + np.where(np.isfinite(t), t, 0.0) * d[:, 2]
        band = (z > 0.3 * cone.height) & (z < 0.5 * cone.height)
        col = np.where(band[:, None], np.asarray(cone.stripe), np.asarray(cone.color))
        take(t, nrm, col, LANDMARK)
    for p in extra or []:
        t, nrm = _box_hit(o, d, p)
        take(t, nrm, np.asarray(p.color if p.color is not None else p.box.color), TABLE)

    hit = np.isfinite(best)
    point = o + np.where(hit, best, 0.0)[:, None] * d + _EPS * 10 * normal
    lit = ~_occluded(point, occluders + list(extra or []), scene.CONES)
    lambert = np.maximum(normal @ np.asarray(scene.LIGHT_DIR), 0.0) * lit
    shade = scene.AMBIENT + scene.DIFFUSE * lambert
    color = np.where(hit[:, None], albedo * shade[:, None], np.asarray(scene.SKY_COLOR))
    return Traced(np.clip(color, 0.0, 255.0), best, kind, albedo)


def downsample(ss_image: np.ndarray, ss: int) -> np.ndarray:
    """Average ss × ss blocks of (..., H·ss, W·ss, C) and round to uint8."""
    total = sum(ss_image[..., i::ss, j::ss, :] for i in range(ss) for j in range(ss))
    return np.clip(np.rint(total * np.float32(1.0 / (ss * ss))), 0, 255).astype(np.uint8)


def render_reference(
    size: int, x: float, y: float, rotation: float, rgb: tuple[float, float, float], ss: int = SUPERSAMPLE
) -> np.ndarray:
    """One whole image (size, size, 3) uint8 traced ray by ray through the full scene.

    Unlike the fast path, the table here also receives shadows (from itself and the landmarks)
    and shadows the landmarks; the tests bound the difference.
    """
    view = make_view(size, ss)
    d = view.dirs.reshape(-1, 3)
    traced = trace_scene(view.eye[None, :], d, placed_table(x, y, rotation, rgb))
    return downsample(traced.color.reshape(size * ss, size * ss, 3), ss)


# --------------------------------------------------------------------------------------------
# The fast path
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Background:
    """The fixed scene at one image size, cached per process."""

    view: View
    image: np.ndarray  # (size, size, 3) uint8
    planes: np.ndarray  # (PLANES, S, S) float32, supersampled; one slice per window copies them all


# channels of Background.planes
_DIR = slice(0, 3)  # unit ray direction (x, y, z)
_DEPTH = 3  # distance to the background surface along the ray, inf for the sky
_COLOR = slice(4, 7)  # background colour, 0–255
_SHADOWED = slice(7, 10)  # the colour where the table's shadow falls
_FLOOR = 10  # 1 where the background surface is the floor
PLANES = 11


@functools.lru_cache(maxsize=4)
def background(size: int, ss: int = SUPERSAMPLE) -> Background:
    view = make_view(size, ss)
    if view.dirs[..., 2].max() >= 0:
        raise AssertionError("the fast path assumes every camera ray goes down (dz < 0)")
    n = size * ss
    traced = trace_scene(view.eye[None, :], view.dirs.reshape(-1, 3))
    color = traced.color.reshape(n, n, 3)
    planes = np.empty((PLANES, n, n), dtype=np.float32)
    planes[_DIR] = view.dirs.transpose(2, 0, 1)
    planes[_DEPTH] = traced.depth.reshape(n, n)
    planes[_COLOR] = color.transpose(2, 0, 1)
    # the floor's lit shading is exactly 1, so in the table's shadow it keeps only the ambient term
    planes[_SHADOWED] = (traced.albedo * scene.AMBIENT).reshape(n, n, 3).transpose(2, 0, 1)
    planes[_FLOOR] = (traced.kind == FLOOR).reshape(n, n)
    # the image from the float32 planes the windows are re-cast from: untouched pixels match exactly
    return Background(view=view, image=downsample(planes[_COLOR].transpose(1, 2, 0), ss), planes=planes)


def _table_bounds(x: np.ndarray, y: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """World points (B, 12, 3) whose convex hull holds the table at each pose and its shadow:
    the corners of its bounding box and the floor shadows of the box's upper corners."""
    hl, hw, top = scene.TABLE_LENGTH / 2, scene.TABLE_WIDTH / 2, scene.TABLE_HEIGHT + scene.PANEL_HEIGHT
    u = np.array([hl, hl, -hl, -hl])
    v = np.array([hw, -hw, -hw, hw])
    s, c = np.sin(rotation)[:, None], np.cos(rotation)[:, None]
    wx = x[:, None] - s * u - c * v  # u → (−sin θ, cos θ), v → (−cos θ, −sin θ)
    wy = y[:, None] + c * u - s * v
    light = np.asarray(scene.LIGHT_DIR)
    sx, sy = -light[0] / light[2] * top, -light[1] / light[2] * top  # shadow of a point at `top`
    zeros, tops = np.zeros_like(wx), np.full_like(wx, top)
    return np.concatenate(
        [np.stack(p, axis=-1) for p in ((wx, wy, zeros), (wx, wy, tops), (wx + sx, wy + sy, zeros))], axis=1
    )


def _windows(view: View, x: np.ndarray, y: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, ...]:
    """Top-left corner (row, column) and side, in output pixels, of the window re-cast for each
    image: it holds the table and its shadow, lies inside the image, and its side is a multiple
    of WINDOW_STEP so that images with windows of one size render together."""
    uv = project(view, _table_bounds(x, y, rotation))
    lo = np.floor(uv.min(axis=1)).astype(np.int64) - 1
    hi = np.ceil(uv.max(axis=1)).astype(np.int64) + 1
    side = np.minimum(-(-(hi - lo).max(axis=1) // WINDOW_STEP) * WINDOW_STEP, view.size)
    r0 = np.clip(lo[:, 1], 0, view.size - side)
    c0 = np.clip(lo[:, 0], 0, view.size - side)
    return r0, c0, side


WINDOW_STEP = 4


class _Slabs:
    """The table's boxes as intervals per axis of its own frame (u, v, z); shared intervals once."""

    def __init__(self, boxes: list[Box]) -> None:
        self.intervals: list[list[tuple[float, float]]] = [[], [], []]
        self.index: list[tuple[int, int, int]] = []
        for b in boxes:
            idx = []
            for a in range(3):
                iv = (b.lo[a], b.hi[a])
                if iv not in self.intervals[a]:
                    self.intervals[a].append(iv)
                idx.append(self.intervals[a].index(iv))
            self.index.append((idx[0], idx[1], idx[2]))
        self.lo = np.array([b.lo for b in boxes], dtype=np.float32)
        self.hi = np.array([b.hi for b in boxes], dtype=np.float32)


_SLABS = _Slabs(scene.table_boxes())


def _slab_passages(o: np.ndarray, inv: np.ndarray, intervals: list[tuple[float, float]]) -> list[tuple]:
    """(t_in, t_out) of rays o + t·d through each slab lo ≤ coordinate ≤ hi along one axis."""
    out = []
    for lo, hi in intervals:
        t1 = (np.float32(lo) - o) * inv
        t2 = (np.float32(hi) - o) * inv
        out.append((np.minimum(t1, t2), np.maximum(t1, t2)))
    return out


#: Rays cast together at most (images × window pixels × ss²): keeps the work arrays in cache.
BATCH_RAYS = 80_000


def render_tables(
    size: int,
    x: np.ndarray,
    y: np.ndarray,
    rotation: np.ndarray,
    rgb: np.ndarray,
    ss: int = SUPERSAMPLE,
    full_frame: bool = False,
) -> np.ndarray:
    """Images (B, size, size, 3) uint8 of the table at each pose (x, y, rotation (B,)) and colour (B, 3).

    `full_frame` re-casts every pixel instead of a window around the table (same output, slower;
    for tests).
    """
    bg = background(size, ss)
    x, y, rotation = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (x, y, rotation))
    rgb = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    r0, c0, side = _windows(bg.view, x, y, rotation)
    if full_frame:
        r0, c0, side = np.zeros_like(r0), np.zeros_like(c0), np.full_like(side, size)
    out = np.broadcast_to(bg.image, (len(x), size, size, 3)).copy()
    for win in np.unique(side).tolist():
        same = np.nonzero(side == win)[0]
        step = max(1, BATCH_RAYS // (win * ss) ** 2)
        for idx in (same[i : i + step] for i in range(0, len(same), step)):
            patch = _render_windows(bg, win, r0[idx], c0[idx], x[idx], y[idx], rotation[idx], rgb[idx])
            for j, i in enumerate(idx.tolist()):
                out[i, r0[i] : r0[i] + win, c0[i] : c0[i] + win] = patch[j]
    return out


def _render_windows(
    bg: Background,
    win: int,
    r0: np.ndarray,
    c0: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    rotation: np.ndarray,
    rgb: np.ndarray,
) -> np.ndarray:
    """The (B, win, win, 3) uint8 windows with top-left corners (r0, c0) of B images."""
    ss = bg.view.ss
    w = win * ss
    # (B, PLANES, w, w): every background plane of each image's window, one copy per image
    corners = zip((r0 * ss).tolist(), (c0 * ss).tolist(), strict=True)
    planes = np.stack([bg.planes[:, r : r + w, c : c + w] for r, c in corners])
    dx, dy, dz = planes[:, 0], planes[:, 1], planes[:, 2]
    depth = planes[:, _DEPTH]

    # the table's frame: u = (−sin θ, cos θ), v = (−cos θ, −sin θ), z up; (B, 1, 1) per image
    s = np.sin(rotation).astype(np.float32)[:, None, None]
    c = np.cos(rotation).astype(np.float32)[:, None, None]
    ex = (bg.view.eye[0] - x).astype(np.float32)[:, None, None]
    ey = (bg.view.eye[1] - y).astype(np.float32)[:, None, None]
    ez = np.float32(bg.view.eye[2])
    o = (-s * ex + c * ey, -c * ex - s * ey)
    du, dv = -s * dx + c * dy, -c * dx - s * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        pu = _slab_passages(o[0], np.float32(1.0) / du, _SLABS.intervals[0])
        pv = _slab_passages(o[1], np.float32(1.0) / dv, _SLABS.intervals[1])
    inv_z = np.float32(1.0) / dz
    # every camera ray goes down: it enters a z slab at its top and leaves at its bottom
    pz = [((np.float32(hi) - ez) * inv_z, (np.float32(lo) - ez) * inv_z) for lo, hi in _SLABS.intervals[2]]
    best = depth
    on_table = np.zeros(best.shape, dtype=bool)
    face_z = np.zeros(best.shape, dtype=bool)  # the ray enters the hit box through its top
    face_u = np.zeros(best.shape, dtype=bool)  # ... else through a face across u, else across v
    for iu, iv, iz in _SLABS.index:
        (nu, fu), (nv, fv), (nz, fz) = pu[iu], pv[iv], pz[iz]
        near_uv = np.maximum(nu, nv)
        near = np.maximum(near_uv, nz)
        hit = (near <= np.minimum(np.minimum(fu, fv), fz)) & (near < best)
        best = np.where(hit, near, best)
        on_table |= hit
        face_z = np.where(hit, nz >= near_uv, face_z)
        face_u = np.where(hit, nu >= nv, face_u)

    color = planes[:, _COLOR]  # (B, 3, w, w), a copy: safe to overwrite
    floor = (planes[:, _FLOOR] > 0) & ~on_table
    dark = _floor_shadow(floor, depth, (du, dv), o, s, c)
    np.copyto(color, planes[:, _SHADOWED], where=dark[:, None])
    shade = _table_shading(face_z, face_u, du, dv, s, c)
    np.copyto(color, rgb[:, :, None, None] * shade[:, None], where=on_table[:, None])
    return downsample(color.transpose(0, 2, 3, 1), ss)


def _floor_shadow(
    floor: np.ndarray,
    depth: np.ndarray,
    duv: tuple[np.ndarray, np.ndarray],
    o: tuple[np.ndarray, np.ndarray],
    s: np.ndarray,
    c: np.ndarray,
) -> np.ndarray:
    """Which visible floor points (B, w, w) see the table on their ray towards the light."""
    light = np.asarray(scene.LIGHT_DIR, dtype=np.float32)
    t = np.where(floor, depth, np.float32(0.0))
    pu = o[0] + t * duv[0]  # floor point in the table's frame
    pv = o[1] + t * duv[1]
    lu = -s * light[0] + c * light[1]  # (B, 1, 1)
    lv = -c * light[0] - s * light[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        su = _slab_passages(pu, np.float32(1.0) / lu, _SLABS.intervals[0])
        sv = _slab_passages(pv, np.float32(1.0) / lv, _SLABS.intervals[1])
    # along the shadow ray from the floor (z = 0) the height is t·Lz: the z slabs are constants
    sz = [(np.float32(lo / light[2]), np.float32(hi / light[2])) for lo, hi in _SLABS.intervals[2]]
    dark = np.zeros(floor.shape, dtype=bool)
    for iu, iv, iz in _SLABS.index:
        (nu, fu), (nv, fv), (nz, fz) = su[iu], sv[iv], sz[iz]
        dark |= np.maximum(np.maximum(nu, nv), nz) <= np.minimum(np.minimum(fu, fv), fz)
    return dark & floor


def _table_shading(
    face_z: np.ndarray, face_u: np.ndarray, du: np.ndarray, dv: np.ndarray, s: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Lambert shading (B, w, w) of the face each ray enters: its outward normal is −sign(d) along
    the entered axis, in the table's frame; a top face (normal +z) has shading exactly 1."""
    light = np.asarray(scene.LIGHT_DIR, dtype=np.float32)
    lu = -s * light[0] + c * light[1]  # the light in the table's frame, (B, 1, 1)
    lv = -c * light[0] - s * light[1]
    a, k = np.float32(scene.AMBIENT), np.float32(scene.DIFFUSE)
    shade_u = np.where(du > 0, a + k * np.maximum(-lu, 0), a + k * np.maximum(lu, 0))
    shade_v = np.where(dv > 0, a + k * np.maximum(-lv, 0), a + k * np.maximum(lv, 0))
    top = np.float32(scene.AMBIENT + scene.DIFFUSE * scene.LIGHT_DIR[2])
    return np.where(face_z, top, np.where(face_u, shade_u, shade_v))
