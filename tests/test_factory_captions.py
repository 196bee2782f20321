"""Factory captions: every caption reads back to what the labels say; anything else is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from global_workspace.data.factory.captions import (
    FactoryCaption,
    approximate_labels,
    describe,
    make_factory_captions,
    parse_factory_caption,
)

_label = st.tuples(
    st.floats(-2.0, 2.0),
    st.floats(-2.0, 2.0),
    st.floats(0.0, 2 * math.pi, exclude_max=True),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_label, min_size=1, max_size=8), st.integers(0, 2**32 - 1))
def test_caption_round_trip(rows: list[tuple], seed: int) -> None:
    labels = np.array(rows, dtype=np.float32)
    captions = make_factory_captions(labels, np.random.default_rng(seed))
    assert [parse_factory_caption(c) for c in captions] == describe(labels)


def test_captions_are_reproducible_and_varied() -> None:
    rng = np.random.default_rng(0)
    labels = np.column_stack(
        [rng.uniform(-2, 2, (500, 2)), rng.uniform(0, 2 * math.pi, 500), rng.integers(0, 256, (500, 3))]
    )
    first = make_factory_captions(labels, np.random.default_rng(5))
    assert first == make_factory_captions(labels, np.random.default_rng(5))
    assert first != make_factory_captions(labels, np.random.default_rng(6))
    same = np.repeat(labels[:1], 200, axis=0)
    assert len(set(make_factory_captions(same, np.random.default_rng(1)))) > 100  # many surface forms


def test_the_issue_examples_parse() -> None:
    red = parse_factory_caption("A red table close to the cones at the top pointing to the top right")
    assert red == FactoryCaption("red", (255, 0, 0), "cones", 1, 2, 7)
    orange = parse_factory_caption("An orange table at the middle of the scene pointing to the West")
    assert orange == FactoryCaption("orange", (255, 165, 0), None, 1, 1, 2)


def test_parser_normalises_case_and_spacing() -> None:
    text = "IN THE MIDDLE , there is a   Dark Slate Gray desk facing North-West , near the wall ."
    assert parse_factory_caption(text) == FactoryCaption("dark slate gray", (47, 79, 79), "wall", 1, 1, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "A red table.",  # no region, no direction
        "A red table at the top.",  # no direction
        "A red table at the top pointing to the top right pointing north.",  # direction twice
        "A red table at the top at the bottom pointing north.",  # region twice
        "A red table painted blue at the top pointing north.",  # colour twice
        "A puce table at the top pointing north.",  # not a colour of the table
        "A red chair at the top pointing north.",
        "A red table at the top pointing north and",
        "A big red egg at the top left, pointing north.",  # a Simple Shapes caption
    ],
)
def test_parser_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_factory_caption(text)


def test_approximate_labels_agree_with_the_caption() -> None:
    """Continuous attributes read from a caption describe to the same caption attributes."""
    rng = np.random.default_rng(2)
    labels = np.column_stack(
        [rng.uniform(-2, 2, (300, 2)), rng.uniform(0, 2 * math.pi, 300), rng.integers(0, 256, (300, 3))]
    )
    captions = make_factory_captions(labels, rng)
    approx = np.array([approximate_labels(parse_factory_caption(c)) for c in captions])
    assert describe(approx) == describe(labels)
    assert np.abs(approx[:, :2] - labels[:, :2]).mean() < 0.5  # metres, the cells are 1.33 m wide
