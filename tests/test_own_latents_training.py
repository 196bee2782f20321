"""Training and scoring on own latents: pair groups, nested --paired, gw train/evaluate, load_workspace."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error
from workspace_fixtures import one_thread  # noqa: F401

from global_workspace import load_workspace
from global_workspace.cli import main
from global_workspace.data.build_latents import build_latents
from global_workspace.workspace.data import load_latent_data
from global_workspace.workspace.pair_groups import GroupSampler, merged_loss
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Batch

pytestmark = pytest.mark.usefixtures("one_thread")

RANGES = {"v": (0, 60), "t": (30, 90), "attr": (50, 100)}
"""Each domain sees its own range of 100 underlying examples: v and t overlap on 30..59, v and
attr on 50..59, t and attr on 50..89, all three on 50..59."""


def own_triple(root: Path, seed: int = 0) -> Path:
    """Three domains of different lengths, each a linear map of a shared 4-d cause; column 0 of
    every latent is the example's id, so a batch's pairs can be checked to be true pairs."""
    rng = np.random.default_rng(seed)
    maps = {"v": rng.normal(size=(4, 5)), "t": rng.normal(size=(4, 3)), "attr": rng.normal(size=(4, 2))}
    domains: dict[str, dict[str, np.ndarray]] = {d: {} for d in RANGES}
    pairs = {}
    for split, scale in (("train", 1), ("val", 2), ("test", 3)):
        cause = rng.normal(size=(100, 4))
        for d, (lo, hi) in RANGES.items():
            ids = np.arange(lo, hi, scale)
            latent = np.concatenate([ids[:, None] / 100.0, cause[ids] @ maps[d]], axis=1)
            domains[d][split] = latent.astype(np.float32)
        rows = []
        for i in range(0, 100, scale):
            row = [(i - lo) // scale if lo <= i < hi else -1 for lo, hi in RANGES.values()]
            if sum(r >= 0 for r in row) >= 2:
                rows.append(row)
        pairs[split] = np.array(rows, dtype=np.int64)
    build_latents(root, domains, pairs)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return own_triple(tmp_path_factory.mktemp("own") / "data")


def _sampler(data: Path, members: list[MemberSpec], batch: int = 16) -> GroupSampler:
    loaded = load_latent_data(data, list(RANGES), torch.device("cpu"), splits=("train",))
    assert loaded.pairs is not None
    return GroupSampler(loaded.split("train"), loaded.pairs["train"], members, batch)


def test_pairs_are_grouped_by_the_domains_present(data: Path) -> None:
    sampler = _sampler(data, [MemberSpec(seed=0, paired=60), MemberSpec(seed=1, paired=5)])
    groups = {g.domains: g for g in sampler.groups}
    assert set(groups) == {("v", "t"), ("t", "attr"), ("v", "t", "attr")}
    *paired, unpaired = sampler.batches(torch.tensor(3))
    for batch, group in zip(paired, sampler.groups, strict=True):
        assert list(batch.latents) == list(group.domains) and batch.paired_rows == group.size
        real = torch.ones(2, batch.paired_rows) if batch.paired_weight is None else batch.paired_weight
        ids = [batch.latents[d][..., 0] * real for d in group.domains]
        for other in ids[1:]:  # every real row of a group's batch is one example in all its domains
            assert torch.equal(ids[0], other)
    assert unpaired.paired_rows == 0
    for d, (lo, hi) in RANGES.items():  # each domain draws from its own collection
        ids = unpaired.latents[d][..., 0] * 100
        assert unpaired.latents[d].shape[:2] == (2, 16)
        assert bool(((ids > lo - 0.5) & (ids < hi - 0.5)).all())
    again = sampler.batches(torch.tensor(3))
    assert all(
        torch.equal(a.latents[d], b.latents[d])
        for a, b in zip(paired, again, strict=False)
        for d in a.latents
    )


def test_paired_subsets_are_nested_and_seeded(data: Path) -> None:
    def pair_ids(paired: int, seed: int = 0) -> set[tuple[float, ...]]:
        sampler = _sampler(data, [MemberSpec(seed=seed, paired=paired)], batch=512)
        out = set()
        for group in sampler.groups:
            rows = group.rows[group.domains[0]][0, : int(group.pool[0])]
            out |= {(float(i),) for i in sampler.train[group.domains[0]][rows, 0].tolist()}
        return out

    small, large = pair_ids(10), pair_ids(40)
    assert len(small) == 10 and len(large) == 40 and small < large
    assert pair_ids(10, seed=1) != small


def test_a_term_several_groups_compute_is_weighted_by_their_pairs() -> None:
    def batch(rows: int, weight: torch.Tensor | None) -> Batch:
        return Batch({"a": torch.zeros(2, rows, 1)}, rows, weight)

    weight = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    values = iter([torch.tensor([1.0, 1.0]), torch.tensor([4.0, 4.0])])
    terms, _ = merged_loss(lambda b: ({"x": next(values)}, {}), [batch(2, None), batch(4, weight)])
    torch.testing.assert_close(terms["x"], torch.tensor([3.0, 2.0]))  # (2*1 + 4*4) / 6, (2*1 + 1*4) / 3


SMALL = ["--steps", "6", "--batch-size", "16", "--width", "8", "--depth", "2", "--eval-every", "3", "--quiet"]


def test_train_evaluate_and_load_a_workspace(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", data, "--domains", "v,t,attr", "--paired", 40, "--ensemble-seeds", 2, "--out", run]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in [*args, "--device", "cpu", *SMALL]])
    assert exc.value.code == 0
    header = (run / "train.csv").read_text().splitlines()[0].split(",")
    assert {"translation/v_to_t", "translation/attr_to_t", "contrastive/v_t", "demi_cycle/attr"} <= set(
        header
    )
    assert "val/" not in header and "translation/v_to_attr/latent_mse" in (run / "val.csv").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(run), "--device", "cpu"])
    assert exc.value.code == 0
    metrics = json.loads((run / "metrics.json").read_text())["members"][0]["metrics"]
    for name in ("translation/v_to_attr/latent_mse", "retrieval/t_to_v/top1", "cycle/v_through_t/latent_mse"):
        assert np.isfinite(metrics[name]), name
    assert not any(name.endswith("shape_accuracy") for name in metrics)  # no labels: no attributes
    ws = load_workspace(run, member=1)
    test = np.load(data / "domains" / "v" / "latents" / "test.npy")
    assert ws.translate("v", "t", test[:4]).shape == (4, 4)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["translate", str(run), "--from", "v+t", "--to", "attr", "--n", "3", "--device", "cpu"])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[0].startswith("0: truth: [") and "v+t → attr" in lines[1]


def test_more_pairs_than_the_folder_has_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n_pairs = len(np.load(data / "pairs" / "train.npy"))
    args = ["train", data, "--domains", "v,t", "--paired", n_pairs, "--out", tmp_path / "run", *SMALL]
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 2
    assert "--paired" in one_line_error(capsys)


def test_the_experiment_runs_on_own_latents(data: Path, tmp_path: Path) -> None:
    """Pair groups in training, the pairs of each two domains in scoring; no labels, no downstream."""
    exp = tmp_path / "exp"
    args = ["experiment", "semi-supervised", data, "--domains", "v,t,attr", "--presets", "tr,full",
            "--paired", "10,ALL", "--seeds", "2", "--steps", "6", "--batch-size", "8", "--eval-every", "3",
            "--device", "cpu", "--quiet", "--out", exp]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 0
    rows = list(csv.DictReader((exp / "results.csv").read_text().splitlines()))
    assert len(rows) == 2 * 2 * 2
    for row in rows:
        for name in (
            "translation/v_to_t/latent_mse",
            "translation/attr_to_v/latent_mse",
            "cycle/v_through_t/latent_mse",
        ):
            assert math.isfinite(float(row[name])), (row["member"], name)


def test_a_folder_without_train_pairs_says_so_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusals sent the user from one --paired value to another, and ALL wrote experiment.json first."""
    rng = np.random.default_rng(0)
    domains = {
        d: {s: rng.normal(size=(20, 3)).astype(np.float32) for s in ("train", "val", "test")} for d in "ab"
    }
    build_latents(
        tmp_path / "data", domains, {s: np.stack([np.arange(20)] * 2, axis=1) for s in ("val", "test")}
    )
    options = ["--domains", "a,b", "--presets", "tr", "--seeds", "1", "--steps", "3", "--quiet"]
    experiment = [
        "experiment",
        "semi-supervised",
        str(tmp_path / "data"),
        *options,
        "--out",
        str(tmp_path / "exp"),
    ]
    for paired in ("1", "ALL"):
        with pytest.raises(SystemExit) as exc:
            main([*experiment, "--paired", paired])
        assert exc.value.code == 2
        assert "holds no pairs" in one_line_error(capsys) and not (tmp_path / "exp").exists()
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tmp_path / "data"), "--domains", "a,b", "--paired", "1", "--quiet", "--out",
              str(tmp_path / "run")])  # fmt: skip
    assert exc.value.code == 2 and "--pairs train=FILE" in one_line_error(capsys)


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_folder_without_val_or_test_pairs_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], split: str
) -> None:
    """Training ran to its end and then crashed in validation (no val pairs), or scoring did (no test)."""
    rng = np.random.default_rng(0)
    domains = {
        d: {s: rng.normal(size=(20, 3)).astype(np.float32) for s in ("train", "val", "test")} for d in "ab"
    }
    pairs = {
        s: np.stack([np.arange(20), np.arange(20)], axis=1) for s in ("train", "val", "test") if s != split
    }
    data = tmp_path / "data"
    build_latents(data, domains, pairs)
    train = ["--domains", "a,b", "--paired", "10", "--device", "cpu", "--quiet"]
    commands = [
        ["train", data, *train, *SMALL, "--out", tmp_path / "run"],
        ["experiment", "semi-supervised", data, *train, "--presets", "tr", "--seeds", "1", "--steps", "3",
         "--out", tmp_path / "exp"],
    ]  # fmt: skip
    if split == "test":  # training needs no test pairs; scoring does
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in commands[0]])
        assert exc.value.code in (0, None)
        commands[0] = ["evaluate", tmp_path / "run", "--device", "cpu"]
    for command in commands:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in command])
        assert exc.value.code == 2
        assert f"has no {split} pairs among a, b" in one_line_error(capsys)
    assert not (tmp_path / "exp" / "results.csv").exists()
