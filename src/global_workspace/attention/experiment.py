"""The attention experiment (docs/design.md §8): can a selector keep a frozen workspace robust to noise?

1. A shape classifier is trained on clean workspace states. Its inputs are fused with random
   weights (the `random-softmax` selection), so it knows states of one domain and of mixtures.
2. With workspace and classifier frozen, selectors are trained to maximise that classifier's
   accuracy while one domain per example is corrupted (`corruption.py`): {one-step, two-step}
   query × {fixed, random} noise, each trained under the noise it is tested on.
3. On test examples: accuracy of {equal weights, one-step, two-step} × {fixed, random noise},
   beside an oracle that knows which domain was corrupted and drops it (a reference, not a
   bound: at small scales the corrupted domain still helps, and a selector may do better);
   clean accuracy; over a grid of two-sided noise scales on the first two domains, accuracy and
   mean attention per domain of the two-step selector trained on random noise; and its attention
   on each domain against the noise on one side.

Every ensemble member of the workspace gets its own classifier and selectors (initialised from
its seed); corrupted inputs are shared by all members, so members differ only by their weights.
Figures are the mean over members; results.json keeps each member's value too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.format import load_dataset
from ..device import resolve_device
from ..domains.attr import column_roles
from ..domains.latents import LatentSpec
from ..errors import UserError, require_at_least, require_positive
from ..fileio import atomic_directory, atomic_write_text, refuse_existing, refuse_overlap
from ..locking import exclusive_output, shared_input
from ..memory import latent_bytes, require_fits
from ..seeding import derive_seed
from ..workspace.checkpoint import check_run_data, load_model
from ..workspace.data import load_latent_data
from ..workspace.ensemble import EnsembleMLP
from ..workspace.model import GlobalWorkspace
from ..workspace.run import Scored
from ..workspace.selection import RandomSoftmax
from .corruption import NOISE_MODES, Corruption, CorruptionConfig
from .report import write_attention
from .selector import KeyQuerySelector, SelectorConfig

SELECTORS: dict[str, int] = {"one-step": 1, "two-step": 2}
"""Selector name -> query steps."""
METHODS = ("equal", *SELECTORS)
"""`equal`: no selection, every domain weighs 1/n."""
ORACLE = "oracle"
"""Reported beside the methods: all weight on the domains left clean (a reference, not a bound)."""
CLASSES = 3

Latents = dict[str, torch.Tensor]
Weights = Callable[[Latents, Latents], dict[str, torch.Tensor]]
"""(latents, pre-tanh encodings) -> weights {d: (K, B)}."""


@dataclass(frozen=True)
class AttentionSettings:
    """Sizes and schedules of the attention experiment."""

    classifier_steps: int = 1500
    selector_steps: int = 2000
    batch_size: int = 256
    classifier_lr: float = 3e-3
    selector_lr: float = 3e-3
    classifier_width: int = 64
    head_size: int = 32
    scale_low: float = 0.0
    scale_high: float = 1.0
    """One-sided training and test noise: scale uniform in [scale_low, scale_high]."""
    grid_max: float = 1.0
    grid_points: int = 6
    """Two-sided grid: scales linspace(0, grid_max, grid_points) on each of the first two domains."""
    line_points: int = 11
    test_rows: int = 2000
    """Test examples evaluated (the first ones of the split); 0: all."""
    seed: int = 0

    def __post_init__(self) -> None:
        positive = (
            "classifier_steps",
            "selector_steps",
            "batch_size",
            "classifier_width",
            "head_size",
            "grid_points",
            "line_points",
        )
        require_at_least((name, getattr(self, name), 1) for name in positive)
        require_at_least([("test_rows", self.test_rows, 0), ("grid_max", self.grid_max, 0)])
        require_positive((name, getattr(self, name)) for name in ("classifier_lr", "selector_lr"))
        CorruptionConfig(scale_low=self.scale_low, scale_high=self.scale_high)

    def corruption(self, noise: str) -> CorruptionConfig:
        return CorruptionConfig(noise=noise, scale_low=self.scale_low, scale_high=self.scale_high)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AttentionData:
    """Latents (N, dim) of the domains studied and shape classes (N,) for train and test."""

    train: Latents
    train_labels: torch.Tensor
    test: Latents
    test_labels: torch.Tensor


def _rows(latents: Latents, index: torch.Tensor) -> Latents:
    return {d: u[index] for d, u in latents.items()}


def _encode(model: GlobalWorkspace, latents: Latents) -> Latents:
    with torch.no_grad():
        return {d: model.encode(d, u) for d, u in latents.items()}


def _frozen(module: torch.nn.Module) -> torch.nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def train_classifier(
    model: GlobalWorkspace, data: AttentionData, settings: AttentionSettings, device: torch.device
) -> tuple[EnsembleMLP, float]:
    """A shape classifier per member on clean states fused with random weights; (frozen, last loss)."""
    k, names = model.members, list(data.train)
    net = EnsembleMLP(k, model.config.workspace_dim, settings.classifier_width, CLASSES, depth=3).to(device)
    net.reset_parameters(model.seeds, "attention/classifier")
    opt = torch.optim.Adam(net.parameters(), lr=settings.classifier_lr)
    gen = torch.Generator(device=device).manual_seed(derive_seed(settings.seed, "classifier"))
    selection = RandomSoftmax()
    n = data.train_labels.shape[0]
    loss = torch.zeros(())
    for _ in range(settings.classifier_steps):
        index = torch.randint(n, (settings.batch_size,), generator=gen, device=device)
        enc = _encode(model, _rows(data.train, index))
        uniform = torch.rand((k, settings.batch_size, len(names)), generator=gen, device=device)
        alpha = selection(torch.ones_like(uniform, dtype=torch.bool), uniform)
        state = GlobalWorkspace.fuse(enc, {d: alpha[..., j] for j, d in enumerate(names)})
        loss = _member_ce(net(state), data.train_labels[index]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _frozen(net)
    return net, float(loss.item()) / k


def _member_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(K, B, C) logits, (B,) labels -> (K,) mean cross-entropy per member."""
    k, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(k * b, c), labels.repeat(k), reduction="none")
    return ce.view(k, b).mean(dim=1)


