"""The trainer: schedule and optimiser parity with torch, ensemble = solo, sampling, resume, NaN."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from workspace_fixtures import linear_pair, one_thread  # noqa: F401

from global_workspace.domains.latent_loss import LatentLoss
from global_workspace.domains.latents import LatentSpec
from global_workspace.errors import UserError
from global_workspace.workspace import data as latent_data
from global_workspace.workspace.checkpoint import current_checkpoint, load_model
from global_workspace.workspace.families import family_of
from global_workspace.workspace.losses import active_categories
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.run import evaluate_run, make_config, train_workspace
from global_workspace.workspace.sampling import Sampler, pair_permutation
from global_workspace.workspace.settings import WorkspaceConfig
from global_workspace.workspace.trainer import (
    FlatAdamW,
    NonFiniteLoss,
    TrainConfig,
    Trainer,
    member_coefficients,
    one_cycle_lr,
)

DOMAINS = {"v": 5, "attr": 4}
SPECS = {"v": LatentSpec("v", 5, LatentLoss()), "attr": LatentSpec("attr", 4, LatentLoss(categorical=2))}


pytestmark = pytest.mark.usefixtures("one_thread")


def _train_latents(n: int = 300) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {d: torch.randn(n, k, generator=gen) for d, k in DOMAINS.items()}


def _trainer(members: Sequence[MemberSpec], steps: int = 30, batch: int = 64) -> Trainer:
    family = family_of(members)
    model = family.build_model(WorkspaceConfig(domains=DOMAINS, width=16, depth=3), [m.seed for m in members])
    task = family.build_task(SPECS, active_categories(members), False)
    coefficients = member_coefficients(
        task.categories, [m.coefficients for m in members], torch.device("cpu")
    )
    config = TrainConfig(steps=steps, batch_size=batch, lr=3e-3)
    return Trainer(model, task, Sampler(_train_latents(), members, batch), coefficients, config)


def test_one_cycle_matches_torch() -> None:
    steps = 97
    config = TrainConfig(steps=steps, lr=3e-3)
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=config.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=steps, cycle_momentum=False
    )
    for step in range(steps):
        ours = one_cycle_lr(torch.tensor(step), config).item()
        assert ours == pytest.approx(opt.param_groups[0]["lr"], rel=1e-5, abs=1e-6 * config.lr), step
        opt.step()
        sched.step()


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_one_cycle_is_finite_for_tiny_runs(steps: int) -> None:
    config = TrainConfig(steps=steps)
    lrs = [one_cycle_lr(torch.tensor(s), config).item() for s in range(steps + 2)]
    assert all(0 < lr <= config.lr for lr in lrs)


def test_flat_adamw_matches_torch_adamw() -> None:
    gen = torch.Generator().manual_seed(0)
    ours = [nn.Parameter(torch.randn(3, 4, generator=gen)), nn.Parameter(torch.randn(5, generator=gen))]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    config = TrainConfig(weight_decay=0.1)
    opt = FlatAdamW([("a", ours[0]), ("b", ours[1])], config)
    ref = torch.optim.AdamW(theirs, lr=1e-2, weight_decay=0.1, betas=config.betas, eps=config.eps)
    for step in range(5):
        grads = [torch.randn(p.shape, generator=gen) for p in ours]
        opt.update(grads, torch.tensor(1e-2), torch.tensor(step))
        for p, g in zip(theirs, grads, strict=True):
            p.grad = g.clone()
        ref.step()
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "presets",
    [
        ("full", "tr", "tr+cy"),
        ("fusion", "fusion", "fusion"),
        ("fusion-gated", "fusion-gated", "fusion-gated"),
    ],
)
def test_ensemble_member_trains_like_a_solo_run(presets: tuple[str, str, str]) -> None:
    # Members with fewer pairs than the ensemble's paired batch see padded rows; their fusion
    # weights must not depend on that padding.
    members = [
        MemberSpec.from_preset(presets[0], seed=3, paired=40),
        MemberSpec.from_preset(presets[1], seed=5, paired=300),
        MemberSpec.from_preset(presets[2], seed=7, paired=10),
    ]
    together = _trainer(members)
    together.run(30)
    for k in (0, 2):
        alone = _trainer([members[k]])
        alone.run(30)
        for (name, a), b in zip(
            alone.model.state_dict().items(), together.model.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(a[0], b[k], rtol=1e-4, atol=1e-5, msg=name)


def test_batches_do_not_depend_on_other_members() -> None:
    a = MemberSpec.from_preset("full", seed=1, paired=30)
    b = MemberSpec.from_preset("tr", seed=2, paired=200)
    data = _train_latents()
    solo = Sampler(data, [a], 64).batch(torch.tensor(4))
    pair = Sampler(data, [b, a], 64).batch(torch.tensor(4))
    for d in DOMAINS:
        torch.testing.assert_close(solo.latents[d][0, :30], pair.latents[d][1, :30])  # its 30 pairs
        torch.testing.assert_close(solo.latents[d][0, 30:], pair.latents[d][1, 64:])  # unpaired rows
    assert pair.paired_weight is not None and pair.paired_weight[1].sum() == 30


def test_pairs_are_nested_and_seeded() -> None:
    assert torch.equal(pair_permutation(100, 0), pair_permutation(100, 0))
    assert not torch.equal(pair_permutation(100, 0), pair_permutation(100, 1))
    small = Sampler(_train_latents(), [MemberSpec(seed=0, paired=10)], 64)
    large = Sampler(_train_latents(), [MemberSpec(seed=0, paired=50)], 64)
    assert set(small.pair_table[0].tolist()) <= set(large.pair_table[0].tolist())


def test_sampled_indices_cover_the_pool_uniformly() -> None:
    data = {"v": torch.arange(300.0).unsqueeze(1), "attr": torch.zeros(300, 1)}
    sampler = Sampler(data, [MemberSpec(seed=0, paired=300)], 100)
    seen = torch.cat([sampler.batch(torch.tensor(s)).latents["v"][0, :100, 0] for s in range(300)])
    counts = torch.bincount(seen.long(), minlength=300).float()
    assert counts.min() > 50 and counts.max() < 160  # 100 expected per index
    assert not torch.equal(
        sampler.batch(torch.tensor(0)).latents["v"], sampler.batch(torch.tensor(1)).latents["v"]
    )


@pytest.mark.parametrize("paired", [40, 300])
def test_pair_positions_mark_where_each_pair_sits_in_the_members_list(paired: int) -> None:
    # Whether the pool is used whole (40 <= batch) or sampled (300), a row's position says which
    # of the member's pairs it holds, so a task can set the last ones aside.
    data = {"v": torch.arange(300.0).unsqueeze(1), "attr": torch.zeros(300, 1)}
    sampler = Sampler(data, [MemberSpec(seed=0, paired=paired)], 64)
    last = set(sampler.pair_table[0, int(0.9 * paired) :].tolist())
    held: set[int] = set()
    for step in range(40):
        batch = sampler.batch(torch.tensor(step))
        assert batch.pair_position is not None
        rows = batch.latents["v"][0, : min(paired, 64), 0].long()
        late = batch.pair_position[0, : min(paired, 64)] >= 0.9
        assert set(rows[late].tolist()) <= last and not set(rows[~late].tolist()) & last
        held |= set(rows[late].tolist())
    assert held == last


def test_frozen_specialist_gets_no_gradient() -> None:
    """The specialist only makes latents; training the workspace leaves it untouched."""
    specialist = nn.Linear(7, 5)
    before = {k: v.clone() for k, v in specialist.state_dict().items()}
    with torch.no_grad():
        latents = {"v": specialist(torch.randn(300, 7)), "attr": torch.randn(300, 4)}
    members = [MemberSpec.from_preset("full", seed=0, paired=50)]
    trainer = _trainer(members)
    trainer.sampler = Sampler(latents, members, 64)
    trainer.run(5)
    assert all(p.grad is None for p in specialist.parameters())
    assert all(torch.equal(before[k], v) for k, v in specialist.state_dict().items())
    assert {id(p) for p in trainer.params} <= {id(p) for p in trainer.model.parameters()}


def _run(tmp: Path, data: Path, steps: int, eval_every: int, **kw: object) -> dict[str, object]:
    members = [
        MemberSpec.from_preset("full", seed=0, paired=40),
        MemberSpec.from_preset("tr", seed=1, paired=80),
    ]
    train = TrainConfig(steps=steps, batch_size=64, eval_every=eval_every, log_every=5)
    config = make_config(data, ["a", "b"], members, train, width=16, depth=3)
    return train_workspace(config, tmp, "cpu", progress=False, tensorboard=False, **kw)  # type: ignore[arg-type]


def test_resume_equals_uninterrupted_and_checkpoint_round_trips(tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    _run(tmp_path / "full", data, steps=20, eval_every=10)
    _run(tmp_path / "cut", data, steps=20, eval_every=0, until=13)  # interrupted after step 13
    _, partial, step = load_model(tmp_path / "cut", torch.device("cpu"))
    assert step == 13
    with pytest.raises(UserError, match="stopped at step 13 of 20; pass --resume to finish it, or --force"):
        _run(tmp_path / "cut", data, steps=20, eval_every=10)  # run again without --resume
    _run(tmp_path / "cut", data, steps=20, eval_every=10, resume=True)
    config, full, step = load_model(tmp_path / "full", torch.device("cpu"))
    _, resumed, step_resumed = load_model(tmp_path / "cut", torch.device("cpu"))
    assert step == step_resumed == 20
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    rows = (tmp_path / "cut" / "train.csv").read_text().splitlines()[1:]
    # Resuming a finished run trains nothing and keeps the speed its last leg measured.
    speed = json.loads((tmp_path / "cut" / "summary.json").read_text())["steps_per_second"]
    assert speed > 0
    assert _run(tmp_path / "cut", data, steps=20, eval_every=10, resume=True)["steps_per_second"] == speed
    assert [int(r.split(",")[0]) for r in rows[::2]] == [5, 10, 13, 15, 20]
    # Round trip: a model loaded from the checkpoint gives the trained model's outputs.
    x = torch.randn(7, config.workspace.domains["a"])
    _, again, _ = load_model(tmp_path / "full", torch.device("cpu"))
    assert torch.equal(full.translate("a", "b", x), again.translate("a", "b", x))
    assert not torch.equal(partial.translate("a", "b", x), full.translate("a", "b", x))


def _tensorboard_steps(run: Path, prefix: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    return sorted(
        {e.step for tag in events.Tags()["scalars"] if tag.startswith(prefix) for e in events.Scalars(tag)}
    )


def test_a_resumed_run_keeps_every_tensorboard_step_its_csv_files_keep(tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    members = [MemberSpec.from_preset("full", seed=0, paired=40)]
    config = make_config(
        data,
        ["a", "b"],
        members,
        TrainConfig(steps=20, batch_size=64, eval_every=5, log_every=5),
        width=16,
        depth=3,
    )
    train_workspace(config, tmp_path / "run", "cpu", progress=False, until=10)  # stops at a checkpoint
    train_workspace(config, tmp_path / "run", "cpu", progress=False, resume=True)
    for kind in ("train", "val"):
        rows = (tmp_path / "run" / f"{kind}.csv").read_text().splitlines()[1:]
        assert _tensorboard_steps(tmp_path / "run", f"{kind}/") == [5, 10, 15, 20]
        assert sorted({int(r.split(",")[0]) for r in rows}) == [5, 10, 15, 20]


def test_resume_refuses_other_latents_but_follows_a_moved_dataset(tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    _run(tmp_path / "run", data, steps=20, eval_every=0, until=5)
    other = linear_pair(tmp_path / "other", n=300, seed=1)
    with pytest.raises(UserError, match="other latents"):
        _run(tmp_path / "run", other, steps=20, eval_every=0, resume=True)
    moved = tmp_path / "moved"
    data.rename(moved)
    _run(tmp_path / "run", moved, steps=20, eval_every=0, resume=True)
    config, _, step = load_model(tmp_path / "run", torch.device("cpu"))
    assert step == 20 and config.data == str(moved.resolve())
    # Scoring a run on latents re-pretrained since it was trained is refused too.
    evaluate_run(tmp_path / "run", device="cpu")
    latents = moved / "domains/a/latents/train.npy"
    np.save(latents, np.load(latents)[::-1].copy())
    with pytest.raises(UserError, match="other latents"):
        evaluate_run(tmp_path / "run", device="cpu")


def test_evaluate_follows_a_moved_dataset_named_with_data(tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    _run(tmp_path / "run", data, steps=10, eval_every=0)
    moved = tmp_path / "moved"
    data.rename(moved)
    with pytest.raises(
        UserError, match=r"does not exist; if it moved, pass its folder \(--data, or data= from Python\)"
    ):
        evaluate_run(tmp_path / "run", device="cpu")
    scored = evaluate_run(tmp_path / "run", device="cpu", data=moved)
    assert scored.step == 10 and scored.file.is_file()
    other = linear_pair(tmp_path / "other", n=300, seed=1)
    with pytest.raises(UserError, match="other latents"):
        evaluate_run(tmp_path / "run", device="cpu", data=other, force=True)
    with pytest.raises(UserError, match="is not a folder"):
        evaluate_run(tmp_path / "run", device="cpu", data=tmp_path / "nowhere", force=True)


def test_the_latents_are_hashed_once_while_untouched_and_again_once_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    reads: list[Path] = []
    real = latent_data.update_digest
    monkeypatch.setattr(
        latent_data, "update_digest", lambda digest, path: (reads.append(path), real(digest, path))
    )
    first = latent_data.train_fingerprint(data, ["a", "b"])
    # Files written a moment ago are hashed every time: their times may not tick on the next write.
    assert latent_data.train_fingerprint(data, ["b", "a"]) == first and len(reads) == 4
    with monkeypatch.context() as later:
        now = time.time_ns() + 10**10
        later.setattr(latent_data.time, "time_ns", lambda: now)
        assert latent_data.train_fingerprint(data, ["a", "b"]) == first and len(reads) == 6
        assert latent_data.train_fingerprint(data, ["a", "b"]) == first and len(reads) == 6  # the memo
    latents = data / "domains/a/latents/train.npy"
    np.save(latents, np.load(latents)[::-1].copy())  # written in place: same file, same size
    assert latent_data.train_fingerprint(data, ["a", "b"]) != first and len(reads) == 8


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    data = linear_pair(tmp_path / "data", n=300)
    run = tmp_path / "run"
    _run(run, data, steps=20, eval_every=5, until=10)
    checkpoint = current_checkpoint(run)
    assert checkpoint is not None
    good = (checkpoint / "model.safetensors").read_bytes()
    # Poison the optimiser state: the next update turns the weights into NaN.
    state = load_file(checkpoint / "trainer.safetensors")
    save_file({k: -v.abs() - 1 if k.startswith("exp_avg_sq") else v for k, v in state.items()},
              checkpoint / "trainer.safetensors")  # fmt: skip
    match = r"member 0 \(full/paired=40/seed=0\).* step 12.*the checkpoint of step 10 is kept"
    with pytest.raises(NonFiniteLoss, match=match):
        _run(run, data, steps=20, eval_every=5, resume=True)
    assert current_checkpoint(run) == checkpoint
    assert (checkpoint / "model.safetensors").read_bytes() == good
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 10
