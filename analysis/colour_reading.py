"""Whose error is the colour error of a reconstruction: the VAE's, or the probe's reading of it?

The shipped VAE's bar reads colour with the image probe: on reconstructions its colour error must
be at most 1.5× its own on real images. The probe learned on crisp rendered shapes only, so a
reconstruction's slightly soft edges may move its reading even where the colour is right. This
script separates the two on a dataset's test images:

- `real`: the probe on the real images (its own error);
- `real, blurred σ px`: on the real images under a small Gaussian blur (how much softness alone costs);
- `reconstructions`: on the VAE's reconstructions (what the bar reads);
- `real shapes, reconstructed colour`: the real images with their shape recoloured to the mean
  colour the reconstruction gives its interior (the VAE's colour, read on crisp edges);
- `reconstructed shapes, true colour`: the reconstructions rescaled so that their interior has the
  true colour (the VAE's edges, read with the right colour);
- `interior pixels`: no probe, the distance between the reconstruction's mean interior colour and the
  true colour (the interior: pixels of the real image within 0.02 of the true colour).

Each as the mean Euclidean RGB distance in [0, 1] units (as `color_error`), its ratio to `real`, and
the median over images. A last line gives the latent's precision: each dimension's posterior standard
deviation as a fraction of the spread of the mean latents (small: the latent is not what blurs colour).

    PYTHONPATH=src python3 analysis/colour_reading.py DATA [--examples N] [--vae FOLDER]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import script_cli
import torch

from global_workspace.data.format import load_dataset
from global_workspace.domains.blur import gaussian_blur
from global_workspace.domains.nets import images_to_tensor
from global_workspace.domains.probe import Probe
from global_workspace.domains.store import domain_from_folder, load_domain
from global_workspace.domains.visual import VisualDomain
from global_workspace.errors import UserError

INTERIOR = 0.02
"""A pixel of the real image this close to the true colour (max over channels) is interior."""


def per_image_colour_error(probe: Probe, images: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """The probe's colour error on each image: Euclidean RGB distance in [0, 1] units, as
    `attribute_errors`' `color_error` averages it."""
    read = probe.predict(images)
    colour = torch.from_numpy(np.stack([read.column(c) for c in "rgb"], axis=1) / 255.0).float()
    return (colour - truth).norm(dim=1).numpy()


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("data", type=Path, help="a dataset folder with the v domain pretrained")
    parser.add_argument("--examples", type=int, default=2000, help="test images to read (0: all)")
    parser.add_argument("--vae", type=Path, help="read this v domain folder instead of DATA's own")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    test = dataset.split("test")
    n = args.examples or len(test.labels)
    columns = list(dataset.info.label_columns)
    if not {"r", "g", "b"} <= set(columns):
        raise UserError(f"{args.data} has no colour labels (r, g, b); use a Simple Shapes dataset")
    folder = args.vae or args.data / "domains" / "v"
    if args.vae is None:
        vae = load_domain(args.data, "v")
    else:
        vae = domain_from_folder(folder, "v", "name a v domain folder written by gw pretrain")
    if not isinstance(vae, VisualDomain):
        raise UserError(f"{folder} holds no image VAE; name a v domain folder")
    probe = Probe.load(folder / "probe", "cpu")
    labels = np.asarray(test.labels[:n])
    real = images_to_tensor(test.images[:n], "cpu")
    truth = torch.from_numpy(labels[:, [columns.index(c) for c in "rgb"]] / 255.0).float()
    with torch.no_grad():
        mean, logvar = vae.vae.encode(real)
        recon = vae.decode_float(mean).cpu()
    precision = ((0.5 * logvar).exp().mean(dim=0) / mean.std(dim=0)).numpy()
    interior = ((real - truth[:, :, None, None]).abs().amax(dim=1, keepdim=True) < INTERIOR).float()
    recon_colour = (recon * interior).sum(dim=(2, 3)) / interior.sum(dim=(2, 3)).clamp_min(1.0)
    rescale = (recon_colour / truth.clamp_min(1e-3))[:, :, None, None]
    readings = {
        "real": real,
        **{f"real, blurred {s} px": gaussian_blur(real, s) for s in (0.3, 0.4)},
        "reconstructions": recon,
        "real shapes, reconstructed colour": (real * rescale).clamp(0, 1),
        "reconstructed shapes, true colour": (recon / rescale.clamp_min(1e-3)).clamp(0, 1),
    }
    colour = {name: per_image_colour_error(probe, x, truth) for name, x in readings.items()}
    colour["interior pixels (no probe)"] = (recon_colour - truth).norm(dim=1).numpy()
    print(f"{n} test images of {args.data}; VAE {folder}\n")
    own = float(colour["real"].mean())
    print("| images read | colour error | ratio to `real` | median |")
    print("|---|---|---|---|")
    for name, error in colour.items():
        print(f"| {name} | {error.mean():.4f} | {error.mean() / own:.2f} | {np.median(error):.4f} |")
    spread = f"{precision.min():.3f}–{precision.max():.3f}"
    print(f"\nlatent precision (posterior s.d. / spread of the means): {spread}")


if __name__ == "__main__":
    script_cli.run(main)