def train_selector(
    model: GlobalWorkspace,
    classifier: EnsembleMLP,
    data: AttentionData,
    steps: int,
    corruption: Corruption,
    settings: AttentionSettings,
    device: torch.device,
) -> tuple[KeyQuerySelector, float]:
    """A selector with `steps` query steps, trained on one-sided corruption; (selector, last loss).

    Only the selector's weights are optimised; the workspace and the classifier stay as they are.
    """
    dims = {d: int(u.shape[1]) for d, u in data.train.items()}
    config = SelectorConfig(steps=steps, head_size=settings.head_size)
    selector = KeyQuerySelector(dims, model.config.workspace_dim, model.seeds, config).to(device)
    opt = torch.optim.Adam(selector.parameters(), lr=settings.selector_lr)
    name = f"selector/{steps}/{corruption.config.noise}"
    gen = torch.Generator(device=device).manual_seed(derive_seed(settings.seed, name))
    n = data.train_labels.shape[0]
    loss = torch.zeros(())
    for _ in range(settings.selector_steps):
        index = torch.randint(n, (settings.batch_size,), generator=gen, device=device)
        noisy, _ = corruption.one_sided(_rows(data.train, index), gen)
        enc = _encode(model, noisy)
        alpha = selector(noisy, enc)[-1]
        loss = _member_ce(classifier(GlobalWorkspace.fuse(enc, alpha)), data.train_labels[index]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return selector.eval(), float(loss.item()) / model.members


def equal_weights(latents: Latents, encodings: Latents) -> dict[str, torch.Tensor]:
    first = next(iter(encodings.values()))
    return {d: first.new_full(first.shape[:2], 1.0 / len(encodings)) for d in encodings}


def oracle_weights(scales: Mapping[str, torch.Tensor]) -> Weights:
    """Equal weights on the domains that were left clean (scale 0): dropping the corrupted one."""

    def weights(latents: Latents, encodings: Latents) -> dict[str, torch.Tensor]:
        first = next(iter(encodings.values()))
        clean = {d: (scales[d] == 0).to(first.dtype).expand(first.shape[:2]) for d in encodings}
        total = torch.stack(list(clean.values())).sum(dim=0).clamp_min(1.0)
        return {d: c / total for d, c in clean.items()}

    return weights


def selector_weights(selector: KeyQuerySelector) -> Weights:
    def weights(latents: Latents, encodings: Latents) -> dict[str, torch.Tensor]:
        return selector(latents, encodings)[-1]

    return weights


@dataclass(frozen=True)
class Scores:
    """Per-member test accuracy (K,) and mean attention per domain {d: (K,)}."""

    accuracy: np.ndarray
    attention: dict[str, np.ndarray]
    attention_on_corrupted: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "shape_accuracy": float(self.accuracy.mean()),
            "shape_accuracy_members": self.accuracy.tolist(),
            "attention": {d: float(a.mean()) for d, a in self.attention.items()},
        }
        if self.attention_on_corrupted is not None:
            out["attention_on_corrupted"] = float(self.attention_on_corrupted.mean())
        return out


