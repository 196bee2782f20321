"""The semi-supervision experiment: every preset × pair count × seed, trained as ensembles.

EXP/experiment.json          the resolved settings (a rerun with the same settings resumes)
EXP/chunks/{id}/             one trained ensemble, written atomically once it is complete:
    members.json             the MemberSpecs, in ensemble order
    metrics.json             per member: every test metric (workspace evaluation + downstream);
                             and the model family (a `--define`d preset's name does not say it)
    pictures.npz             per direction a_to_b: predicted b latents of the first test examples
    model.safetensors        the ensemble's weights (each member loadable alone)
EXP/results.csv              one row per member: preset, paired, seed, every metric, the
                             training step whose weights it kept (`kept_step`), the minimum over
                             validation checks of each translation loss (`val_min/...`); in a
                             grid, its point (`grid_point`, `lr`, `weight_decay`, `coefficient/...`)
EXP/selection.json           in a grid: the point each (preset, N) keeps, chosen on validation
                             (grid.py); the readings below use only the members of those points
EXP/efficiency.json          data-efficiency ratios, the project's reading and the paper's
                             (`paper_protocol`) (efficiency.py)
EXP/figures/*.png|svg        curves against N (figures.py)
EXP/report.html              the self-contained report (experiment_report.py)

A member is done when the chunk holding it exists, so an interrupted experiment rerun with the
same command trains only the members it had not finished. Members are grouped into chunks of at
most `max_members`; on the CPU each chunk holds one preset (a `tr` ensemble then skips the cycle
losses), on a GPU presets are mixed so that one ensemble fills the device. Under torchrun the
chunks are shared out over the ranks by estimated cost (`assign_chunks`, distributed.py) and rank 0
gathers and writes the results.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from ..errors import UserError
from ..fileio import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    read_json,
    refuse_foreign,
    refuse_overlap,
)
from ..finite import require_finite_metrics
from ..workspace.data import LatentData, check_same_latents, load_latent_data
from ..workspace.evaluate import per_member
from ..workspace.families import Family, family_of, preset_family
from ..workspace.losses import active_categories
from ..workspace.model import GlobalWorkspace, WorkspaceConfig
from ..workspace.presets import MemberSpec, point_label, preset, step_cost
from ..workspace.sampling import Sampler
from ..workspace.trainer import TrainConfig, Trainer, member_coefficients
from . import ablations, distributed
from .downstream import DownstreamSettings, LabelledStates, downstream_metrics
from .efficiency import (
    VAL_MIN_MEAN,
    VAL_MIN_PREFIX,
    add_val_min_mean,
    efficiency_report,
    level_range,
    paper_protocol,
)
from .grid import (
    COEFFICIENT_PREFIX,
    GRID_POINT,
    LR,
    WEIGHT_DECAY,
    Grid,
    point_coefficients,
    select_points,
)

EXPERIMENT_FORMAT_VERSION = 1
PROGRESS_STEPS = 25
"""Steps between progress-bar updates."""
SIX_PRESETS = ("tr", "tr+cont", "tr+cy", "tr+dcy", "cont", "full")
"""The six models of the slides, in the order the report lists them."""
SELECT_ALL, SELECT_LAST = "all", "last"
"""`ExperimentConfig.select_on`: every direction's validation translation loss, or no selection."""
KEPT_STEP = "kept_step"
"""results.csv column: the training step whose weights a member kept (its best validation check,
or the last step), so that a member's figures can be read against its training curve."""
VARIANTS_OF_FULL = ("full-bt",)
"""Our variants of `full`: when run, efficiency.json also compares each with tr, tr+cont and full."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a semi-supervision experiment (saved as EXP/experiment.json)."""

    data: str
    domains: list[str]
    presets: list[str]
    paired: list[int]
    """Pair counts, increasing; `ALL` on the command line resolves to the train split's size."""
    seeds: list[int]
    train: TrainConfig = field(default_factory=TrainConfig)
    workspace_dim: int = 12
    width: int = 32
    depth: int = 5
    select_on: str = SELECT_ALL
    """Which weights a member with a translation loss keeps, checked every `train.eval_every` steps
    (small-N `tr` overfits, docs/design.md §11): `all`, those of its lowest validation translation loss
    summed over every direction; a comma-separated list of directions (`attr_to_v,v_to_attr`), summed
    over those; `last`, the last step's (`parse_select_on`)."""
    max_members: int = 64
    """Members per ensemble at most."""
    mix_presets: bool = False
    """Put different presets in one ensemble (good on a GPU; on a CPU it computes unused terms)."""
    downstream: DownstreamSettings = field(default_factory=DownstreamSettings)
    pictures: int = 6
    """Test examples whose translations the report shows."""
    coefficients: dict[str, dict[str, float]] = field(default_factory=dict)
    """Loss weights of each preset, fixed when the experiment is made: part of its identity, so a
    resume with other weights (a changed --define or library default) is refused, not mixed."""
    data_fingerprint: str = ""
    """Hash of the train latents (`workspace.data.train_fingerprint`): part of the identity, so
    finished members trained on other (or re-pretrained) latents are never mixed in on resume."""
    format_version: int = EXPERIMENT_FORMAT_VERSION
    grid: Grid | None = None
    """The tuning grid (grid.py): every preset trains each of its points, and each (preset, N)
    keeps the point best on validation. None: each preset trains with its own weights."""
    paper_levels: list[float] = field(default_factory=list)
    """Loss levels of the paper's reading of the ratio (efficiency.paper_protocol); empty: a few
    inside both curves' ranges. Only the reading depends on them, not the members."""

    def members(self) -> list[MemberSpec]:
        weights = {name: dict(self.coefficients.get(name) or preset(name)) for name in self.presets}
        points: dict[str, list[dict[str, float] | None]] = {
            name: list(self.grid.points(w)) if self.grid else [None] for name, w in weights.items()
        }
        return [
            MemberSpec(
                seed=seed,
                coefficients=point_coefficients(weights[name], point or {}),
                paired=n,
                preset=name,
                grid=point,
            )
            for name in self.presets
            for n in self.paired
            for point in points[name]
            for seed in self.seeds
        ]

    def to_json(self) -> dict[str, Any]:
        """The settings; a grid and paper levels only where used, so that experiments made before
        they existed keep their identity and resume."""
        obj = asdict(self)
        obj["train"] = self.train.to_json()
        if self.grid is None:
            obj.pop("grid")
        if not self.paper_levels:
            obj.pop("paper_levels")
        return obj

    def kept_weights(self) -> str:
        """`select_on` in words, for the report."""
        if self.select_on == SELECT_LAST:
            return "Each member keeps its last weights."
        over = "every direction" if self.select_on == SELECT_ALL else self.select_on.replace(",", ", ")
        return f"Each member keeps the weights of its lowest validation translation loss summed over {over}."

    def identity(self) -> dict[str, Any]:
        """What a chunk's results depend on (the data folder may move; the logging may change).
        `select_on` is written as the boolean it replaced where it means the same, so experiments
        made before it existed still resume."""
        obj = self.to_json()
        obj.pop("data")
        obj.pop("paper_levels", None)
        if obj["select_on"] in (SELECT_ALL, SELECT_LAST):
            obj["select_on_val"] = obj.pop("select_on") == SELECT_ALL
        obj["train"].pop("log_every")
        obj["train"].pop("cuda_graph")
        return json.loads(json.dumps(obj))  # as stored: tuples become lists


