"""The "no shared workspace" ablation: one direct translator per ordered pair of domains.

A global workspace translates a -> b through a shared state, D_b(tanh(E_a(u_a))). This model
keeps everything else and removes the shared space: T_ab maps u_a straight to a prediction of u_b.
With k domains there are k(k - 1) translators instead of k encoders and k decoders.

Losses (the workspace's, where they still make sense; each domain's own `LatentLoss` scores):
  translation/{a}_to_{b}     T_ab(u_a) vs u_b              paired rows (as the workspace's L_tr)
  cycle/{a}_through_{b}      T_ba(T_ab(u_a)) vs u_a        unpaired rows of a (as L_cy)
There is NO demi-cycle: nothing encodes a domain into a state that could be decoded back, and
T_aa would be a plain auto-encoder of the unimodal latent, not a part of the translation path.
There is NO contrastive term: there is no common space in which encodings of a and b could be
compared. For the same reason retrieval and the downstream tasks read from a workspace state
(linear probe, zero-shot, odd-one-out) do not apply; evaluation reports them as not applicable.

Size. T_ab is an MLP with as many linear layers as the workspace's path E_a then D_b (their
depths together) and the same count of hidden nonlinearities: the path's tanh bottleneck becomes an
ordinary hidden ReLU layer. Its width is the one whose parameter count is closest to
params(E_a) + params(D_b) (`direct_width`), so T_ab and the path have the same size within a few
percent (with the defaults, latents 12 and 11: width 30, 8171 vs 7927 parameters, +3.1%).

Shapes as in the workspace: latents (K, B, dim) with the ensemble dimension first; a (B, dim)
input is shared by all K members. Member k is initialised from its own seed (`EnsembleMLP`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from ..domains.latents import LatentSpec
from ..errors import UserError
from .ensemble import EnsembleMLP
from .evaluate import Metrics, add_squared_error, as_latent, row_blocks, row_count
from .losses import Terms, weighted_mean
from .presets import CYCLE, TRANSLATION
from .sampling import Batch
from .settings import WorkspaceConfig

DIRECT_CATEGORIES = (TRANSLATION, CYCLE)
"""Loss categories of the direct translators (the workspace's demi-cycle and contrastive have no
counterpart without a shared space)."""


def mlp_parameters(in_dim: int, width: int, out_dim: int, depth: int) -> int:
    """Weights + biases of EnsembleMLP(1, in_dim, width, out_dim, depth)."""
    sizes = [in_dim] + [width] * (depth - 1) + [out_dim]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def path_parameters(config: WorkspaceConfig, source: str, target: str) -> int:
    """Parameters of the workspace's translation path source -> target: E_source + D_target."""
    ws, dims = config.workspace_dim, config.domains
    encoder = mlp_parameters(dims[source], config.width_of(source), ws, config.depth_of(source))
    return encoder + mlp_parameters(ws, config.width_of(target), dims[target], config.depth_of(target))


def direct_depth(config: WorkspaceConfig, source: str, target: str) -> int:
    """Linear layers of a translator: those of E_source and D_target together."""
    return config.depth_of(source) + config.depth_of(target)


def direct_width(config: WorkspaceConfig, source: str, target: str) -> int:
    """The hidden width whose translator has the parameter count closest to the workspace path's
    (ties go to the narrower one)."""
    target_count = path_parameters(config, source, target)
    depth = direct_depth(config, source, target)
    a, b = config.domains[source], config.domains[target]
    best, best_gap = 1, abs(mlp_parameters(a, 1, b, depth) - target_count)
    widest = max(config.width_of(source), config.width_of(target), config.workspace_dim)
    for width in range(2, 8 * widest + 1):
        gap = abs(mlp_parameters(a, width, b, depth) - target_count)
        if gap < best_gap:
            best, best_gap = width, gap
    return best


def pair_name(source: str, target: str) -> str:
    return f"{source}_to_{target}"


class DirectTranslators(nn.Module):
    """K ensembles of direct translators T_ab for every ordered pair of domains; no shared space.

    Built from the `WorkspaceConfig` of the workspace it ablates (domains, width, depth; the
    workspace dimension only enters through the size matching of `direct_width`).
    """

    def __init__(self, config: WorkspaceConfig, seeds: Sequence[int]) -> None:
        super().__init__()
        if len(config.domains) < 2:
            raise ValueError("direct translation needs at least two domains")
        self.config = config
        self.seeds = [int(s) for s in seeds]
        k = len(self.seeds)
        self.translators = nn.ModuleDict()
        for a, b in itertools.permutations(config.domains, 2):
            width, depth = direct_width(config, a, b), direct_depth(config, a, b)
            mlp = EnsembleMLP(k, config.domains[a], width, config.domains[b], depth)
            mlp.reset_parameters(self.seeds, f"translator/{pair_name(a, b)}")
            self.translators[pair_name(a, b)] = mlp

    @property
    def members(self) -> int:
        return len(self.seeds)

    @property
    def domain_names(self) -> list[str]:
        return list(self.config.domains)

    def translator(self, source: str, target: str) -> EnsembleMLP:
        module = self.translators[pair_name(source, target)]
        assert isinstance(module, EnsembleMLP)
        return module

    def translate(self, source: str, target: str, latent: torch.Tensor) -> torch.Tensor:
        """T_target<-source(u): (K or shared, B, source_dim) -> (K, B, target_dim)."""
        if latent.dim() == 2:
            latent = latent.unsqueeze(0).expand(self.members, -1, -1)
        return self.translator(source, target)(latent)


