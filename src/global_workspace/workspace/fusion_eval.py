"""Scoring fused inputs: does a workspace reconstruct better from two domains than from one?

For every pair {a, b} of domains (a before b in the model's order) and every domain c:
  fusion/{a}+{b}_to_{c}/latent_mse               D_c(tanh(α_a e_a + α_b e_b)) vs u_c
  fusion/{a}+{b}_to_{c}/best_single_latent_mse   the better of D_c(tanh(e_a)) and D_c(tanh(e_b)),
                                                  per member: one domain alone
The weights come from a selection policy, equal weights (1/2, 1/2) by default; a model with fusion
gates reweighs them per workspace dimension (`GlobalWorkspace.fused_state`), and how it shares
the workspace between a and b is counted too:
  fusion/{a}+{b}/dims_led_by_{a}                 workspace dimensions where a outweighs b when
                                                  both enter with equal weights (its gate is higher)
c may be a or b (a fused reconstruction) or a third domain (a fused translation). One state is
read by every decoder, so the state as a whole is scored too (unless a domain is named `all`):
  fusion/{a}+{b}_to_all/latent_mse               the errors above summed over every domain c
  fusion/{a}+{b}_to_all/best_single_latent_mse   the lower of a's and b's own states' sums, per member
Each metric is (K,); the errors are means over the split's rows, predictions compared as in
`evaluate.latent_metrics` (a one-hot block's logits become probabilities first).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import torch

from ..domains.latents import LatentSpec
from .evaluate import Metrics, add_squared_error, as_latent, row_blocks, row_count
from .model import GlobalWorkspace
from .selection import EqualWeights, Selection, hash_uniform

WHOLE_STATE = "all"
"""The target name of a fused state's errors summed over every domain."""


@torch.no_grad()
def fusion_metrics(
    model: GlobalWorkspace,
    latents: Mapping[str, torch.Tensor],
    specs: Mapping[str, LatentSpec] | None = None,
    selection: Selection | None = None,
    seed: int = 0,
) -> Metrics:
    """The metrics of the module docstring; latents[d]: (N, dim), row i of every domain the same
    example. A random selection draws its weights from `seed` (one key for every member)."""
    selection = selection or EqualWeights()
    specs = specs or {}
    domains = [d for d in model.domain_names if d in latents]
    n = row_count(latents)
    device = next(iter(latents.values())).device
    key = torch.full((model.members,), seed, dtype=torch.long, device=device)
    fused_err: dict[str, torch.Tensor] = {}  # name -> (K,) summed squared error
    single_err: dict[tuple[str, str], torch.Tensor] = {}  # (source, target) -> (K,)
    for start, rows in row_blocks(latents, domains):
        enc = {d: model.encode(d, rows[d]) for d in domains}  # (K, c, ws)
        for a in domains:
            state = torch.tanh(enc[a])
            for c in domains:
                add_squared_error(
                    single_err, (a, c), as_latent(model.decode(c, state), specs.get(c)), rows[c]
                )
        for a, b in itertools.combinations(domains, 2):
            uniform = hash_uniform(key, f"fusion/{a}+{b}/{start}", (rows[a].shape[0], 2))  # (K, c, 2)
            alpha = selection(torch.ones_like(uniform, dtype=torch.bool), uniform)
            fused = model.fused_state({a: enc[a], b: enc[b]}, {a: alpha[..., 0], b: alpha[..., 1]})
            for c in domains:
                pred = as_latent(model.decode(c, fused), specs.get(c))
                add_squared_error(fused_err, f"fusion/{a}+{b}_to_{c}", pred, rows[c])
    out: Metrics = {}
    for a, b in itertools.combinations(domains, 2):
        if model.fusion_gates is not None:
            gates = {d: model.fusion_gates[:, model.domain_names.index(d)] for d in (a, b)}  # (K, ws)
            out[f"fusion/{a}+{b}/dims_led_by_{a}"] = (gates[a] > gates[b]).sum(dim=-1).float()
            out[f"fusion/{a}+{b}/dims_led_by_{b}"] = (gates[b] > gates[a]).sum(dim=-1).float()
        for c in domains:
            name = f"fusion/{a}+{b}_to_{c}"
            out[f"{name}/latent_mse"] = fused_err[name] / n
            out[f"{name}/best_single_latent_mse"] = torch.minimum(single_err[(a, c)], single_err[(b, c)]) / n
        if WHOLE_STATE not in domains:
            whole = f"fusion/{a}+{b}_to_{WHOLE_STATE}"
            fused_sum = torch.stack([fused_err[f"fusion/{a}+{b}_to_{c}"] for c in domains]).sum(dim=0)
            alone = [torch.stack([single_err[(s, c)] for c in domains]).sum(dim=0) for s in (a, b)]
            out[f"{whole}/latent_mse"] = fused_sum / n
            out[f"{whole}/best_single_latent_mse"] = torch.minimum(alone[0], alone[1]) / n
    return out
