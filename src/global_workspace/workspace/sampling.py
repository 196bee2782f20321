"""Semi-supervised batches drawn on the device by index gathers, one vectorised op for all members.

Each step gives every member one paired batch (all domains, from its own set of paired examples)
and one unpaired batch per domain (from the whole train split). Indices come from a counter-based
hash of (member seed, step, group, position): no generator state, no host work per step, the same
draw on any device, for any K and whatever other members share the ensemble, and the step is a
device tensor so the draw can be captured in a CUDA graph.

* Pairs: member k's paired examples are the first `paired` of a permutation of the train split
  seeded by its pairing seed (its seed unless `pair_seed` is set), so sets are nested in `paired`.
* A pool no larger than the batch is used whole every step (in pool order); a larger pool is
  sampled with replacement. A paired batch is min(batch_size, max_k paired_k) rows; members with
  fewer pairs than that pad with rows of weight 0 (`Batch.paired_weight`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..seeding import derive_seed, torch_generator
from .presets import MemberSpec

MASK32 = 0xFFFFFFFF


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32) of int64 tensors holding values in [0, 2**32).

    Products may overflow int64; two's-complement wrap-around keeps the low 32 bits right.
    """
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & MASK32
    return x ^ (x >> 16)


def hash_indices(
    member_keys: torch.Tensor, step: torch.Tensor, position_keys: torch.Tensor, pool: torch.Tensor
) -> torch.Tensor:
    """Indices in [0, pool_k) for every member and position: (K,), (), (B,), (K,) -> (K, B).

    A member whose pool fits the batch takes its pool in order (position p -> p mod pool_k).
    """
    step_key = mix32(member_keys ^ mix32(step & MASK32))  # (K,)
    h = mix32(step_key.unsqueeze(1) ^ position_keys.unsqueeze(0))  # (K, B)
    positions = torch.arange(position_keys.shape[0], device=position_keys.device)
    pool = pool.clamp_min(1).unsqueeze(1)
    batch = position_keys.shape[0]
    return torch.where(pool <= batch, positions.unsqueeze(0) % pool, h % pool)


@dataclass
class Batch:
    """One step's data for K members.

    latents[d]: (K, P + U_d, latent_dim). Rows [0, P) are the paired examples (row i of every
    domain is the same example); rows [P, P + U_d) are domain d's unpaired examples. A domain
    missing from `latents` is absent from the batch (single-domain batches are valid).
    paired_weight: (K, P) with 1 for a real pair and 0 for padding; None means all ones.
    key: (K,) int64 in [0, 2**32), a per-member key of this step for a task's own random draws
    (e.g. fusion weights, see `selection.hash_uniform`); None when no step produced the batch.
    pair_position: (K, P) float, where each paired row's example sits in its member's list of
    pairs, (slot + 0.5) / paired in (0, 1); lets a task keep its last pairs out of most terms
    (`BroadcastTask`'s gate pairs). None when no sampler made the batch.
    """

    latents: dict[str, torch.Tensor]
    paired_rows: int
    paired_weight: torch.Tensor | None = None
    key: torch.Tensor | None = None
    pair_position: torch.Tensor | None = None

    def unpaired_count(self, domain: str) -> int:
        return int(self.latents[domain].shape[1]) - self.paired_rows


def pair_permutation(train_size: int, seed: int) -> torch.Tensor:
    """The seeded order in which train examples become paired: the first N are the N pairs."""
    return torch.randperm(train_size, generator=torch_generator(seed, "pairs"))


def name_key(*names: object) -> int:
    """A 32-bit key of names, mixed into the hashes so that each draw has its own stream."""
    return derive_seed(0, *names) & MASK32


class Sampler:
    """Draws `Batch`es for an ensemble from train latents that live on the device."""

    def __init__(
        self,
        train: Mapping[str, torch.Tensor],
        members: Sequence[MemberSpec],
        batch_size: int,
        unpaired: bool = True,
    ) -> None:
        """train[d]: (N, latent_dim) on the device, row i of every domain the same example."""
        sizes = {int(x.shape[0]) for x in train.values()}
        if len(sizes) != 1:
            raise ValueError(f"train latents of the domains have different lengths {sizes}")
        self.train = dict(train)
        self.train_size = sizes.pop()
        device = next(iter(train.values())).device
        paired = [m.paired for m in members]
        if any(p < 0 or p > self.train_size for p in paired):
            raise ValueError(f"paired counts {paired} must lie in [0, {self.train_size}]")
        self.member_keys = torch.tensor([name_key(m.seed, "batches") for m in members], device=device)
        self.pool = torch.tensor(paired, dtype=torch.long, device=device)
        self.paired_rows = min(batch_size, max(paired))
        self.unpaired_rows = min(batch_size, self.train_size) if unpaired else 0
        width = max(max(paired), 1)
        table = torch.zeros(len(members), width, dtype=torch.long)
        for k, m in enumerate(members):
            table[k, : m.paired] = pair_permutation(self.train_size, m.pairing_seed)[: m.paired]
        self.pair_table = table.to(device)  # (K, max paired): train index of member k's pair i
        positions = torch.arange(batch_size, dtype=torch.long)
        self.paired_keys = mix32(name_key("paired") ^ mix32(positions[: self.paired_rows])).to(device)
        self.unpaired_keys = {
            d: mix32(name_key("unpaired", d) ^ mix32(positions[: self.unpaired_rows])).to(device)
            for d in train
        }
        self.train_pool = torch.full((len(members),), self.train_size, dtype=torch.long, device=device)
        weight = torch.arange(self.paired_rows, device=device).unsqueeze(0) < self.pool.unsqueeze(1)
        # None when every member fills the paired batch: the losses then take plain means.
        self.paired_weight = None if bool(weight.all()) else weight.float()

    def batches(self, step: torch.Tensor) -> list[Batch]:
        """The step's batches for the trainer: row-aligned data make one (pair_groups.py makes several)."""
        return [self.batch(step)]

    def batch(self, step: torch.Tensor) -> Batch:
        """The batch of a step (an int64 scalar tensor on the device)."""
        parts: dict[str, list[torch.Tensor]] = {d: [] for d in self.train}
        position = None
        if self.paired_rows:
            slot = hash_indices(self.member_keys, step, self.paired_keys, self.pool)
            position = (slot.float() + 0.5) / self.pool.clamp_min(1).unsqueeze(1).float()
            rows = self.pair_table.gather(1, slot.clamp_max(self.pair_table.shape[1] - 1))
            for d in self.train:
                parts[d].append(rows)
        if self.unpaired_rows:
            for d in self.train:
                parts[d].append(hash_indices(self.member_keys, step, self.unpaired_keys[d], self.train_pool))
        latents = {}
        for d, idx in parts.items():
            index = idx[0] if len(idx) == 1 else torch.cat(idx, dim=1)  # (K, P + U)
            latents[d] = self.train[d][index]  # (K, P + U, latent_dim)
        key = mix32(self.member_keys ^ mix32(step & MASK32) ^ name_key("task"))
        return Batch(
            latents=latents,
            paired_rows=self.paired_rows,
            paired_weight=self.paired_weight,
            key=key,
            pair_position=position,
        )