def parse_select_on(text: str, domains: Sequence[str]) -> str:
    """`all`, `last`, or directions `a_to_b` between distinct domains of the experiment, returned
    comma-joined without repeats; anything else is a UserError naming the directions there are."""
    choice = text.strip().lower()
    if choice in (SELECT_ALL, SELECT_LAST):
        return choice
    known = [f"{a}_to_{b}" for a in domains for b in domains if a != b]
    chosen = list(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    unknown = [d for d in chosen if d not in known]
    if unknown or not chosen:
        raise UserError(f"--select-on {text!r}: give all, last, or directions among {', '.join(known)}")
    return ",".join(chosen)


def parse_paired(text: str, train_size: int) -> list[int]:
    """`250,1000,ALL` -> sorted distinct counts; ALL is the whole train split."""
    counts: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.upper() == "ALL":
            counts.add(train_size)
            continue
        try:
            n = int(item)
        except ValueError:
            raise UserError(f"--paired {text!r}: {item!r} is neither a whole number nor ALL") from None
        if n < 1:
            raise UserError(f"--paired {item}: every preset learns from pairs, give at least 1")
        if n > train_size:
            raise UserError(
                f"--paired {n} is larger than the train split ({train_size} examples); use at most "
                f"{train_size} or ALL"
            )
        counts.add(n)
    if not counts:
        raise UserError("--paired is empty; give pair counts such as 250,1000,ALL")
    return sorted(counts)


def parse_presets(text: str) -> list[str]:
    """`all` (the six of the slides), or a comma-separated list of registered presets, where `all`
    may appear (`all,direct-tr,direct-tr+cy` adds the no-workspace ablation)."""
    if text.strip().lower() == "all":
        return list(SIX_PRESETS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    names = [p for n in names for p in (SIX_PRESETS if n.lower() == "all" else (n,))]
    if not names:
        raise UserError("--presets is empty; give `all` or names such as tr,full")
    for n in names:
        preset(n)  # unknown names: UserError listing the known ones
    if len(set(names)) != len(names):
        raise UserError(f"--presets {text!r} names a preset twice")
    return names


# ---------------------------------------------------------------------------------------------
# The EXP folder and resuming


def chunk_id(members: Sequence[MemberSpec]) -> str:
    text = "|".join(m.label() for m in members)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def plan_chunks(
    members: Sequence[MemberSpec], config: ExperimentConfig, parts: int = 1
) -> list[list[MemberSpec]]:
    """Split members into ensembles: one per preset (or, mixing presets, one per model family) and,
    in a grid, per learning rate and weight decay (the optimiser's, shared by an ensemble), at most
    max_members each, and at least `parts` chunks when there are that many members."""
    keys = [_ensemble_key(m, config.mix_presets) for m in members]
    groups = [[m for m, k in zip(members, keys, strict=True) if k == key] for key in dict.fromkeys(keys)]
    limit = config.max_members
    total = sum(len(g) for g in groups)
    if parts > 1 and total:
        limit = min(limit, max(1, math.ceil(total / parts)))
    chunks = []
    for g in groups:
        pieces = math.ceil(len(g) / limit)
        size = math.ceil(len(g) / pieces)
        chunks += [g[i : i + size] for i in range(0, len(g), size)]
    return chunks


def _ensemble_key(member: MemberSpec, mix_presets: bool) -> tuple[Any, ...]:
    """Members with the same key may share an ensemble: a model family when mixing presets (one
    ensemble per family, families.py), else a preset; and a grid point's lr and weight decay."""
    group = preset_family(member.preset).name if mix_presets else member.preset
    return (group,) if member.grid is None else (group, member.grid[LR], member.grid[WEIGHT_DECAY])


def chunk_train_config(members: Sequence[MemberSpec], train: TrainConfig) -> TrainConfig:
    """The optimiser settings of an ensemble: the experiment's, with its grid point's lr and
    weight decay (plan_chunks puts only members that share them together)."""
    grids = {(m.grid[LR], m.grid[WEIGHT_DECAY]) for m in members if m.grid is not None}
    if not grids:
        return train
    if len(grids) > 1 or any(m.grid is None for m in members):
        raise ValueError("an ensemble's members must share their learning rate and weight decay")
    lr, weight_decay = grids.pop()
    return dataclasses.replace(train, lr=lr, weight_decay=weight_decay)


def assign_chunks(chunks: Sequence[Sequence[MemberSpec]], world: int) -> list[list[int]]:
    """Chunk indices per rank, so that ranks finish together: the costliest chunk (estimated by
    `step_cost`) goes first, each to the least loaded rank. Ties go to the lower index, so every
    rank computes the same plan without talking to the others."""
    costs = [sum(step_cost(m.coefficients) for m in chunk) for chunk in chunks]
    loads = [0.0] * world
    plan: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(chunks)), key=lambda i: (-costs[i], i)):
        rank = min(range(world), key=lambda r: (loads[r], r))
        loads[rank] += costs[i]
        plan[rank].append(i)
    return [sorted(indices) for indices in plan]


