"""Captions: seeded variety, and parse_caption reading back exactly what was encoded."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from global_workspace.data.captions import (
    COARSE_CENTRES,
    FINE_CENTRES,
    SIZE_CENTRES,
    location_bins,
    make_captions,
    parse_caption,
    rotation_sectors,
    sector_centre,
    size_bin,
)
from global_workspace.data.colors import COLOR_NAMES, COLOR_RGB, hls_to_rgb, nearest_color
from global_workspace.data.simple_shapes import sample_labels

label_rows = st.tuples(
    st.integers(0, 2),
    st.integers(7, 24),
    st.integers(7, 24),
    st.integers(7, 14),
    st.one_of(  # anywhere, and exactly on the 8- and 16-way sector boundaries
        st.floats(0, 2 * math.pi, exclude_max=True),
        st.sampled_from([k * math.pi / 16 for k in range(32)]),
    ),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
)


def _check_round_trip(row: np.ndarray, caption: str) -> None:
    parsed = parse_caption(caption)
    assert parsed.shape == int(row[0])
    assert parsed.size_bin == int(size_bin(row[3]))
    colour = int(nearest_color(row[5:8])[0])
    assert parsed.color == COLOR_NAMES[colour]
    assert parsed.color_rgb == tuple(int(v) for v in COLOR_RGB[colour])
    cx, fx = location_bins(row[1])
    cy, fy = location_bins(row[2])
    assert (parsed.coarse_x, parsed.coarse_y) == (cx, cy)
    if parsed.location_grid == 7:
        assert (parsed.location_x, parsed.location_y) == (fx, fy)
    else:
        assert parsed.location_grid == 3 and (parsed.location_x, parsed.location_y) == (cx, cy)
    sector8, half = rotation_sectors(row[4])
    assert parsed.rotation_sector8 == sector8
    assert parsed.rotation_half in (None, int(half))


@settings(max_examples=300, deadline=None)
@given(row=label_rows, seed=st.integers(0, 2**32 - 1))
def test_caption_round_trip(row: tuple, seed: int) -> None:
    labels = np.array([row], dtype=np.float32)
    (caption,) = make_captions(labels, np.random.default_rng(seed))
    _check_round_trip(labels[0], caption)


def test_round_trip_and_variety_on_many_examples() -> None:
    labels = sample_labels(np.random.default_rng(0), 3000)
    captions = make_captions(labels, np.random.default_rng(1))
    for row, caption in zip(labels, captions, strict=True):
        _check_round_trip(row, caption)
    parsed = [parse_caption(c) for c in captions]
    assert {p.location_grid for p in parsed} == {3, 7}
    assert {p.rotation_half is None for p in parsed} == {True, False}
    assert len(set(captions)) == len(captions)
    assert len({c.split(" ")[0] for c in captions}) >= 5  # openers and location-first templates
    assert captions == make_captions(labels, np.random.default_rng(1))  # seeded
    assert captions != make_captions(labels, np.random.default_rng(2))


def test_parser_reads_tokenizer_output() -> None:
    caption = "There is a big light green egg shape, pointing towards the top-left corner, in the middle."
    spaced = "there is a big light green egg shape , pointing towards the top - left corner , in the middle ."
    assert parse_caption(spaced) == parse_caption(caption)
    parsed = parse_caption(caption)
    assert (parsed.shape, parsed.size_bin, parsed.color) == (1, 3, "light green")
    assert (parsed.coarse_x, parsed.coarse_y, parsed.rotation_sector8) == (1, 1, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "A big red egg.",  # no location, no rotation
        "A big red egg pointing north.",  # no location
        "A big red egg pointing north in the middle",  # no final full stop
        "A big red egg pointing north in the middle, of large size.",  # size twice
        "A big red egg pointing north pointing south in the middle.",  # rotation twice
        "A big blurple egg pointing north in the middle.",  # unknown colour
        "A big red hexagon pointing north in the middle.",  # unknown shape
        "A big red egg pointing north in the middle. Extra words.",
        "A big red egg pointing up-ish in the middle.",
    ],
)
def test_parser_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_caption(text)


def test_approximate_labels_are_cell_centres() -> None:
    labels = sample_labels(np.random.default_rng(4), 500)
    captions = make_captions(labels, np.random.default_rng(5))
    for row, caption in zip(labels, captions, strict=True):
        parsed = parse_caption(caption)
        approx = parsed.approximate_labels()
        assert approx.dtype == np.float32 and approx.shape == (8,)
        assert approx[0] == row[0]
        centres = FINE_CENTRES if parsed.location_grid == 7 else COARSE_CENTRES
        assert approx[1] == centres[parsed.location_x] and abs(approx[1] - row[1]) <= 3
        assert abs(approx[2] - row[2]) <= 3
        assert approx[3] == SIZE_CENTRES[parsed.size_bin] and abs(approx[3] - row[3]) <= 1
        error = abs((approx[4] - row[4] + math.pi) % (2 * math.pi) - math.pi)
        assert error <= (math.pi / 16 if parsed.rotation_half is not None else math.pi / 8) + 1e-6
        np.testing.assert_array_equal(approx[5:], parsed.color_rgb)


def test_rotation_sectors_follow_the_compass() -> None:
    """Sector 0 is north, sectors count counter-clockwise (θ = π/2 is west = sector 2)."""
    sectors, _ = rotation_sectors(np.array([0.0, math.pi / 4, math.pi / 2, math.pi, 3 * math.pi / 2, 6.2]))
    assert sectors.tolist() == [0, 1, 2, 4, 6, 0]
    _, half = rotation_sectors(np.array([0.1, 2 * math.pi - 0.1]))
    assert half.tolist() == [1, 0]  # just counter-clockwise of north leans west
    assert sector_centre(0, 1) == pytest.approx(math.pi / 16)
    assert parse_caption("A tiny red egg in the middle, pointing north by west.").rotation_half == 1
    assert parse_caption("A tiny red egg in the middle, facing west.").rotation_sector8 == 2


def test_hls_matches_colorsys_and_names_are_unique() -> None:
    import colorsys

    rng = np.random.default_rng(6)
    h, lightness, s = rng.integers(0, 180, 500), rng.integers(46, 256, 500), rng.integers(0, 256, 500)
    ours = hls_to_rgb(h, lightness, s)
    for (hh, ll, ss), rgb in zip(zip(h, lightness, s, strict=True), ours, strict=True):
        expected = [round(v * 255) for v in colorsys.hls_to_rgb(hh / 180, ll / 255, ss / 255)]
        assert np.abs(rgb.astype(int) - expected).max() <= 1
    assert len(COLOR_NAMES) == len(set(COLOR_NAMES)) >= 130
    assert len({tuple(c) for c in COLOR_RGB}) == len(COLOR_NAMES)
