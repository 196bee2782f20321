"""A memory estimate made before a run allocates anything, so that what cannot fit is refused in
one line instead of exhausting the machine (or the GPU) part-way through.

Estimates are lower bounds: a run is refused only when even its smallest plausible need exceeds
what the device has free now, so that no run which would fit is ever refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from .domains.latents import domain_folder
from .errors import UserError
from .workspace.direct import mlp_parameters
from .workspace.settings import WorkspaceConfig

FLOAT_BYTES = 4
TRAINING_COPIES = 4
"""Each trained parameter is held four times: weight, gradient and AdamW's two moments."""


def member_parameters(config: WorkspaceConfig) -> int:
    """Parameters of one workspace member: an encoder and a decoder per domain (the contrastive
    scale and fusion gates left out). The direct ablation sizes each of its k(k-1) translators like
    one encoder-decoder path without the workspace layer between them, so it holds about k-1 times
    as many: with two domains a little fewer than this count, with more domains more."""
    ws = config.workspace_dim
    return sum(
        mlp_parameters(dim, config.width_of(d), ws, config.depth_of(d))
        + mlp_parameters(ws, config.width_of(d), dim, config.depth_of(d))
        for d, dim in config.domains.items()
    )


def training_bytes(config: WorkspaceConfig, members: int, batch_size: int) -> int:
    """Memory an ensemble of `members` needs to train: its parameters with their gradients and
    optimiser moments, and the hidden activations of one encoder and one decoder pass over a batch
    (every loss runs at least one translation and keeps its activations for the backward pass),
    those of the domain with the fewest hidden units."""
    state = members * member_parameters(config) * TRAINING_COPIES * FLOAT_BYTES
    hidden = min(
        (config.width_of(d) * (config.depth_of(d) - 1) for d in config.domains),
        default=config.width * (config.depth - 1),
    )
    activations = members * batch_size * hidden * 2 * FLOAT_BYTES
    return state + activations


def latent_bytes(data: Path | str, domains: Iterable[str], splits: Sequence[str]) -> int:
    """Bytes of the latent files a run loads onto its device (float32 on disk as in memory); a
    missing file counts nothing here, loading it names what is missing."""
    files = (domain_folder(Path(data), d) / "latents" / f"{s}.npy" for d in domains for s in splits)
    return sum(f.stat().st_size for f in files if f.is_file())


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on `device` now; None where the system does not say."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def require_fits(needed: int, device: torch.device, what: str, fix: str) -> None:
    """Refuse `what` in one line when it needs more memory than `device` has free, saying both."""
    available = available_bytes(device)
    if available is not None and needed > available:
        raise UserError(
            f"{what} needs at least {_gib(needed)} of memory but {device} has {_gib(available)} "
            f"available; {fix}"
        )


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB"