def finished_members(exp: Path) -> dict[str, tuple[Path, int]]:
    """member id -> (chunk folder, position in it) for every chunk written completely."""
    done: dict[str, tuple[Path, int]] = {}
    root = exp / "chunks"
    if not root.is_dir():
        return done
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        specs = read_json(folder / "members.json", "chunk members")
        for i, obj in enumerate(specs):
            done[MemberSpec.from_json(obj).label()] = (folder, i)
    return done


def prepare_folder(exp: Path, config: ExperimentConfig, force: bool) -> list[str]:
    """Create EXP, or resume an unfinished EXP of the same experiment; returns the ids of the
    members already done (read once, on rank 0, so every rank plans from the same list).

    An EXP that holds a finished experiment or another experiment is refused unless `force`, which
    starts afresh; one that holds something else is refused even then.
    """
    meta = exp / "experiment.json"
    refuse_foreign(exp, meta.name, "experiment folder")
    if exp.exists() and not force:
        if not meta.is_file():
            raise UserError(
                f"{exp} already exists and is not an experiment folder; pass --force to overwrite it"
            )
        stored = read_json(meta, "experiment settings")
        old, new = dict(stored.get("identity") or {}), config.identity()
        check_same_latents(
            old.pop("data_fingerprint", None),
            new.pop("data_fingerprint"),
            str(exp),
            config.data,
            "resume it with its own data, or pass --force to start over",
        )
        if old != new:
            raise UserError(
                f"{exp} holds an experiment with other settings; use the same settings to resume it, "
                "or pass --force to overwrite it"
            )
        if (exp / "results.csv").is_file():
            raise UserError(f"{exp} already holds a finished experiment; pass --force to overwrite it")
        return sorted(finished_members(exp))
    if exp.exists():
        shutil.rmtree(exp)
    exp.mkdir(parents=True)
    atomic_write_json(meta, {"config": config.to_json(), "identity": config.identity(), "command": sys.argv})
    return []