class DirectTask:
    """Translation and cycle losses of the direct translators, as a trainer task.

    Rows of a batch are used as by the workspace's `GWTask`: translations on the paired rows
    (weighted by `Batch.paired_weight`), cycles on each domain's unpaired rows. Each term is a
    (K,) tensor; a term with nothing to compute is absent.
    """

    categories: tuple[str, ...] = DIRECT_CATEGORIES
    needs_pairs: frozenset[str] = frozenset({TRANSLATION})

    def __init__(self, specs: Mapping[str, LatentSpec], active: Iterable[str] = DIRECT_CATEGORIES) -> None:
        self.specs = dict(specs)
        self.active = frozenset(active)
        unknown = self.active - set(self.categories)
        if unknown:
            raise UserError(
                f"direct translators have no loss {', '.join(sorted(unknown))} (no shared space: no "
                f"demi-cycle, no contrastive); known: {', '.join(self.categories)}"
            )

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        assert isinstance(model, DirectTranslators)
        return list(model.parameters())

    def loss(self, model: nn.Module, batch: Batch) -> tuple[Terms, Terms]:
        """(terms, report): per-member (K,) loss terms; no diagnostics."""
        assert isinstance(model, DirectTranslators)
        p, w = batch.paired_rows, batch.paired_weight
        domains = [d for d in model.domain_names if d in batch.latents]
        u = batch.latents  # (K, P + U_d, dim)
        n_unpaired = {d: batch.unpaired_count(d) for d in domains}
        do_tr = TRANSLATION in self.active and p > 0
        do_cy = CYCLE in self.active
        # One pass of each translator over its translation rows and its cycles' first leg.
        out: dict[tuple[str, str], torch.Tensor] = {}
        for a, b in itertools.permutations(domains, 2):
            lo = 0 if do_tr else p
            hi = p + n_unpaired[a] if do_cy else p
            if hi > lo:
                out[(a, b)] = model.translate(a, b, u[a][:, lo:hi])  # (K, hi - lo, dim_b)
        terms: Terms = {}
        for a, b in itertools.permutations(domains, 2):
            if do_tr:
                loss = self.specs[b].loss(out[(a, b)][:, :p], u[b][:, :p])  # (K, P)
                terms[f"{TRANSLATION}/{a}_to_{b}"] = weighted_mean(loss, w)
        if do_cy:
            for a, b in itertools.permutations(domains, 2):
                n = n_unpaired[a]
                if n:
                    there = self.specs[b].loss.as_latent(out[(a, b)][:, -n:])
                    back = model.translate(b, a, there)  # (K, U_a, dim_a)
                    terms[f"{CYCLE}/{a}_through_{b}"] = self.specs[a].loss(back, u[a][:, p:]).mean(dim=1)
        return terms, {}


@torch.no_grad()
def direct_latent_metrics(
    model: nn.Module,
    latents: Mapping[str, torch.Tensor],
    specs: Mapping[str, LatentSpec] | None = None,
) -> Metrics:
    """translation/{a}_to_{b}/latent_mse and cycle/{a}_through_{b}/latent_mse, (K,) each, named and
    computed as the workspace's `latent_metrics` (a one-hot block compared as probabilities)."""
    assert isinstance(model, DirectTranslators)
    domains = [d for d in model.domain_names if d in latents]
    specs = specs or {}
    sums: dict[str, torch.Tensor] = {}
    for _, rows in row_blocks(latents, domains):
        for a, b in itertools.permutations(domains, 2):
            pred = model.translate(a, b, rows[a])  # (K, c, dim_b)
            pred = as_latent(pred, specs.get(b))
            add_squared_error(sums, f"translation/{a}_to_{b}/latent_mse", pred, rows[b])
            back = as_latent(model.translate(b, a, pred), specs.get(a))
            add_squared_error(sums, f"cycle/{a}_through_{b}/latent_mse", back, rows[a])
    n = row_count(latents)
    return {k: v / n for k, v in sums.items()}


NO_SHARED_SPACE = "not applicable: the direct translators have no shared space"


def not_applicable(domains: Sequence[str]) -> dict[str, str]:
    """The workspace's metric names that have no meaning without a shared space -> the reason.

    Reported as null in metrics.json (never as zero)."""
    out = {f"demi_cycle/{a}/latent_mse": f"{NO_SHARED_SPACE} (nothing to encode into)" for a in domains}
    for a, b in itertools.permutations(domains, 2):
        for name in ("top1", "mrr"):
            out[f"retrieval/{a}_to_{b}/{name}"] = f"{NO_SHARED_SPACE} (no common space to compare in)"
    return out
