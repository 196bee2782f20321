"""Own latents cut from a row-aligned dataset: the worked example of separate collections.

The train examples are dealt out, seeded and disjointly: each pair group (a, b) gets its count of
examples that both a and b see, paired; each domain then gets its count of examples that only it
sees. Val and test stay whole and row-aligned (identity pairs), so scores compare with runs on the
row-aligned dataset itself; each domain keeps its latent loss (attr's class block stays categorical)
so that training and scores mean the same on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..domains.latents import load_latents, read_spec
from ..errors import UserError
from ..seeding import numpy_generator
from .build_latents import build_latents
from .latents_format import LatentsInfo, identity_pairs


def split_aligned(
    data: Path | str,
    out: Path | str,
    alone: Mapping[str, int],
    pairs: Mapping[tuple[str, str], int],
    splits: Sequence[str] = ("train", "val", "test"),
    seed: int = 0,
    force: bool = False,
) -> LatentsInfo:
    """Write OUT from DATA's latents of the domains of `alone` ({domain: examples only it sees}),
    with `pairs` ({(a, b): paired examples}) dealt from the train split (see the module)."""
    names = list(alone)
    unknown = sorted({d for group in pairs for d in group} - set(names))
    if unknown:
        raise UserError(f"pairs name domain {unknown[0]!r}, which has no collection; list it in alone")
    latents = {d: {s: load_latents(Path(data), d, s) for s in splits} for d in names}
    size = min(int(x["train"].shape[0]) for x in latents.values())
    needed = sum(alone.values()) + sum(pairs.values())
    if needed > size:
        raise UserError(
            f"the collections and pairs need {needed} train examples, {data} has {size}; ask for fewer"
        )
    order = numpy_generator(seed, "split-aligned").permutation(size)
    examples: dict[str, list[np.ndarray]] = {d: [] for d in names}
    rows: list[np.ndarray] = []
    start = 0
    for group, count in pairs.items():
        taken = order[start : start + count]
        start += count
        block = np.full((count, len(names)), -1, dtype=np.int64)
        for d in group:
            offset = sum(len(e) for e in examples[d])
            block[:, names.index(d)] = offset + np.arange(count)
            examples[d].append(taken)
        rows.append(block)
    for d, count in alone.items():
        examples[d].append(order[start : start + count])
        start += count
    domains = {
        d: {s: latents[d][s] if s != "train" else latents[d][s][np.concatenate(examples[d])] for s in splits}
        for d in names
    }
    all_pairs = {
        s: identity_pairs(int(latents[names[0]][s].shape[0]), len(names)) for s in splits if s != "train"
    }
    if rows:
        all_pairs["train"] = np.concatenate(rows)
    losses = {d: read_spec(Path(data), d).loss for d in names}
    return build_latents(out, domains, all_pairs, force, losses)