# ---------------------------------------------------------------------------------------------
# Training one chunk


@dataclass
class ChunkResult:
    members: list[MemberSpec]
    metrics: list[dict[str, float | None]]
    """Per member; None marks a metric that does not apply to the member's model family."""
    pictures: dict[str, np.ndarray]  # "a_to_b" -> (K, P, dim_b)
    weights: dict[str, torch.Tensor]
    seconds: float
    family: str
    """The model family (families.FAMILIES) the members trained."""


def _val_translation(metrics: dict[str, torch.Tensor], select_on: str) -> torch.Tensor:
    """(K,) the validation translation latent MSE summed over the directions of `select_on`."""
    if select_on == SELECT_ALL:
        return torch.stack([v for k, v in metrics.items() if k.startswith("translation/")]).sum(dim=0)
    return torch.stack([metrics[f"translation/{d}/latent_mse"] for d in select_on.split(",")]).sum(dim=0)


def _check_validation(
    loss: torch.Tensor, selectable: torch.Tensor, members: Sequence[MemberSpec], step: int
) -> None:
    """Refuse a NaN validation loss: it never beats the best so far, and the member would keep
    weights it never validated while claiming the last step."""
    bad = selectable & ~torch.isfinite(loss)
    if bool(bad.any()):
        k = int(bad.nonzero()[0])
        raise UserError(
            f"member {members[k].label()}: its validation translation loss is {float(loss[k])} at "
            f"step {step}; check the val latents, or try a lower --lr"
        )


def _track_minimum(minimum: dict[str, torch.Tensor], metrics: dict[str, torch.Tensor]) -> None:
    """minimum[name] = the lowest (K,) value of each translation latent MSE seen so far, as
    `val_min/{name}`: the paper's metric is the best validation loss over training, per direction."""
    for name, value in metrics.items():
        if name.startswith("translation/") and name.endswith("/latent_mse"):
            key = VAL_MIN_PREFIX + name
            minimum[key] = torch.minimum(minimum[key], value) if key in minimum else value.clone()


def _keep_best(model: nn.Module, best: dict[str, torch.Tensor], better: torch.Tensor) -> None:
    """best[name][k] = current weights of member k wherever better[k] (every weight is (K, ...))."""
    for key, value in model.state_dict().items():
        mask = better.view(-1, *([1] * (value.dim() - 1)))
        best[key] = torch.where(mask, value.detach(), best[key])


@dataclass
class TrainedChunk:
    """An ensemble after training, with what its members' results need besides their weights."""

    model: nn.Module
    family: Family
    selectable: torch.Tensor
    """(K,) bool: the members with a translation loss, which keep their best validation weights."""
    kept_step: torch.Tensor
    """(K,) the step whose weights each member kept."""
    val_min: dict[str, torch.Tensor]
    """`val_min/{metric}` -> (K,) the lowest validation value of each translation loss."""


def train_chunk(
    data: LatentData,
    members: Sequence[MemberSpec],
    config: ExperimentConfig,
    labels: dict[str, np.ndarray] | None,
    label_columns: Sequence[str],
    progress: bool = True,
    desc: str = "",
) -> ChunkResult:
    """Train one ensemble of `members`, pick each member's best validation weights, score on test."""
    start = time.perf_counter()
    trained = _train(data, members, config, progress, desc)
    metrics, pictures = score_chunk(trained, members, data, config, labels, label_columns)
    model = trained.model
    weights = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    return ChunkResult(
        list(members), metrics, pictures, weights, time.perf_counter() - start, trained.family.name
    )