def score(
    model: GlobalWorkspace,
    classifier: EnsembleMLP,
    weights: Weights,
    latents: Latents,
    labels: torch.Tensor,
    corrupted: Mapping[str, torch.Tensor] | None = None,
) -> Scores:
    """Accuracy of the classifier on the states `weights` selects; `corrupted` {d: (B,)} marks
    the corrupted examples of each domain (scale > 0) to measure the attention they receive."""
    with torch.no_grad():
        enc = {d: model.encode(d, u) for d, u in latents.items()}
        alpha = weights(latents, enc)
        pred = classifier(GlobalWorkspace.fuse(enc, alpha)).argmax(dim=-1)  # (K, B)
    accuracy = (pred == labels.unsqueeze(0)).float().mean(dim=1)
    attention = {d: a.mean(dim=1).cpu().numpy() for d, a in alpha.items()}
    on_corrupted = None
    if corrupted is not None:
        hit = torch.stack([alpha[d] * (corrupted[d] > 0) for d in alpha]).sum(dim=0)  # (K, B)
        count = torch.stack([corrupted[d] > 0 for d in alpha]).any(dim=0).sum().clamp_min(1)
        on_corrupted = (hit.sum(dim=1) / count).cpu().numpy()
    return Scores(accuracy.cpu().numpy(), attention, on_corrupted)


def _eval_generator(settings: AttentionSettings, device: torch.device, *names: object) -> torch.Generator:
    """The same noise for every method compared under one condition."""
    return torch.Generator(device=device).manual_seed(derive_seed(settings.seed, "eval", *names))


