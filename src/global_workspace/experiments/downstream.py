"""Downstream tasks on frozen workspace states (docs/design.md §6), for every ensemble member at once.

All tasks read the workspace state of one domain alone, z = tanh(E_d(u_d)), shape (K, N, ws):
- linear probe: a linear classifier of shape class trained on the states of a small labelled set
  of one domain, tested on that domain's test states -> `probe/{d}/shape_accuracy`;
- zero-shot: class means of the labelled set's states from domain a; each test example of
  domain b goes to the class whose mean is nearest in cosine similarity
  -> `zero_shot/{a}_to_{b}/shape_accuracy`;
- odd-one-out: a small classifier looks at three states and picks the item that differs from
  the other two in exactly one attribute (the other attributes are either shared by all three or
  all different, so the answer is unambiguous); trained on states of domain a, tested on test
  triplets seen through domain a (`odd_one_out/{a}/accuracy`) and through domain b
  (`odd_one_out/{a}_to_{b}/accuracy`, the transfer).
Chance is 1/3 for every task. Retrieval is part of the workspace evaluation, not repeated here.

The labelled set and the triplets are drawn from `settings.seed`, the same for every member, so
members differ only by their workspace; classifier weights start from each member's own seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..domains.attr import column_roles
from ..seeding import derive_seed, numpy_generator
from ..workspace.ensemble import EnsembleLinear, EnsembleMLP


@dataclass(frozen=True)
class DownstreamSettings:
    """Sizes of the downstream tasks."""

    labelled: int = 500
    """Train examples with a label available to the probe and to the zero-shot class means."""
    probe_steps: int = 300
    probe_lr: float = 0.05
    odd_pool: int = 2000
    """Train examples the odd-one-out training triplets are drawn from."""
    odd_train_triplets: int = 1500
    odd_test_triplets: int = 1000
    odd_steps: int = 200
    odd_lr: float = 1e-2
    odd_width: int = 16
    seed: int = 0


@dataclass(frozen=True)
class LabelledStates:
    """Workspace states of one split: domain -> (K, N, ws), with the split's label rows (N, C)."""

    states: Mapping[str, torch.Tensor]
    labels: np.ndarray
    columns: Sequence[str]