def _train(
    data: LatentData, members: Sequence[MemberSpec], config: ExperimentConfig, progress: bool, desc: str
) -> TrainedChunk:
    """Train the ensemble, checking validation every `eval_every` steps for the weights to keep."""
    train = data.split("train")
    device = next(iter(train.values())).device
    family = family_of(members)
    ws = WorkspaceConfig(
        domains={d: s.latent_dim for d, s in data.specs.items()},
        workspace_dim=config.workspace_dim,
        width=config.width,
        depth=config.depth,
    )
    model = family.build_model(ws, [m.seed for m in members]).to(device)
    active = active_categories(members)
    task = family.build_task(data.specs, active, False)
    sampler = Sampler(train, members, config.train.batch_size, unpaired=bool(active - task.needs_pairs))
    coefficients = member_coefficients(family.categories, [m.coefficients for m in members], device)
    trainer = Trainer(model, task, sampler, coefficients, chunk_train_config(members, config.train))

    # Members with a translation loss keep the weights of their best validation translation loss;
    # the others (e.g. the CLIP-like `cont`, whose decoders are never trained) keep their last.
    selectable = torch.tensor([m.weight("translation") > 0 for m in members], device=device)
    select = config.select_on != SELECT_LAST and bool(selectable.any())
    best_loss = torch.full((len(members),), math.inf, device=device)
    val_min: dict[str, torch.Tensor] = {}
    kept_step = torch.full((len(members),), config.train.steps, device=device)
    best = {k: v.detach().clone() for k, v in model.state_dict().items()} if select else {}
    every = config.train.eval_every if config.train.eval_every > 0 else config.train.steps
    bar = tqdm(total=config.train.steps, desc=desc, disable=not progress, leave=False, unit="step")
    done = 0
    while done < config.train.steps:
        n = min(PROGRESS_STEPS, every - done % every, config.train.steps - done)
        trainer.run(n)
        done += n
        bar.update(n)
        if done % every and done < config.train.steps:
            continue
        trainer.check_finite([m.label() for m in members])
        if select:
            with torch.no_grad():
                val = family.latent_metrics(model, data.split("val"), data.specs)
                _track_minimum(val_min, val)
                loss = _val_translation(val, config.select_on)
                _check_validation(loss, selectable, members, done)
                better = selectable & (loss < best_loss)
                best_loss = torch.where(better, loss, best_loss)
                kept_step = torch.where(better, done, kept_step)
                _keep_best(model, best, better)
    bar.close()
    if select:
        with torch.no_grad():
            for key, value in model.state_dict().items():
                mask = selectable.view(-1, *([1] * (value.dim() - 1)))
                value.copy_(torch.where(mask, best[key], value))
    return TrainedChunk(model, family, selectable, kept_step, val_min)


def score_chunk(
    trained: TrainedChunk,
    members: Sequence[MemberSpec],
    data: LatentData,
    config: ExperimentConfig,
    labels: dict[str, np.ndarray] | None,
    label_columns: Sequence[str],
) -> tuple[list[dict[str, float | None]], dict[str, np.ndarray]]:
    """(per-member test metrics, predicted latents of the first test examples per direction); the
    metrics are the family's evaluation, the kept step, the validation minima and the downstream
    tasks read from the workspace state."""
    model, family, selectable = trained.model, trained.family, trained.selectable
    model.eval()
    train, test = data.split("train"), data.split("test")
    with torch.no_grad():
        skipped: dict[str, str] = {}
        has_dataset = (Path(config.data) / "dataset.json").is_file()
        scores = family.evaluate(
            model, test, data.specs, Path(config.data) if has_dataset else None, "test", skipped
        )
        metrics: list[dict[str, float | None]] = [dict(r) for r in per_member(scores)]
        for k, (row, step) in enumerate(zip(metrics, trained.kept_step.tolist(), strict=True)):
            row.update(dict.fromkeys(family.not_applicable(list(data.specs))))
            row[KEPT_STEP] = float(step)
            # Members without a translation loss (`cont`) never trained their decoders: no minimum.
            row.update({name: float(v[k]) if selectable[k] else None for name, v in trained.val_min.items()})
        if labels is not None and family.shared_space:
            assert isinstance(model, GlobalWorkspace)
            n_train = min(len(labels["train"]), max(config.downstream.labelled, config.downstream.odd_pool))
            states_train = {d: model.state(d, train[d][:n_train]) for d in data.specs}
            states_test = {d: model.state(d, test[d]) for d in data.specs}
            extra = downstream_metrics(
                LabelledStates(states_train, labels["train"][:n_train], label_columns),
                LabelledStates(states_test, labels["test"], label_columns),
                seeds=[m.seed for m in members],
                settings=config.downstream,
            )
            for row, more in zip(metrics, extra, strict=True):
                row.update(more)
        pictures = {}
        rows = {d: test[d][: config.pictures] for d in data.specs}
        for a in data.specs:
            for b in data.specs:
                if a != b:
                    pictures[f"{a}_to_{b}"] = model.translate(a, b, rows[a]).cpu().numpy()  # type: ignore[operator]
    require_finite_metrics(
        metrics, [m.label() for m in members], "", "the chunk is not written; try a lower --lr"
    )
    return metrics, pictures


