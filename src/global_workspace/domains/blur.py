"""A Gaussian blur of a batch of images, one width per image.

Reconstructions and translations into an image domain are never as crisp as rendered images; the
image probe learns under a mild random blur so that it reads their attributes, not their edges."""

from __future__ import annotations

import torch
import torch.nn.functional as F

RADIUS = 2
"""Taps on each side of the kernel: enough for a standard deviation up to about 1 px."""


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """images (B, C, H, W) blurred by a separable Gaussian of standard deviation `sigma` px (a float,
    or one per image, shape (B,)); edges replicated; sigma 0 leaves an image unchanged."""
    b, c, h, w = images.shape
    sigmas = torch.as_tensor(sigma, dtype=images.dtype, device=images.device).expand(b)
    offsets = torch.arange(-RADIUS, RADIUS + 1, dtype=images.dtype, device=images.device)
    taps = torch.exp(-offsets.square() / (2 * sigmas[:, None].clamp_min(1e-3).square()))
    taps = (taps / taps.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
    flat = F.pad(images.reshape(1, b * c, h, w), (RADIUS,) * 4, mode="replicate")
    flat = F.conv2d(flat, taps[:, None, None, :], groups=b * c)
    flat = F.conv2d(flat, taps[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)
