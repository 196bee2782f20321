"""Loading own latents (`gw data latents`, data/latents_format.py) onto the device for a workspace."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..data.latents_format import load_domain_latents, load_pairs, read_info, select_pairs
from ..domains.latents import read_spec
from ..errors import UserError
from .data import LatentData


def load_own_latents(
    data: Path, names: Sequence[str], device: torch.device, splits: Sequence[str]
) -> LatentData:
    """Every domain's latents and the pairs among `names` (rows pairing fewer than two of them
    dropped) of each split, validated against latents.json. Only train may lack pairs (unsupervised)."""
    info = read_info(data)
    unknown = [d for d in names if d not in info.domains]
    if unknown:
        raise UserError(
            f"domain {unknown[0]!r} is not listed in {data / 'latents.json'} (it lists "
            f"{', '.join(info.domains)}); choose among those"
        )
    missing = [s for s in splits if s not in info.rows]
    if missing:
        raise UserError(
            f"{data} has no split {missing[0]!r} (it has {', '.join(info.splits)}); rebuild it with "
            f"`gw data latents` giving TRAIN,VAL,TEST files per domain"
        )
    specs = {d: read_spec(data, d) for d in names}
    loaded, pairs = {}, {}
    for split in splits:
        loaded[split] = {
            d: torch.from_numpy(load_domain_latents(data, info, d, split)).to(device) for d in names
        }
        chosen = select_pairs(load_pairs(data, info, split), info, list(names))
        if split != "train" and len(chosen) == 0:
            raise UserError(
                f"{data} has no {split} pairs among {', '.join(names)}: validation and scoring compare "
                f"translations with paired rows; rebuild it with `gw data latents` and --pairs {split}=FILE"
            )
        pairs[split] = torch.from_numpy(chosen).to(device)
    return LatentData(path=data, specs=specs, splits=loaded, pairs=pairs)
