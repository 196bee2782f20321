"""Batches from your own latents (data/latents_format.py): pairs grouped by the domains they join.

Pair rows are grouped by the set of domains present: a v,t pair and a v,attr pair belong to two
groups, so partial pairs of three domains are all used. Each step gives every member one paired
batch per group (only the group's domains) and one unpaired batch holding each domain's draw from
its own collection. The trainer sums the task's terms over the batches (`merged_loss`).

* `--paired N`: member k's pairs are the first N of a permutation of all the pair rows seeded by
  its pairing seed, so sets are nested in N; each group's pool is its share of them.
* Every draw is an index gather on the device with the counter-based hash of sampling.py, keyed
  by the group's domains: nothing leaves the device and the step can be captured in a CUDA graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from .data import LatentData
from .presets import MemberSpec
from .sampling import MASK32, Batch, Sampler, hash_indices, mix32, name_key, pair_permutation

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class PairGroup:
    """The pairs joining exactly `domains`: rows[d] (K, width) is member k's i-th pair's row of d."""

    domains: tuple[str, ...]
    rows: dict[str, torch.Tensor]
    pool: torch.Tensor  # (K,) pairs of each member in the group
    size: int  # rows per batch: min(batch_size, max pool)
    keys: torch.Tensor  # (size,) position keys of the group's draws
    key: int  # mixed into the task key of the group's batch
    weight: torch.Tensor | None  # (K, size): 0 on padding rows; None when every member fills it


def pair_groups(
    pairs: torch.Tensor, domains: Sequence[str], members: Sequence[MemberSpec], batch_size: int
) -> list[PairGroup]:
    """The groups of train pairs (P, n_domains) that any member's pairs fall in, in a fixed order."""
    device = pairs.device
    host = pairs.cpu()
    present = host >= 0
    code = (present.long() << torch.arange(len(domains))).sum(dim=1)  # (P,) one bit per domain
    chosen = [pair_permutation(host.shape[0], m.pairing_seed)[: m.paired] for m in members]
    groups = []
    for value in sorted({int(c) for rows in chosen for c in code[rows].tolist()}):
        columns = [j for j in range(len(domains)) if value >> j & 1]
        names = tuple(domains[j] for j in columns)
        mine = [rows[code[rows] == value] for rows in chosen]  # each member's pairs of the group
        pool = torch.tensor([len(r) for r in mine], dtype=torch.long)
        width = int(pool.max())
        table = torch.zeros(len(members), width, len(domains), dtype=torch.long)
        for k, rows in enumerate(mine):
            table[k, : len(rows)] = host[rows]
        size = min(batch_size, width)
        positions = torch.arange(size, dtype=torch.long)
        filled = positions.unsqueeze(0) < pool.unsqueeze(1)
        groups.append(
            PairGroup(
                domains=names,
                rows={d: table[:, :, j].to(device) for d, j in zip(names, columns, strict=True)},
                pool=pool.to(device),
                size=size,
                keys=mix32(name_key("paired", *names) ^ mix32(positions)).to(device),
                key=name_key("group", *names),
                weight=None if bool(filled.all()) else filled.float().to(device),
            )
        )
    return groups


class GroupSampler:
    """Draws, for an ensemble, one batch per pair group and one unpaired batch, from train latents
    of each domain's own length that live on the device."""

    def __init__(
        self,
        train: Mapping[str, torch.Tensor],
        pairs: torch.Tensor,
        members: Sequence[MemberSpec],
        batch_size: int,
        unpaired: bool = True,
    ) -> None:
        """train[d]: (N_d, latent_dim); pairs: (P, len(train)) long, columns in train's order."""
        self.train = dict(train)
        device = pairs.device
        if any(m.paired < 0 or m.paired > pairs.shape[0] for m in members):
            raise ValueError(f"paired counts must lie in [0, {pairs.shape[0]}]")
        self.member_keys = torch.tensor([name_key(m.seed, "batches") for m in members], device=device)
        self.groups = pair_groups(pairs, list(train), members, batch_size)
        sizes = {d: int(x.shape[0]) for d, x in train.items()}
        rows = {d: min(batch_size, n) if unpaired else 0 for d, n in sizes.items()}
        self.unpaired_keys = {
            d: mix32(name_key("unpaired", d) ^ mix32(torch.arange(n, dtype=torch.long))).to(device)
            for d, n in rows.items()
            if n
        }
        self.pools = {
            d: torch.full((len(members),), sizes[d], dtype=torch.long, device=device) for d in train
        }

    def batches(self, step: torch.Tensor) -> list[Batch]:
        """The batches of a step (an int64 scalar tensor on the device): the groups', then the unpaired."""
        key = mix32(self.member_keys ^ mix32(step & MASK32) ^ name_key("task"))
        out = []
        for group in self.groups:
            slot = hash_indices(self.member_keys ^ group.key, step, group.keys, group.pool)
            position = (slot.float() + 0.5) / group.pool.clamp_min(1).unsqueeze(1).float()
            slot = slot.clamp_max(next(iter(group.rows.values())).shape[1] - 1)
            latents = {d: self.train[d][group.rows[d].gather(1, slot)] for d in group.domains}
            out.append(Batch(latents, group.size, group.weight, key ^ group.key, position))
        if self.unpaired_keys:
            latents = {
                d: self.train[d][hash_indices(self.member_keys, step, keys, self.pools[d])]
                for d, keys in self.unpaired_keys.items()
            }
            out.append(Batch(latents, 0, None, key))
        return out


def make_sampler(
    data: LatentData, members: Sequence[MemberSpec], batch_size: int, unpaired: bool = True
) -> Sampler | GroupSampler:
    """The sampler of the train split: row-aligned, or grouped pairs of own latents."""
    if data.pairs is None:
        return Sampler(data.split("train"), members, batch_size, unpaired)
    return GroupSampler(data.split("train"), data.pairs["train"], members, batch_size, unpaired)


def merged_loss(
    loss: Callable[[Batch], tuple[Terms, Terms]], batches: Sequence[Batch]
) -> tuple[Terms, Terms]:
    """The task's terms over several batches: a term that several batches compute (two groups
    sharing two domains) is their mean weighted by each member's real paired rows, so every pair
    counts alike; the first batch's value of a report entry is kept. One batch: its own terms."""
    if len(batches) == 1:
        return loss(batches[0])
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    report: Terms = {}
    for batch in batches:
        terms, extra = loss(batch)
        for name, value in terms.items():
            parts.setdefault(name, []).append((value, _real_rows(batch)))
        for name, value in extra.items():
            report.setdefault(name, value)
    return {name: _weighted(values) for name, values in parts.items()}, report


def _weighted(values: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    if len(values) == 1:
        return values[0][0]
    total = torch.stack([rows for _, rows in values]).sum(dim=0).clamp_min(1.0)
    return torch.stack([value * rows for value, rows in values]).sum(dim=0) / total


def _real_rows(batch: Batch) -> torch.Tensor:
    """(K,) real paired rows of a batch (padding excluded)."""
    first = next(iter(batch.latents.values()))
    if batch.paired_weight is not None:
        return batch.paired_weight.sum(dim=1)
    return torch.full((first.shape[0],), float(batch.paired_rows), device=first.device)