def run_attention(
    model: GlobalWorkspace,
    data: AttentionData,
    settings: AttentionSettings,
    device: torch.device,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train the classifier and the selectors, evaluate everything; returns results.json's content."""
    names = list(data.train)
    if len(names) < 2:
        raise UserError(f"the attention experiment needs at least two domains, got {names}")
    model.eval()
    _frozen(model)
    dims = {d: int(u.shape[1]) for d, u in data.train.items()}
    corruptions = {
        noise: Corruption(settings.corruption(noise), dims, derive_seed(settings.seed, "noise"), device)
        for noise in NOISE_MODES
    }
    progress("training the shape classifier on clean states")
    classifier, classifier_loss = train_classifier(model, data, settings, device)
    training: dict[str, float] = {"classifier/final_loss": classifier_loss}
    selectors: dict[tuple[str, str], KeyQuerySelector] = {}
    for noise, corruption in corruptions.items():
        for name, steps in SELECTORS.items():
            progress(f"training the {name} selector under {noise} noise")
            selectors[(name, noise)], loss = train_selector(
                model, classifier, data, steps, corruption, settings, device
            )
            training[f"selector/{name}/{noise}/final_loss"] = loss

    rows = data.test_labels.shape[0] if settings.test_rows == 0 else settings.test_rows
    test = {d: u[:rows] for d, u in data.test.items()}
    labels = data.test_labels[:rows]
    progress(f"evaluating on {labels.shape[0]} test examples")

    def method(name: str, noise: str) -> Weights:
        return equal_weights if name == "equal" else selector_weights(selectors[(name, noise)])

    clean = {"equal": score(model, classifier, equal_weights, test, labels).to_json()}
    for d in names:
        alone = {d: test[d]}
        clean[f"alone/{d}"] = score(model, classifier, equal_weights, alone, labels).to_json()
    table: dict[str, dict[str, Any]] = {}
    for noise, corruption in corruptions.items():
        noisy, scales = corruption.one_sided(test, _eval_generator(settings, device, "one-sided", noise))
        table[noise] = {
            m: score(model, classifier, method(m, noise), noisy, labels, scales).to_json() for m in METHODS
        }
        dropped = score(model, classifier, oracle_weights(scales), noisy, labels, scales)
        table[noise][ORACLE] = dropped.to_json()

    best = selector_weights(selectors[("two-step", "random")])
    sweep = NoiseSweep(model, classifier, best, test, labels, corruptions["random"], settings)
    return {
        "domains": names,
        "members": model.members,
        "seeds": model.seeds,
        "settings": settings.to_json(),
        "test_examples": int(labels.shape[0]),
        "training": training,
        "clean": clean,
        "table": table,
        "grid": sweep.grid(),
        "line": sweep.line(),
        "metrics": flat_metrics(clean, table),
    }


def flat_metrics(clean: Mapping[str, Any], table: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """`attention/{noise}/{method}/shape_accuracy` and `attention/clean/{...}/shape_accuracy`."""
    out = {f"attention/clean/{m}/shape_accuracy": float(s["shape_accuracy"]) for m, s in clean.items()}
    for noise, methods in table.items():
        for m, s in methods.items():
            out[f"attention/{noise}/{m}/shape_accuracy"] = float(s["shape_accuracy"])
    return out


@dataclass(frozen=True)
class NoiseSweep:
    """One selection method scored on test latents corrupted on chosen domains at chosen scales."""

    model: GlobalWorkspace
    classifier: EnsembleMLP
    weights: Weights
    latents: Latents
    labels: torch.Tensor
    corruption: Corruption
    settings: AttentionSettings

    def at(self, scales: Mapping[str, float], *draw: object) -> Scores:
        """Scores with domain d corrupted at scales[d] (others clean); `draw` names the noise draw."""
        gen = _eval_generator(self.settings, self.labels.device, *draw)
        level = {d: 0.0 for d in self.latents} | dict(scales)
        noisy = self.corruption.two_sided(self.latents, level, gen)
        return score(self.model, self.classifier, self.weights, noisy, self.labels)

    def grid(self) -> dict[str, Any]:
        """Accuracy and mean attention with the first two domains corrupted at every pair of scales.

        Entry [i][j] has scale scales[i] on the first domain and scales[j] on the second.
        """
        a, b = list(self.latents)[:2]
        scales = np.linspace(0.0, self.settings.grid_max, self.settings.grid_points).tolist()
        accuracy = np.zeros((len(scales), len(scales)))
        attention = {d: np.zeros_like(accuracy) for d in self.latents}
        for i, sa in enumerate(scales):
            for j, sb in enumerate(scales):
                s = self.at({a: sa, b: sb}, "grid", i, j)
                accuracy[i, j] = s.accuracy.mean()
                for d in self.latents:
                    attention[d][i, j] = s.attention[d].mean()
        return {
            "domains": [a, b],
            "scales": scales,
            "shape_accuracy": accuracy.tolist(),
            "attention": {d: v.tolist() for d, v in attention.items()},
        }

    def line(self) -> dict[str, Any]:
        """Mean attention on each domain while one domain (each in turn) is corrupted at each scale."""
        scales = np.linspace(0.0, self.settings.grid_max, self.settings.line_points).tolist()
        out: dict[str, Any] = {"scales": scales, "corrupted": {}}
        for c in self.latents:
            runs = [self.at({c: s}, "line", c, i) for i, s in enumerate(scales)]
            out["corrupted"][c] = {
                "attention": {d: [float(r.attention[d].mean()) for r in runs] for d in self.latents},
                "shape_accuracy": [float(r.accuracy.mean()) for r in runs],
            }
        return out


def shape_labels(labels: np.ndarray, columns: Sequence[str]) -> torch.Tensor:
    """Shape classes (N,) from a dataset's label rows; a dataset without a class column is refused."""
    roles = column_roles(list(columns))
    if "class" not in roles:
        raise UserError(
            f"the attention experiment classifies shapes; this dataset has no class column {columns}"
        )
    return torch.from_numpy(np.asarray(labels[:, list(columns).index(roles["class"])]).astype(np.int64))


def load_attention_data(
    data: Path, domains: Sequence[str], device: torch.device
) -> tuple[AttentionData, dict[str, LatentSpec]]:
    """Train and test latents of `domains` and the dataset's shape classes."""
    dataset_file = Path(data) / "dataset.json"
    if not dataset_file.is_file():
        raise UserError(f"{data} has no dataset.json: the attention experiment needs its shape labels")
    dataset = load_dataset(data)
    latents = load_latent_data(data, domains, device, splits=("train", "test"))
    columns = dataset.info.label_columns
    labels = {s: shape_labels(dataset.split(s).labels, columns).to(device) for s in ("train", "test")}
    attention_data = AttentionData(
        latents.split("train"), labels["train"], latents.split("test"), labels["test"]
    )
    return attention_data, latents.specs


def attention_experiment(
    run: Path,
    out: Path,
    settings: AttentionSettings,
    domains: Sequence[str] | None = None,
    device: torch.device | str = "auto",
    force: bool = False,
    command: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """`gw experiment attention RUN --out EXP`: everything above on a trained workspace run."""
    device = resolve_device(device) if isinstance(device, str) else device
    if not Path(run).is_dir():
        raise UserError(f"run {run} does not exist; train a workspace first with `gw train`")
    with shared_input(Path(run)):  # a run still training is not read half-way
        config, model, step = load_model(Path(run), device)
        refuse_overlap(Path(out), {"run": run, "dataset": config.data}, "experiment folder")
        refuse_existing(Path(out), force, "experiment folder", marker="results.json")
        check_run_data(Path(run), config)
        names = list(config.domains) if domains is None else [d.strip() for d in domains if d.strip()]
        unknown = [d for d in names if d not in config.domains]
        if unknown:
            raise UserError(
                f"run {run} has no domain {', '.join(unknown)}; its domains: {', '.join(config.domains)}"
            )
        if len(names) < 2:
            raise UserError(f"the attention experiment needs at least two domains, got {names}")
        require_fits(
            grid_bytes(settings.grid_points, len(names))
            + latent_bytes(config.data, names, ("train", "test")),
            device,
            f"a grid of {settings.grid_points} x {settings.grid_points} noise scales",
            "choose fewer --grid-points",
        )
        with exclusive_output(Path(out)):
            data, _ = load_attention_data(Path(config.data), names, device)
            results = run_attention(model, data, settings, device, progress)
            results["run"] = str(Path(run).resolve())
            results["checkpoint"] = Scored(Path(run), step, config.train.steps).record()
            with atomic_directory(Path(out), force, "experiment folder", marker="results.json") as tmp:
                if command is not None:
                    atomic_write_text(tmp / "command.txt", command + "\n")
                write_attention(tmp, results, command)
        return results


def grid_bytes(points: int, domains: int) -> int:
    """Memory of the two-sided grid's tables: accuracy and each domain's attention per pair of scales."""
    return (1 + domains) * points * points * np.dtype(np.float64).itemsize
