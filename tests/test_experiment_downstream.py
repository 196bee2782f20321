"""Downstream tasks on workspace states: probe, zero-shot, odd-one-out, on states made by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from workspace_fixtures import one_thread  # noqa: F401

from global_workspace.experiments.downstream import (
    DownstreamSettings,
    LabelledStates,
    attribute_codes,
    downstream_metrics,
    sample_triplets,
)

pytestmark = pytest.mark.usefixtures("one_thread")

COLUMNS = ["class", "x", "y", "size", "rotation", "r", "g", "b"]


def shapes_labels(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.integers(0, 3, n),
            rng.integers(7, 25, n),
            rng.integers(7, 25, n),
            rng.integers(7, 15, n),
            rng.uniform(0, 2 * np.pi, n),
            rng.integers(0, 256, n),
            rng.integers(0, 256, n),
            rng.integers(0, 256, n),
        ],
        axis=1,
    ).astype(np.float32)


def states_from_codes(codes: np.ndarray, dim: int = 40) -> torch.Tensor:
    """A fixed map of the attribute codes into [-1, 1]^dim: every attribute readable from the state."""
    rng = np.random.default_rng(123)
    onehots = [np.eye(int(codes[:, a].max()) + 1)[codes[:, a]] for a in range(codes.shape[1])]
    feats = np.concatenate(onehots, axis=1)
    proj = rng.normal(size=(feats.shape[1], dim))
    return torch.tanh(torch.as_tensor(feats @ proj / 3, dtype=torch.float32))


SMALL = DownstreamSettings(
    labelled=300, probe_steps=150, odd_pool=600, odd_train_triplets=1500, odd_test_triplets=600, odd_steps=250
)


def test_triplets_are_unambiguous_and_balanced() -> None:
    labels = shapes_labels(500, 0)
    codes = attribute_codes(labels, COLUMNS)
    assert codes.shape == (500, 6)
    idx, odd = sample_triplets(codes, 2000, np.random.default_rng(1))
    assert idx.shape == (2000, 3) and set(np.unique(odd)) == {0, 1, 2}
    assert abs(np.mean(odd == 0) - 1 / 3) < 0.05
    c = codes[idx]  # (T, 3, A)
    for t in range(0, 2000, 37):
        others = [j for j in range(3) if j != odd[t]]
        splits = [a for a in range(codes.shape[1]) if len(set(c[t, :, a])) == 2]
        assert len(splits) == 1
        a = splits[0]
        assert c[t, others[0], a] == c[t, others[1], a] != c[t, odd[t], a]


def test_aligned_domains_transfer_and_scrambled_ones_do_not() -> None:
    train_labels, test_labels = shapes_labels(800, 1), shapes_labels(400, 2)
    z_train = states_from_codes(attribute_codes(train_labels, COLUMNS))
    z_test = states_from_codes(attribute_codes(test_labels, COLUMNS))
    scramble = torch.randperm(z_test.shape[0], generator=torch.Generator().manual_seed(0))
    # Member 0: domain b sees the same workspace as a (aligned). Member 1: b is unrelated to a.
    train = LabelledStates(
        {"a": torch.stack([z_train, z_train]), "b": torch.stack([z_train, z_train[torch.randperm(800)]])},
        train_labels,
        COLUMNS,
    )
    test = LabelledStates(
        {"a": torch.stack([z_test, z_test]), "b": torch.stack([z_test, z_test[scramble]])},
        test_labels,
        COLUMNS,
    )
    metrics = downstream_metrics(train, test, seeds=[0, 1], settings=SMALL)
    aligned, scrambled = metrics
    assert aligned["probe/a/shape_accuracy"] > 0.85
    assert aligned["zero_shot/a_to_b/shape_accuracy"] > 0.65
    assert scrambled["zero_shot/a_to_b/shape_accuracy"] < 0.45
    assert aligned["odd_one_out/a/accuracy"] > 0.5
    assert aligned["odd_one_out/a_to_b/accuracy"] > 0.5
    assert scrambled["odd_one_out/a_to_b/accuracy"] < 0.42
    for member in metrics:
        assert all(np.isfinite(v) and 0 <= v <= 1 for v in member.values())


def test_members_do_not_depend_on_each_other() -> None:
    train_labels, test_labels = shapes_labels(400, 3), shapes_labels(200, 4)
    za = states_from_codes(attribute_codes(train_labels, COLUMNS))
    zt = states_from_codes(attribute_codes(test_labels, COLUMNS))
    noise = torch.randn(za.shape, generator=torch.Generator().manual_seed(5)) * 0.3
    small = DownstreamSettings(
        labelled=200,
        probe_steps=50,
        odd_pool=400,
        odd_train_triplets=400,
        odd_test_triplets=200,
        odd_steps=50,
    )
    pair = downstream_metrics(
        LabelledStates(
            {"a": torch.stack([za, za + noise]), "b": torch.stack([za, za])}, train_labels, COLUMNS
        ),
        LabelledStates({"a": torch.stack([zt, zt]), "b": torch.stack([zt, zt])}, test_labels, COLUMNS),
        seeds=[7, 8],
        settings=small,
    )
    alone = downstream_metrics(
        LabelledStates({"a": (za + noise)[None], "b": za[None]}, train_labels, COLUMNS),
        LabelledStates({"a": zt[None], "b": zt[None]}, test_labels, COLUMNS),
        seeds=[8],
        settings=small,
    )
    # Batched matmuls of K = 1 and K = 2 may round differently; allow one flipped test item in 200.
    for key, value in alone[0].items():
        assert abs(pair[1][key] - value) <= 1 / 200 + 1e-6, key
