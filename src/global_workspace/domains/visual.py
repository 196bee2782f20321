"""The image domain `v`: a convolutional VAE whose mean latent is what the workspace sees.

Architecture as in the reference (docs/design.md §4): four strided 4x4 convolutions 3→32→64→128→256
with BatchNorm and ReLU down to (image_size/16)², a linear map to mean and log-variance; the
decoder mirrors it with transposed convolutions and a sigmoid.

Colour. The reference's loss, 0.5·SSE + 0.1·KL, is a Gaussian likelihood with a pixel noise of
σ ≈ 0.3 (in [0, 1] units), so hue differences sit inside the noise and the prototype reconstructed
grey shapes (docs/design.md §11). Here the loss is `SSE_w + β·KL` with a small β (σ² = β/2, default
β = 0.01, σ ≈ 0.07) and the squared error of the shape's pixels (non-black in the target) weighted
`foreground_weight` times more, since the shape is only 5–20% of the image but carries all of its
content. The probe's colour error on reconstructions (metrics.json) checks that hue survives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.format import Dataset, Split
from ..errors import UserError
from ..seeding import derive_seed, torch_generator
from .attr import attribute_errors
from .figures import reconstruction_figure
from .nets import (
    TorchDomain,
    conv_decoder,
    conv_encoder,
    freeze,
    gaussian_kl,
    images_to_tensor,
    load_weights,
    save_weights,
    tensor_to_images,
)
from .optimise import FitSettings, TrainLog, batch_indices, optimise
from .probe import BLUR_STEPS, Probe, train_probe, train_probe_under_blur
from .registry import register_domain

ENCODE_BATCH = 1024


class ConvVAE(nn.Module):
    """Images (B, 3, S, S) in [0, 1] <-> latents (B, latent_dim); S divisible by 16."""

    def __init__(self, image_size: int, latent_dim: int, channels: list[int]) -> None:
        super().__init__()
        if image_size % 16:
            raise UserError(f"the visual VAE needs an image size divisible by 16, got {image_size}")
        self.side = image_size // 16
        self.channels = list(channels)
        flat = channels[-1] * self.side * self.side
        self.encoder = conv_encoder([3, *channels])
        self.to_stats = nn.Linear(flat, 2 * latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU())
        self.decoder = conv_decoder([*reversed(channels), 3])

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) -> mean, logvar (B, latent_dim) each."""
        stats = self.to_stats(self.encoder(images).flatten(1))
        mean, logvar = stats.chunk(2, dim=1)
        return mean, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, 3, S, S) in [0, 1]."""
        h = self.from_latent(z).view(-1, self.channels[-1], self.side, self.side)
        return torch.sigmoid(self.decoder(h))


@register_domain
class VisualDomain(TorchDomain):
    """Images <-> the mean latent of a convolutional VAE."""

    kind = "v"
    fine_tunes = True

    def __init__(
        self,
        name: str | None = None,
        image_size: int = 32,
        latent_dim: int = 12,
        beta: float = 0.01,
        foreground_weight: float = 4.0,
        chroma_weight: float = 1.0,
        channels: list[int] | None = None,
        lr: float = 3e-3,
    ) -> None:
        super().__init__(name)
        self.image_size = int(image_size)
        self.latent_dim = int(latent_dim)
        self.beta = float(beta)
        self.foreground_weight = float(foreground_weight)
        self.chroma_weight = float(chroma_weight)
        self.channels = list(channels or [32, 64, 128, 256])
        self.lr = float(lr)
        self.device = torch.device("cpu")
        self.vae = freeze(ConvVAE(self.image_size, self.latent_dim, self.channels))

    def config(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "latent_dim": self.latent_dim,
            "beta": self.beta,
            "foreground_weight": self.foreground_weight,
            "chroma_weight": self.chroma_weight,
            "channels": self.channels,
            "lr": self.lr,
        }

    def to(self, device: torch.device | str) -> VisualDomain:
        self.device = torch.device(device)
        self.vae.to(self.device)
        return self

    def raw(self, split: Split) -> np.ndarray:
        return split.images

    @torch.no_grad()
    def encode(self, raw: Any) -> torch.Tensor:
        """uint8 images (N, H, W, 3) -> mean latents float32 (N, latent_dim) on the CPU."""
        images = np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw
        if images.ndim != 4 or tuple(images.shape[1:]) != (self.image_size, self.image_size, 3):
            raise UserError(
                f"domain {self.name!r} expects images (N, {self.image_size}, {self.image_size}, 3), "
                f"got {tuple(images.shape)}"
            )
        if images.dtype not in (np.uint8, torch.uint8):  # floats in [0, 1] read as near-black silently
            raise UserError(
                f"domain {self.name!r} expects uint8 images with values 0–255, got {images.dtype}; "
                "convert them, e.g. (images * 255).round().astype(np.uint8) for floats in [0, 1]"
            )
        out = [
            self.vae.encode(images_to_tensor(images[i : i + ENCODE_BATCH], self.device))[0].float().cpu()
            for i in range(0, len(images), ENCODE_BATCH)
        ]
        return torch.cat(out) if out else torch.zeros(0, self.latent_dim)

    @torch.no_grad()
    def decode_float(self, latent: torch.Tensor) -> torch.Tensor:
        """(N, latent_dim) -> float images (N, 3, H, W) in [0, 1] on this domain's device."""
        z = torch.as_tensor(latent, dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise UserError(
                f"domain {self.name!r} expects latents (N, {self.latent_dim}), got {tuple(z.shape)}"
            )
        parts = [
            self.vae.decode(z[i : i + ENCODE_BATCH].to(self.device)) for i in range(0, len(z), ENCODE_BATCH)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, 3, self.image_size, self.image_size)

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        """(N, latent_dim) -> uint8 images (N, H, W, 3), the dataset's image format."""
        return tensor_to_images(self.decode_float(latent))

    def save(self, folder: Path) -> None:
        save_weights(self.vae, folder)

    def load(self, folder: Path) -> None:
        load_weights(self.vae, folder, f"domain {self.name!r}")
        freeze(self.vae)

    def vae_loss(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-batch mean of the weighted squared error and β·KL (see the module docstring)."""
        mean, logvar = self.vae.encode(images)
        noise = (
            torch.randn(mean.shape, generator=generator).to(mean.device)
            if generator
            else torch.randn_like(mean)
        )
        recon = self.vae.decode(mean + noise * (0.5 * logvar).exp())
        weight = 1.0 + (self.foreground_weight - 1.0) * (images.amax(dim=1, keepdim=True) > 0.02).float()
        diff = recon - images
        if self.chroma_weight != 1.0:  # opponent colours: luminance, red-green, yellow-blue
            r, g, b = diff.unbind(dim=1)
            lum = (r + g + b) / 3.0
            chroma = torch.stack([r - g, (r + g) / 2.0 - b], dim=1)
            sse = (weight * (3.0 * lum.pow(2)[:, None] + self.chroma_weight * chroma.pow(2))).sum(
                dim=(1, 2, 3)
            )
        else:
            sse = (weight * diff.pow(2)).sum(dim=(1, 2, 3))
        return {"recon": sse.mean(), "kl": self.beta * gaussian_kl(mean, logvar).mean()}

    def fit(self, dataset: Dataset, settings: Any) -> dict[str, float]:
        """Train the VAE on the train images, then the image probe; score reconstructions with it.

        A new probe trains in two stages, crisp then under blur (probe.py). With `settings.init` the
        VAE trains on from the weights already loaded (or keeps them, with 0 steps), and the probe
        of that folder is kept, since it reads real images, whatever the VAE: it trains on under
        blur only when `--steps` names `blur`, and is replaced only when it names `probe`."""
        assert isinstance(settings, FitSettings)
        if settings.init is None:
            self.image_size = dataset.info.image_size
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(derive_seed(settings.seed, "v", "init"))
                self.vae = ConvVAE(self.image_size, self.latent_dim, self.channels)
        elif self.image_size != dataset.info.image_size:
            raise UserError(
                f"{settings.init} holds a VAE of {self.image_size}x{self.image_size} images, not the "
                f"dataset's {dataset.info.image_size}x{dataset.info.image_size}; leave --init out to train "
                "one from scratch"
            )
        self.to(settings.device)
        log = TrainLog(settings.folder / "logs")
        try:
            if settings.init is not None and settings.steps.get("v") == 0:
                settings.trained["v"] = 0
                metrics: dict[str, float] = {}
            else:
                metrics = self.train_vae(dataset, settings, log)
            freeze(self.vae)
            kept = None if settings.init is None else settings.init / "probe"
            probe_metrics: dict[str, float] = {}
            if kept is not None and kept.is_dir() and "probe" not in settings.steps:
                probe = Probe.load(kept, self.device)
                blur_steps = settings.steps.get("blur", 0)
            else:
                probe, probe_metrics = train_probe(dataset, settings, log)
                blur_steps = settings.steps.get("blur", BLUR_STEPS)
            if blur_steps:
                probe_metrics.update(train_probe_under_blur(probe, dataset, settings, log))
        finally:
            log.close()
        probe.save(settings.folder / "probe")
        metrics.update(probe_metrics)
        metrics.update(self.evaluate(dataset, probe, settings.folder))
        return metrics

    def quality(self, dataset: Dataset, folder: Path) -> dict[str, float]:
        """The probe in `folder/probe` read on test images and on their reconstructions."""
        return self.evaluate(dataset, Probe.load(folder / "probe", self.device), folder)

    def train_vae(self, dataset: Dataset, settings: FitSettings, log: TrainLog) -> dict[str, float]:
        """Optimise the VAE on the train images (settings.steps["v"] steps, default 3000)."""
        train = settings.train("v", default_steps=3000, lr=self.lr)
        device = torch.device(settings.device)
        images = torch.from_numpy(np.array(dataset.split("train").images)).to(device)
        gen = torch_generator(settings.seed, "v", "batches")
        noise_gen = torch_generator(settings.seed, "v", "noise")
        for p in self.vae.parameters():
            p.requires_grad_(True)

        def step_loss(step: int) -> dict[str, torch.Tensor]:
            idx = batch_indices(len(images), train.batch_size, gen).to(device)
            return self.vae_loss(images_to_tensor(images[idx], device), noise_gen)

        return optimise(self.vae, step_loss, train, log, "v", generators=(gen, noise_gen))

    def evaluate(self, dataset: Dataset, probe: Probe, folder: Path, split: str = "test") -> dict[str, float]:
        """Probe scores on real and on reconstructed images of `split`, and the quality bar.

        Bar of a paper-quality VAE: on reconstructions the probe reads shape at ≥ 95% of its own
        accuracy on the real images, position within 0.5 px of its own error, and colour with at
        most 1.5× its own error (hue survives). The probe's own bar: shape ≥ 99%, position ≤ 0.6 px.
        """
        data = dataset.split(split)
        columns = dataset.info.label_columns
        real = attribute_errors(probe.predict_uint8(data.images), data.labels, columns)
        latents = self.encode(data.images)
        decoded = self.decode_float(latents)
        recon = attribute_errors(probe.predict(decoded), data.labels, columns)
        originals = images_to_tensor(data.images[:ENCODE_BATCH], self.device)
        mse = float((decoded[:ENCODE_BATCH] - originals).pow(2).mean())
        reconstruction_figure(
            data.images[:12], tensor_to_images(decoded[:12]), folder / "reconstructions.png"
        )
        out = {f"probe/{split}/{k}": v for k, v in real.items()}
        out.update({f"reconstruction/{split}/{k}": v for k, v in recon.items()})
        out[f"reconstruction/{split}/pixel_mse"] = mse
        if "shape_accuracy" in real:
            ratio = recon["shape_accuracy"] / max(real["shape_accuracy"], 1e-9)
            out["quality/shape_accuracy_ratio"] = ratio
        gap = recon["position_error_px"] - real["position_error_px"]
        out["quality/position_gap_px"] = gap
        out["quality/color_gap"] = recon["color_error"] - real["color_error"]
        out["quality/color_error_ratio"] = recon["color_error"] / max(real["color_error"], 1e-9)
        out["quality/meets_bar"] = bool(
            out.get("quality/shape_accuracy_ratio", 1.0) >= 0.95
            and gap <= 0.5
            and out["quality/color_error_ratio"] <= 1.5
        )
        out["quality/probe_meets_bar"] = bool(
            real.get("shape_accuracy", 1.0) >= 0.99 and real["position_error_px"] <= 0.6
        )
        return out