def write_chunk(exp: Path, result: ChunkResult) -> Path:
    folder = exp / "chunks" / chunk_id(result.members)
    with atomic_directory(folder, force=True, what="chunk") as tmp:
        atomic_write_json(
            tmp / "metrics.json",
            {"seconds": result.seconds, "family": result.family, "members": result.metrics},
        )
        buf = io.BytesIO()
        np.savez(buf, **result.pictures)  # type: ignore[arg-type]
        (tmp / "pictures.npz").write_bytes(buf.getvalue())
        save_file(result.weights, str(tmp / "model.safetensors"))
        # members.json last: its presence marks the chunk complete (the folder is renamed anyway).
        atomic_write_json(tmp / "members.json", [m.to_json() for m in result.members])
    return folder


def read_chunk_rows(folder: Path) -> list[dict[str, Any]]:
    specs = [MemberSpec.from_json(o) for o in read_json(folder / "members.json", "chunk members")]
    metrics = read_json(folder / "metrics.json", "chunk metrics")["members"]
    require_finite_metrics(
        metrics,
        [s.label() for s in specs],
        f"{folder / 'metrics.json'}: ",
        f"delete {folder} and rerun the experiment to retrain its members",
    )
    return [
        {
            "member": s.label(),
            "preset": s.preset,
            "paired": s.paired,
            "seed": s.seed,
            **_grid_columns(s),
            **m,
        }
        for s, m in zip(specs, metrics, strict=True)
    ]


def _grid_columns(spec: MemberSpec) -> dict[str, Any]:
    """A gridded member's point in results.csv: its label, lr, weight decay and every coefficient."""
    if spec.grid is None:
        return {}
    return {
        GRID_POINT: point_label(spec.grid),
        LR: spec.grid[LR],
        WEIGHT_DECAY: spec.grid[WEIGHT_DECAY],
        **{COEFFICIENT_PREFIX + c: w for c, w in spec.coefficients.items()},
    }


# ---------------------------------------------------------------------------------------------
# Results


def write_results_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    fixed = ["member", "preset", "paired", "seed"] + (
        [GRID_POINT] if any(GRID_POINT in r for r in rows) else []
    )
    metrics = sorted({k for r in rows for k in r if k not in fixed})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fixed + metrics, lineterminator="\n", restval="")
    writer.writeheader()
    for r in rows:
        # A metric that does not apply to a member's model (None, or absent from its row, like the
        # downstream tasks of a model without a shared space) is an empty cell, never 0 or nan.
        writer.writerow(
            {k: ("" if v is None else repr(float(v))) if k in metrics else v for k, v in r.items()}
        )
    atomic_write_text(path, buf.getvalue())


def read_results_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for r in rows:
        row: dict[str, Any] = {"member": r["member"], "preset": r["preset"]}
        row["paired"], row["seed"] = int(r["paired"]), int(r["seed"])
        if GRID_POINT in r:
            row[GRID_POINT] = r[GRID_POINT]
        row.update(
            {
                k: None if v == "" else float(v)
                for k, v in r.items()
                if k not in ("member", "preset", "paired", "seed", GRID_POINT)
            }
        )
        out.append(row)
    return out


def mean_baselines(data: LatentData) -> dict[str, float]:
    """Test MSE of predicting each domain's training mean latent, under the translation names."""
    train, test = data.split("train"), data.split("test")
    out = {}
    for b in data.specs:
        mean = train[b].mean(dim=0, keepdim=True)
        mse = float((test[b] - mean).pow(2).mean())
        for a in data.specs:
            if a != b:
                out[f"translation/{a}_to_{b}/latent_mse"] = mse
    return out


def translation_metrics(rows: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r if k.startswith("translation/") and k.endswith("/latent_mse")})