def attribute_codes(labels: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """Categorical codes (N, A) of the attributes an odd-one-out item can differ in.

    Class as is; x and y in thirds of their range (a 3×3 grid); size in 4 bins (the caption's
    tiny/small/medium/big for Simple Shapes); rotation in 8 sectors; colour in 6 hue sectors.
    """
    roles = column_roles(list(columns))
    col = {
        role: np.asarray(labels[:, list(columns).index(name)], dtype=np.float64)
        for role, name in roles.items()
    }
    codes: list[np.ndarray] = []
    if "class" in col:
        codes.append(col["class"].astype(np.int64))
    for role, bins in (("x", 3), ("y", 3), ("size", 4)):
        if role in col:
            codes.append(_equal_bins(col[role], bins))
    if "rotation" in col:
        codes.append(np.floor(np.mod(col["rotation"], 2 * math.pi) / (2 * math.pi) * 8).astype(np.int64) % 8)
    if all(c in col for c in ("r", "g", "b")):
        codes.append(_hue_sector(col["r"], col["g"], col["b"], 6))
    if not codes:
        return np.zeros((len(labels), 0), dtype=np.int64)
    return np.stack(codes, axis=1)


def _equal_bins(values: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(len(values), dtype=np.int64)
    return np.clip(np.floor((values - lo) / (hi - lo) * bins), 0, bins - 1).astype(np.int64)


def _hue_sector(r: np.ndarray, g: np.ndarray, b: np.ndarray, sectors: int) -> np.ndarray:
    rgb = np.stack([r, g, b], axis=1)
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    delta = np.where(mx > mn, mx - mn, 1.0)
    hue = np.where(
        mx == r, ((g - b) / delta) % 6, np.where(mx == g, (b - r) / delta + 2, (r - g) / delta + 4)
    )
    return np.clip(np.floor(hue / 6 * sectors), 0, sectors - 1).astype(np.int64)


def sample_triplets(codes: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` triplets of distinct rows where exactly one attribute splits them two against one.

    Returns indices (count, 3) and the position of the odd item (count,), uniform over 0, 1, 2.
    """
    n, attrs = codes.shape
    if n < 3 or attrs == 0:
        raise ValueError("odd-one-out needs at least three examples and one attribute")
    found_idx: list[np.ndarray] = []
    found_odd: list[np.ndarray] = []
    have = 0
    for _ in range(1000):
        cand = rng.integers(0, n, size=(max(4 * count, 1024), 3))
        c = codes[cand]  # (M, 3, A)
        e01, e02, e12 = c[:, 0] == c[:, 1], c[:, 0] == c[:, 2], c[:, 1] == c[:, 2]
        all_same = e01 & e02
        all_diff = ~e01 & ~e02 & ~e12
        split = ~all_same & ~all_diff  # two equal, one different
        ok = (split.sum(axis=1) == 1) & (cand[:, 0] != cand[:, 1]) & (cand[:, 0] != cand[:, 2])
        ok &= cand[:, 1] != cand[:, 2]
        if not ok.any():
            continue
        cand, e01s, e02s = cand[ok], (e01 & split)[ok].any(axis=1), (e02 & split)[ok].any(axis=1)
        odd = np.where(e01s, 2, np.where(e02s, 1, 0))
        found_idx.append(cand)
        found_odd.append(odd)
        have += len(cand)
        if have >= count:
            break
    if have < count:
        raise ValueError("could not find enough unambiguous odd-one-out triplets in this data")
    idx, odd = np.concatenate(found_idx)[:count], np.concatenate(found_odd)[:count]
    # Move the odd item to a uniformly drawn position so that position carries no information.
    target = rng.integers(0, 3, size=count)
    rows = np.arange(count)
    swapped = idx.copy()
    swapped[rows, target], swapped[rows, odd] = idx[rows, odd], idx[rows, target]
    return swapped, target


def _fit(
    params: list[torch.nn.Parameter], loss_fn: Callable[[], torch.Tensor], steps: int, lr: float
) -> None:
    """Full-batch Adam; Adam is elementwise, so every member trains as it would alone."""
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()


def linear_probe(
    train: torch.Tensor,
    train_y: torch.Tensor,
    test: torch.Tensor,
    test_y: torch.Tensor,
    seeds: Sequence[int],
    classes: int,
    settings: DownstreamSettings,
) -> torch.Tensor:
    """K linear classifiers on (K, n, ws) states; accuracy (K,) on (K, m, ws) test states."""
    with torch.enable_grad():
        probe = EnsembleLinear(train.shape[0], train.shape[2], classes).to(train.device)
        probe.reset_parameters([torch.Generator().manual_seed(derive_seed(s, "probe")) for s in seeds])
        target = train_y.expand(train.shape[0], -1)

        def loss() -> torch.Tensor:
            logits = probe(train)  # (K, n, classes)
            return F.cross_entropy(logits.transpose(1, 2), target, reduction="mean") * train.shape[0]

        _fit(list(probe.parameters()), loss, settings.probe_steps, settings.probe_lr)
    with torch.no_grad():
        return (probe(test).argmax(-1) == test_y).float().mean(dim=1)


def zero_shot(
    source: torch.Tensor, source_y: torch.Tensor, target: torch.Tensor, target_y: torch.Tensor, classes: int
) -> torch.Tensor:
    """Nearest class mean (cosine) of source states, applied to target states; accuracy (K,)."""
    onehot = F.one_hot(source_y, classes).to(source.dtype)  # (n, C)
    counts = onehot.sum(0).clamp_min(1.0)
    means = torch.einsum("knd,nc->kcd", source, onehot) / counts[None, :, None]  # (K, C, ws)
    sims = torch.einsum("kmd,kcd->kmc", F.normalize(target, dim=-1), F.normalize(means, dim=-1))
    return (sims.argmax(-1) == target_y).float().mean(dim=1)


def _triplet_features(states: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(K, N, ws) states and (T, 3) indices -> per-item features (K, T, 3, 2·ws).

    Item i sees how far it is from the other two and how far those two are from each other,
    so the classifier is the same function for every position.
    """
    z = states[:, idx]  # (K, T, 3, ws)
    feats = []
    for i, (j, k) in enumerate(((1, 2), (0, 2), (0, 1))):
        own = (z[:, :, i] - z[:, :, j]).abs() + (z[:, :, i] - z[:, :, k]).abs()
        others = (z[:, :, j] - z[:, :, k]).abs()
        feats.append(torch.cat([own, others], dim=-1))
    return torch.stack(feats, dim=2)


def odd_one_out(
    train: torch.Tensor,
    train_idx: np.ndarray,
    train_odd: np.ndarray,
    tests: Mapping[str, torch.Tensor],
    test_idx: np.ndarray,
    test_odd: np.ndarray,
    seeds: Sequence[int],
    settings: DownstreamSettings,
) -> dict[str, torch.Tensor]:
    """Train K odd-one-out classifiers on one domain's states; accuracy (K,) on each test domain."""
    device = train.device
    k, ws = train.shape[0], train.shape[2]
    with torch.enable_grad():
        net = EnsembleMLP(k, 2 * ws, settings.odd_width, 1, depth=2).to(device)
        net.reset_parameters([derive_seed(s, "odd_one_out") for s in seeds], "odd_one_out")
        feats = _triplet_features(train, torch.as_tensor(train_idx, device=device))  # (K, T, 3, F)
        target = torch.as_tensor(train_odd, device=device).expand(k, -1)

        def loss() -> torch.Tensor:
            logits = net(feats.reshape(k, -1, 2 * ws)).reshape(k, -1, 3)
            return F.cross_entropy(logits.transpose(1, 2), target, reduction="mean") * k

        _fit(list(net.parameters()), loss, settings.odd_steps, settings.odd_lr)
    out = {}
    with torch.no_grad():
        idx = torch.as_tensor(test_idx, device=device)
        answer = torch.as_tensor(test_odd, device=device)
        for name, states in tests.items():
            logits = net(_triplet_features(states, idx).reshape(k, -1, 2 * ws)).reshape(k, -1, 3)
            out[name] = (logits.argmax(-1) == answer).float().mean(dim=1)
    return out


def downstream_metrics(
    train: LabelledStates, test: LabelledStates, seeds: Sequence[int], settings: DownstreamSettings
) -> list[dict[str, float]]:
    """Every downstream metric for each of the K members; one dict per member.

    `train` holds states of the first examples of the train split (at least `labelled` and
    `odd_pool` of them, fewer is allowed), `test` states of the test split.
    """
    domains = list(train.states)
    k = next(iter(train.states.values())).shape[0]
    device = next(iter(train.states.values())).device
    metrics: list[dict[str, float]] = [{} for _ in range(k)]

    def put(name: str, values: torch.Tensor) -> None:
        for m, v in enumerate(values.tolist()):
            metrics[m][name] = float(v)

    roles = column_roles(list(train.columns))
    if "class" in roles:
        col = list(train.columns).index(roles["class"])
        n_lab = min(settings.labelled, len(train.labels))
        lab = numpy_generator(settings.seed, "downstream", "labelled").permutation(len(train.labels))[:n_lab]
        lab_t = torch.as_tensor(lab, device=device)
        y_lab = torch.as_tensor(train.labels[lab, col].astype(np.int64), device=device)
        y_test = torch.as_tensor(test.labels[:, col].astype(np.int64), device=device)
        classes = int(max(int(train.labels[:, col].max()), int(test.labels[:, col].max()))) + 1
        for d in domains:
            put(
                f"probe/{d}/shape_accuracy",
                linear_probe(
                    train.states[d][:, lab_t], y_lab, test.states[d], y_test, seeds, classes, settings
                ),
            )
        for a in domains:
            for b in domains:
                if a != b:
                    put(
                        f"zero_shot/{a}_to_{b}/shape_accuracy",
                        zero_shot(train.states[a][:, lab_t], y_lab, test.states[b], y_test, classes),
                    )
    train_codes = attribute_codes(train.labels, train.columns)
    test_codes = attribute_codes(test.labels, test.columns)
    if train_codes.shape[1] > 0:
        pool = min(settings.odd_pool, len(train.labels))
        rng = numpy_generator(settings.seed, "downstream", "odd_one_out")
        tr_idx, tr_odd = sample_triplets(train_codes[:pool], settings.odd_train_triplets, rng)
        te_idx, te_odd = sample_triplets(test_codes, settings.odd_test_triplets, rng)
        for a in domains:
            accs = odd_one_out(train.states[a], tr_idx, tr_odd, test.states, te_idx, te_odd, seeds, settings)
            for b, acc in accs.items():
                put(f"odd_one_out/{a}/accuracy" if a == b else f"odd_one_out/{a}_to_{b}/accuracy", acc)
    return metrics
