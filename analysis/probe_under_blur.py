"""Does the image probe read colour better once it has trained on under a mild random blur?

The shipped probe learned on crisp rendered images only; reconstructions are softer, and its colour
reading breaks between 0.3 and 0.4 px of blur (colour_reading.py). This script trains a probe on
from a given one on DATA's train images, with a share of each batch blurred by a Gaussian of
random width, then scores both probes with `VisualDomain.evaluate` (real images and the VAE's
reconstructions) on the test split of FRESH, a dataset generated from a seed training never saw.

    PYTHONPATH=src python3 analysis/probe_under_blur.py DATA FRESH --vae FOLDER [--steps N] [--lr LR]
        [--sigma-max PX] [--share S] [--batch-size B] [--out FOLDER]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import script_cli
import torch
import torch.nn.functional as F

from global_workspace.data.format import load_dataset
from global_workspace.domains.nets import freeze, images_to_tensor
from global_workspace.domains.optimise import TrainLog, TrainSettings, batch_indices, optimise
from global_workspace.domains.probe import Probe
from global_workspace.domains.store import domain_from_folder
from global_workspace.domains.visual import VisualDomain
from global_workspace.errors import UserError
from global_workspace.seeding import torch_generator

RADIUS = 2
SHOWN = ("shape_accuracy", "position_error_px", "rotation_error_deg", "color_error")


def blur_each(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) images, each blurred by a 5-tap separable Gaussian of its own width (px)."""
    b, c, h, w = images.shape
    offsets = torch.arange(-RADIUS, RADIUS + 1, dtype=images.dtype)
    taps = torch.exp(-offsets.square() / (2 * sigma[:, None].clamp_min(1e-3).square()))
    taps = (taps / taps.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
    flat = F.pad(images.reshape(1, b * c, h, w), (RADIUS,) * 4, mode="replicate")
    flat = F.conv2d(flat, taps[:, None, None, :], groups=b * c)
    return F.conv2d(flat, taps[:, None, :, None], groups=b * c).reshape(b, c, h, w)


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("data", type=Path, help="the dataset whose train images the probe learns on")
    parser.add_argument("fresh", type=Path, help="a dataset of another seed, scored on its test split")
    parser.add_argument("--vae", type=Path, required=True, help="a v domain folder; its probe is the start")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=3e-4, help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--sigma-max", type=float, default=0.6, help="widest blur, px")
    parser.add_argument("--share", type=float, default=0.5, help="share of each batch left crisp")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--out", type=Path, help="save the trained probe here")
    args = parser.parse_args()
    vae = domain_from_folder(args.vae, "v", "name a v domain folder written by gw pretrain")
    if not isinstance(vae, VisualDomain):
        raise UserError(f"{args.vae} holds no image VAE; name a v domain folder")
    dataset, fresh = load_dataset(args.data), load_dataset(args.fresh)
    start = Probe.load(args.vae / "probe", "cpu")
    probe = Probe.load(args.vae / "probe", "cpu")
    net = probe.net
    for p in net.parameters():
        p.requires_grad_(True)
    split = dataset.split("train")
    images = torch.from_numpy(np.array(split.images))
    targets = probe.attr.encode(split.labels)
    gen = torch_generator(0, "probe", "batches")
    blur_gen = torch.Generator().manual_seed(5)
    with tempfile.TemporaryDirectory() as scratch:
        train = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr)

        def step_loss(step: int) -> dict[str, torch.Tensor]:
            idx = batch_indices(len(images), train.batch_size, gen)
            n = len(idx)
            sigma = torch.rand(n, generator=blur_gen) * args.sigma_max
            sigma = torch.where(torch.rand(n, generator=blur_gen) < args.share, torch.zeros(n), sigma)
            batch = blur_each(images_to_tensor(images[idx], "cpu"), sigma)
            return {"loss": probe.attr.loss(net(batch), targets[idx]).mean()}

        log = TrainLog(Path(scratch) / "logs")
        optimise(net, step_loss, train, log, "probe", generators=(gen,))
        log.close()
        freeze(net)
        probes = {"start": start, "tuned": probe}
        scores = {name: vae.evaluate(fresh, p, Path(scratch)) for name, p in probes.items()}
    if args.out is not None:
        probe.save(args.out)
    print(f"{len(fresh.split('test').labels)} test images of {args.fresh}; VAE {args.vae}\n")
    print("| reading | start probe | tuned under blur |")
    print("|---|---|---|")
    for where in ("probe", "reconstruction"):
        for key in SHOWN:
            name = f"{where}/test/{key}"
            print(f"| {name} | {scores['start'][name]:.4f} | {scores['tuned'][name]:.4f} |")
    for key in ("shape_accuracy_ratio", "position_gap_px", "color_error_ratio"):
        name = f"quality/{key}"
        print(f"| {name} | {scores['start'][name]:.4f} | {scores['tuned'][name]:.4f} |")


if __name__ == "__main__":
    script_cli.run(main)