def add_summed_translation(rows: list[dict[str, Any]]) -> None:
    """Each row gains translation/sum/latent_mse, the sum over directions (docs/design.md §11's figure)."""
    names = translation_metrics(rows)
    for r in rows:
        values = [r.get(n) for n in names]
        r["translation/sum/latent_mse"] = None if None in values else float(sum(values))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The whole experiment


@dataclass
class ExperimentOutcome:
    exp: Path
    rows: list[dict[str, Any]]
    """The rows the readings use: every member's, or in a grid those of the chosen points."""
    efficiency: dict[str, Any]
    report: Path
    trained_members: int
    seconds: float
    selection: dict[str, Any] | None = None
    """selection.json: the grid point each (preset, N) kept; None without a grid."""


def load_labels(data: Path) -> tuple[dict[str, np.ndarray] | None, list[str]]:
    """Train and test label rows of the dataset (None when DATA has no dataset.json)."""
    from ..data.format import load_dataset

    if not (Path(data) / "dataset.json").is_file():
        return None, []
    dataset = load_dataset(data)
    labels = {s: np.asarray(dataset.split(s).labels) for s in ("train", "test")}
    return labels, list(dataset.info.label_columns)


def run_experiment(
    config: ExperimentConfig,
    exp: Path,
    device: torch.device,
    force: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> ExperimentOutcome | None:
    """Train what is not done yet, then (on rank 0) gather, score and report. None on other ranks."""
    start = time.perf_counter()
    exp = Path(exp)
    refuse_overlap(exp, {"dataset": config.data}, "experiment folder")
    rank, world = distributed.rank_and_world()
    data = load_latent_data(config.data, config.domains, device)
    members = config.members()
    done = set(distributed.run_on_rank0_then_share(lambda: prepare_folder(exp, config, force)))
    todo = [m for m in members if m.label() not in done]
    if rank == 0:
        if done:
            say(f"resuming {exp}: {len(members) - len(todo)} of {len(members)} members already done")
        grid = " × grid points" if config.grid is not None else ""
        say(
            f"training {len(todo)} members ({len(config.presets)} presets × {len(config.paired)} pair "
            f"counts{grid} × {len(config.seeds)} seeds) on {device}"
            + (f" over {world} processes" if world > 1 else "")
        )
    labels, columns = load_labels(Path(config.data))
    chunks = plan_chunks(todo, config, parts=world)
    mine = [chunks[i] for i in assign_chunks(chunks, world)[rank]]
    for i, chunk in enumerate(mine):
        names = ", ".join(dict.fromkeys(m.preset for m in chunk))
        desc = f"ensemble {i + 1}/{len(mine)} ({len(chunk)} members: {names})"
        if world > 1:
            desc = f"rank {rank} " + desc
        result = train_chunk(data, chunk, config, labels, columns, progress, desc)
        write_chunk(exp, result)
        if rank == 0 or world == 1:
            say(f"  {desc}: {result.seconds:.0f} s")
    local_rows = [r for c in mine for r in read_chunk_rows(exp / "chunks" / chunk_id(c))]
    gathered = distributed.gather_rows(local_rows)
    if rank != 0:
        return None
    assert gathered is not None
    by_id = {r["member"]: r for r in gathered}
    for folder in {folder for folder, _ in finished_members(exp).values()}:
        for r in read_chunk_rows(folder):
            by_id.setdefault(r["member"], r)
    rows = [by_id[m.label()] for m in members]
    return finish(exp, config, data, rows, len(todo), time.perf_counter() - start)


def finish(
    exp: Path,
    config: ExperimentConfig,
    data: LatentData,
    rows: list[dict[str, Any]],
    trained: int,
    seconds: float,
) -> ExperimentOutcome:
    """results.csv (every member), selection.json (in a grid), efficiency.json, figures and report
    (from the chosen grid points' members)."""
    from .experiment_report import build_report

    add_summed_translation(rows)
    add_val_min_mean(rows)
    chosen, selection = select_points(rows) if config.grid is not None else (rows, None)
    if selection is not None:
        atomic_write_json(exp / "selection.json", selection)
    baselines = mean_baselines(data)
    if len(translation_metrics(rows)) > 1:
        baselines["translation/sum/latent_mse"] = float(
            sum(v for k, v in baselines.items() if k.startswith("translation/"))
        )
    efficiency = efficiency_readings(config, chosen)
    efficiency["baselines_train_mean"] = baselines
    efficiency["paper_protocol"] = paper_protocol(
        chosen, VAL_MIN_MEAN, efficiency["candidate"], efficiency_references(config), config.paper_levels
    )
    atomic_write_json(exp / "efficiency.json", efficiency)
    atomic_write_json(exp / "baselines.json", baselines)
    report = build_report(exp, config, chosen, efficiency, baselines, seconds, selection, rows)
    # results.csv last: its presence marks the experiment finished.
    write_results_csv(exp / "results.csv", rows)
    return ExperimentOutcome(exp, chosen, efficiency, report, trained, seconds, selection)


def efficiency_references(config: ExperimentConfig) -> list[str]:
    """The presets the candidate is compared with, of those run."""
    return [p for p in ("tr", "tr+cont") if p in config.presets]


def efficiency_readings(config: ExperimentConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The project's reading of the data-efficiency ratios (efficiency_report), with our variants
    of `full` and the ablations."""
    metrics = translation_metrics(rows)
    metrics += [m for m in ("translation/v_to_attr/position_error_px",) if any(m in r for r in rows)]
    efficiency = efficiency_report(
        rows,
        metrics,
        candidate="full" if "full" in config.presets else config.presets[-1],
        references=efficiency_references(config),
    )
    for variant in VARIANTS_OF_FULL:
        if variant in config.presets and variant != efficiency["candidate"]:
            references = [p for p in ("tr", "tr+cont", "full") if p in config.presets]
            for metric, comps in efficiency_report(rows, metrics, variant, references)["metrics"].items():
                efficiency["metrics"][metric].update(comps)
    if ablations.has_ablations(config.presets):
        efficiency["ablations"] = ablations.ablation_efficiency(rows, metrics, config.presets)
    return efficiency


def paper_lines(paper: dict[str, Any]) -> list[str]:
    """The paper's reading of each comparison, one line each: its ratios at the loss levels."""
    lines = []
    for name, comp in paper.get("comparisons", {}).items():
        read = [lv for lv in comp["levels"] if lv["ratio"] is not None]
        text = (
            ", ".join(f"{lv['ratio']:.2f}× at {lv['loss']:.3g}" for lv in read)
            or comp["note"]
            or "no level inside both curves"
        )
        lines.append(f"efficiency {name:<18} paper's reading ({paper['metric']}): {text}")
    return lines


def headline(outcome: ExperimentOutcome) -> str:
    """A terminal summary: medians over seeds at the smallest and largest N, and the ratios."""
    rows = outcome.rows
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    ns = sorted({r["paired"] for r in rows})
    cols = [
        ("translation/sum/latent_mse", "tr-sum"),
        ("probe/v/shape_accuracy", "probe-v"),
        ("zero_shot/attr_to_v/shape_accuracy", "0shot a→v"),
        ("zero_shot/t_to_v/shape_accuracy", "0shot t→v"),
        ("retrieval/v_to_attr/top1", "retr v→a"),
        ("retrieval/v_to_t/top1", "retr v→t"),
        ("odd_one_out/attr_to_v/accuracy", "odd a→v"),
        ("odd_one_out/t_to_v/accuracy", "odd t→v"),
    ]
    cols = [(k, name) for k, name in cols if any(k in r for r in rows)]
    width = max(len("preset"), *(len(p) for p in presets)) + 2
    lines = []
    for n in (ns[0], ns[-1]) if len(ns) > 1 else (ns[0],):
        lines.append(f"N = {n} pairs (median over seeds)")
        lines.append("  " + f"{'preset':<{width}}" + "".join(f"{name:>11}" for _, name in cols))
        for p in presets:
            vals = []
            for key, _ in cols:
                v = [r[key] for r in rows if r["preset"] == p and r["paired"] == n and r.get(key) is not None]
                vals.append(f"{float(np.median(v)):>11.3f}" if v else f"{'-':>11}")
            lines.append("  " + f"{p:<{width}}" + "".join(vals))
    for metric, comps in outcome.efficiency["metrics"].items():
        for name, comp in comps.items():
            ratio = comp.get("ratio_median")
            text = f"{ratio:.2f}×" if ratio is not None else (comp.get("note") or "n/a")
            span = level_range(comp)
            spread = comp.get("leave_one_seed_out")
            if span:
                text += f" ({span[0]:.2f}–{span[1]:.2f}× over loss levels"
                text += (
                    f"; leaving one seed out: {spread['min']:.2f}–{spread['max']:.2f}×)" if spread else ")"
                )
            lines.append(f"efficiency {name:<18} {metric}: {text}")
    lines += paper_lines(outcome.efficiency.get("paper_protocol", {}))
    lines += ablations.ablation_lines(outcome.efficiency.get("ablations", {}))
    return "\n".join(lines)
