"""Small building blocks shared by the specialists: conv stacks, a Gaussian head, weight files."""

from __future__ import annotations

import itertools
from abc import abstractmethod
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from ..finite import require_finite_tensors
from .base import Domain

WEIGHTS_FILE = "weights.safetensors"


class TorchDomain(Domain):
    """A domain with networks: it can move to a device and may keep files beside the dataset."""

    device: torch.device = torch.device("cpu")

    @abstractmethod
    def to(self, device: torch.device | str) -> TorchDomain:
        """Move every network to `device`; encode/decode then run there."""

    def attach(self, data: Path, progress: bool = False) -> None:
        """Called with the dataset folder when the domain is built or loaded for it; `progress`: show
        a bar over work that takes minutes on a large dataset (embedding its captions)."""


def conv_encoder(channels: list[int]) -> nn.Sequential:
    """Strided 4x4 convolutions, each halving the image: (B, c0, H, W) -> (B, c_last, H/2^k, W/2^k)."""
    layers: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers)


def conv_decoder(channels: list[int]) -> nn.Sequential:
    """Mirror of conv_encoder with transposed convolutions; the last layer has no norm/activation."""
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(channels))
    for i, (c_in, c_out) in enumerate(pairs):
        last = i == len(pairs) - 1
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=last))
        if not last:
            layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed over the last dim: (B, D) -> (B,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def images_to_tensor(images: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1] on `device`."""
    t = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
    return t.to(device).permute(0, 3, 1, 2).float().div_(255.0)


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3) on the CPU."""
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def freeze(module: ModuleT) -> ModuleT:
    """Evaluation mode and no gradients: a specialist is never trained by what uses it."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def save_weights(module: nn.Module, folder: Path) -> None:
    """State dict (parameters and buffers) as safetensors: no pickle, loads anywhere."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(Path(folder) / WEIGHTS_FILE))


def load_weights(module: nn.Module, folder: Path, what: str) -> None:
    """Load save_weights' file into `module`, refusing missing, corrupted, mismatched or non-finite
    weights."""
    file = Path(folder) / WEIGHTS_FILE
    if not file.is_file():
        raise UserError(f"{what} weights {file} are missing; rerun `gw pretrain` with --force")
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(
            f"{what} weights {file} are corrupted ({exc}); rerun `gw pretrain` with --force"
        ) from exc
    require_finite_tensors(state, f"{what} weights {file}", "rerun `gw pretrain` with --force")
    own = module.state_dict()
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise UserError(
            f"{what} weights {file} do not match the model described by its config.json "
            "(written by another version?); rerun `gw pretrain` with --force"
        )
    module.load_state_dict(state)
