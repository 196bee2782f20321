"""The image probe: a small CNN that reads the attributes off any image.

It is trained on the ground-truth train images to predict the `attr` vector of the image (class
logits, position, size, cos/sin of the rotation, colour; whatever the dataset's attributes are),
with the `attr` domain's own loss. Its score on real test images is the ceiling every
reconstruction or translation into `v` is compared with. Saved in DATA/domains/v/probe/.

Decoded images are a fraction of a pixel softer than rendered ones, and a probe that has only seen
crisp edges misreads their colour. So the probe, once trained on crisp images, trains on for a
second stage (`blur`) with part of each batch mildly blurred, so that it reads a decoded image's
attributes rather than the sharpness of its edges. The crisp stage comes first because a probe
that learns under blur from the start reads real images less precisely (docs/results.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.format import Dataset
from ..fileio import atomic_write_json, read_json
from ..seeding import derive_seed, torch_generator
from .attr import AttrDomain, Attributes
from .blur import gaussian_blur
from .nets import freeze, images_to_tensor, load_weights, save_weights
from .optimise import FitSettings, TrainLog, TrainSettings, batch_indices, optimise

PROBE_BATCH = 1024
BLUR_STEPS = 1500
"""Steps of the blur stage when --steps does not name `blur`."""
BLUR_LR = 3e-4
"""Peak learning rate of the blur stage: it refines a trained probe, so lower than a fresh one's."""
BLUR_SHARE = 0.5
"""Share of the images of a batch that the blur stage blurs; the rest stay crisp."""
BLUR_SIGMA_MAX = 0.6
"""A blurred image's Gaussian width is drawn uniformly from [0, BLUR_SIGMA_MAX] px."""


class ImageProbe(nn.Module):
    """Images (B, 3, S, S) in [0, 1] -> attr vectors (B, out_dim); S divisible by 8."""

    def __init__(self, image_size: int, out_dim: int, width: int = 32) -> None:
        super().__init__()
        w = width
        side = image_size // 8

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            k = 4 if stride == 2 else 3
            return [nn.Conv2d(c_in, c_out, k, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, w, 1), *block(w, 2 * w, 2), *block(2 * w, 4 * w, 2), *block(4 * w, 4 * w, 2)
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * w * side * side, 256), nn.ReLU(), nn.Linear(256, out_dim)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class Probe:
    """A trained ImageProbe together with the attr domain that reads its outputs."""

    def __init__(self, attr: AttrDomain, image_size: int, width: int = 32) -> None:
        self.attr = attr
        self.image_size = image_size
        self.width = width
        self.device = torch.device("cpu")
        self.net = freeze(ImageProbe(image_size, attr.latent_dim, width))

    def to(self, device: torch.device | str) -> Probe:
        self.device = torch.device(device)
        self.net.to(self.device)
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Attributes:
        """float images (N, 3, S, S) in [0, 1] (any device) -> attributes in the dataset's units."""
        out = [
            self.net(images[i : i + PROBE_BATCH].to(self.device)).float().cpu()
            for i in range(0, len(images), PROBE_BATCH)
        ]
        return self.attr.decode(torch.cat(out) if out else torch.zeros(0, self.attr.latent_dim))

    def predict_uint8(self, images: np.ndarray) -> Attributes:
        """uint8 images (N, S, S, 3), e.g. a dataset split, batch by batch."""
        parts = [
            self.predict(images_to_tensor(images[i : i + PROBE_BATCH], self.device))
            for i in range(0, len(images), PROBE_BATCH)
        ]
        return Attributes.concat(parts)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(self.net, folder)
        atomic_write_json(
            folder / "config.json",
            {"image_size": self.image_size, "width": self.width, "attr": self.attr.config()},
        )

    @classmethod
    def load(cls, folder: Path, device: torch.device | str) -> Probe:
        config = read_json(folder / "config.json", "image probe config")
        probe = cls(AttrDomain("attr", **config["attr"]), int(config["image_size"]), int(config["width"]))
        load_weights(probe.net, folder, "image probe")
        freeze(probe.net)
        return probe.to(device)


def train_probe(dataset: Dataset, settings: FitSettings, log: TrainLog) -> tuple[Probe, dict[str, float]]:
    """Fit a new probe on the ground-truth train images against the attr vectors of their labels."""
    attr = AttrDomain("attr")
    attr.fit(dataset, None)
    train = settings.train("probe", default_steps=1500, lr=2e-3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(settings.seed, "probe", "init"))
        probe = Probe(attr, dataset.info.image_size).to(settings.device)
    return probe, _fit_probe(probe, dataset, train, log, "probe", blur=False)


def train_probe_under_blur(
    probe: Probe, dataset: Dataset, settings: FitSettings, log: TrainLog
) -> dict[str, float]:
    """Train `probe` on (the `blur` stage, see the module docstring), in place."""
    train = settings.train("blur", default_steps=BLUR_STEPS, lr=BLUR_LR)
    return _fit_probe(probe.to(settings.device), dataset, train, log, "blur", blur=True)


def _fit_probe(
    probe: Probe, dataset: Dataset, train: TrainSettings, log: TrainLog, tag: str, blur: bool
) -> dict[str, float]:
    """Optimise the probe's network on the train images (blurred as `soften` does, with `blur`)."""
    device = probe.device
    net = probe.net
    for p in net.parameters():
        p.requires_grad_(True)
    split = dataset.split("train")
    images = torch.from_numpy(np.array(split.images)).to(device)
    targets = probe.attr.encode(split.labels).to(device)
    gen = torch_generator(train.seed, tag, "batches")
    widths = torch_generator(train.seed, tag, "widths")

    def step_loss(step: int) -> dict[str, torch.Tensor]:
        idx = batch_indices(len(images), train.batch_size, gen).to(device)
        batch = images_to_tensor(images[idx], device)
        if blur:
            batch = soften(batch, widths)
        return {"loss": probe.attr.loss(net(batch), targets[idx]).mean()}

    metrics = optimise(net, step_loss, train, log, tag, generators=(gen, widths) if blur else (gen,))
    freeze(net)
    return metrics


def soften(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random BLUR_SHARE of `images` blurred, each by its own width in [0, BLUR_SIGMA_MAX] px."""
    n = len(images)
    sigma = torch.rand(n, generator=generator) * BLUR_SIGMA_MAX
    sigma = torch.where(torch.rand(n, generator=generator) < BLUR_SHARE, sigma, torch.zeros(n))
    return gaussian_blur(images, sigma.to(images.device))
