"""The Gaussian blur the image probe learns under."""

from __future__ import annotations

import torch

from global_workspace.domains.blur import gaussian_blur
from global_workspace.domains.probe import BLUR_SIGMA_MAX, soften


def _edge() -> torch.Tensor:
    """Two images: a red left half on a black right half."""
    images = torch.zeros(2, 3, 8, 8)
    images[:, 0, :, :4] = 1.0
    return images


def test_zero_width_leaves_an_image_unchanged_and_a_flat_image_stays_flat() -> None:
    images = _edge()
    assert torch.allclose(gaussian_blur(images, 0.0), images)
    flat = torch.full((1, 3, 8, 8), 0.4)
    assert torch.allclose(gaussian_blur(flat, 0.8), flat)


def test_a_point_spreads_by_its_width() -> None:
    point = torch.zeros(1, 3, 5, 5)
    point[0, :, 2, 2] = 1.0
    spread = gaussian_blur(point, 0.4)
    assert torch.isclose(spread.sum(), torch.tensor(3.0))
    assert spread[0, 0, 2, 2] > spread[0, 0, 2, 1] > spread[0, 0, 1, 1] > 0
    assert gaussian_blur(point, 0.8)[0, 0, 2, 2] < spread[0, 0, 2, 2]  # wider blur, lower peak


def test_each_image_gets_its_own_width() -> None:
    out = gaussian_blur(_edge(), torch.tensor([0.0, 0.8]))
    assert torch.allclose(out[0], _edge()[0])
    left, right = out[1, 0, 0, 3], out[1, 0, 0, 4]
    assert 0.5 < left < 1.0 and 0.0 < right < 0.5  # the edge went soft on both sides
    assert torch.allclose(out[1].sum(), _edge()[1].sum(), atol=1e-4)  # colour moved, none lost


def test_soften_blurs_a_share_of_a_batch_within_the_widest_blur() -> None:
    images = _edge().repeat(32, 1, 1, 1)
    out = soften(images, torch.Generator().manual_seed(0))
    changed = (out - images).abs().amax(dim=(1, 2, 3)) > 1e-6
    assert 0 < int(changed.sum()) < len(images)
    widest = gaussian_blur(images[:1], BLUR_SIGMA_MAX)
    assert float((out - images).abs().amax()) <= float((widest - images[:1]).abs().amax()) + 1e-6
