"""What any translation into `v` can draw from a caption: the ceiling of `t → v`.

A caption states the class and a named colour, but the position only as a cell of a 3×3 or 7×7
grid, the size as one of four bins and the rotation as one of 8 or 16 sectors (data/captions.py).
A translation trained on squared error predicts the mean image latent of every scene its input
allows, so what it draws from a caption is bounded by the caption, not by the network.

This script trains the workspace's own translation path (encoder into the tanh state, decoder out,
at the default width and depth) into `v` from three inputs on the first N train pairs, keeps the
step best on validation, and reads its test predictions with the image probe:

- `attributes`: the true attribute vector (what `attr → v` sees);
- `caption`: the attributes the true caption states, parsed back from it (a perfect reader of text);
- `t`: the text domain's latent (what `t → v` sees).

It prints one markdown row per input: the probe's shape accuracy and colour error on the
translations, each also as a ratio to the same probe on the VAE's own reconstructions.

    PYTHONPATH=src python3 analysis/caption_ceiling.py DATA [--pairs N] [--steps S]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import script_cli
import torch

from global_workspace.data.captions import parse_caption
from global_workspace.domains.attr import AttrDomain
from global_workspace.domains.readout import Readout
from global_workspace.errors import UserError
from global_workspace.fileio import read_npy
from global_workspace.workspace.model import GlobalWorkspace
from global_workspace.workspace.settings import TrainConfig, WorkspaceConfig
from global_workspace.workspace.trainer import FlatAdamW, one_cycle_lr


def load(data: Path, relative: str) -> np.ndarray:
    """DATA/relative as float32; a missing or damaged file is one line naming it and the fix."""
    file = data / relative
    fix = f"rerun `gw pretrain {data} --domains v,attr,t`"
    return np.asarray(read_npy(file, f"{file} is missing; {fix}", f"{file} is damaged", fix), np.float32)


def caption_labels(data: Path, split: str, rows: int) -> np.ndarray:
    """Label rows (class, x, y, size, rotation, r, g, b) as the split's first `rows` captions state them."""
    lines = (data / split / "captions.txt").read_text(encoding="utf-8").splitlines()[:rows]
    if len(lines) < rows:
        raise UserError(f"{data / split / 'captions.txt'} holds {len(lines)} captions, {rows} needed")
    return np.stack([parse_caption(line).approximate_labels() for line in lines])


def inputs(data: Path, readout: Readout, rows: dict[str, int]) -> dict[str, dict[str, torch.Tensor]]:
    """Each input kind's latents per split, the first `rows[split]` rows."""
    attr = readout.domain("attr")
    if not isinstance(attr, AttrDomain):
        raise UserError(f"{data}/domains/attr is not an attribute domain; run `gw pretrain {data}`")
    out: dict[str, dict[str, torch.Tensor]] = {"attributes": {}, "caption": {}, "t": {}}
    for split, n in rows.items():
        labels = load(data, f"{split}/labels.npy")[:n]
        out["attributes"][split] = attr.encode(labels)
        out["caption"][split] = attr.encode(caption_labels(data, split, n))
        out["t"][split] = torch.from_numpy(load(data, f"domains/t/latents/{split}.npy")[:n])
    return out


def fit_translation(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], steps: int, seed: int, eval_every: int
) -> torch.Tensor:
    """Train source → workspace → v on squared error as a workspace trains (AdamW, one-cycle schedule);
    the test prediction of the step best on validation."""
    config = WorkspaceConfig(domains={"source": source["train"].shape[1], "v": target["train"].shape[1]})
    model = GlobalWorkspace(config, [seed])
    settings = TrainConfig(steps=steps)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimiser = FlatAdamW(named, settings)  # the workspace's own optimiser and schedule
    draw = torch.Generator().manual_seed(seed)

    def translate(x: torch.Tensor) -> torch.Tensor:
        return model.decode("v", torch.tanh(model.encode("source", x)))[0]

    best, best_test = float("inf"), target["test"]
    for step in range(1, steps + 1):
        rows = torch.randint(0, len(source["train"]), (256,), generator=draw)
        loss = (translate(source["train"][rows]) - target["train"][rows]).pow(2).mean()
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)  # v in, out to source
        grads = tuple(torch.zeros_like(p) if g is None else g for g, (_, p) in zip(grads, named, strict=True))
        taken = torch.tensor(step - 1)
        optimiser.update(grads, one_cycle_lr(taken, settings), taken)
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                val = float((translate(source["val"]) - target["val"]).pow(2).mean())
                if val < best:
                    best, best_test = val, translate(source["test"])
    return best_test


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("data", type=Path, help="a dataset folder with the v, attr and t domains pretrained")
    parser.add_argument("--pairs", type=int, default=0, help="train pairs to use (0: all)")
    parser.add_argument("--steps", type=int, default=6000, help="training steps at batch 256")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validation checks")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data: Path = args.data
    readout = Readout(data)
    counts = readout.info.splits
    rows = {"train": args.pairs or counts["train"], "val": counts["val"], "test": counts["test"]}
    torch.manual_seed(args.seed)
    targets = {
        split: torch.from_numpy(load(data, f"domains/v/latents/{split}.npy")[:n]) for split, n in rows.items()
    }
    labels = load(data, "test/labels.npy")
    own = readout.errors("v", targets["test"], labels)
    print(
        f"{rows['train']} train pairs, {args.steps} steps; v's own reconstructions on test: "
        f"shape {own['shape_accuracy']:.3f}, colour error {own['color_error']:.4f}\n"
    )
    print("| input | → v shape | ratio | → v colour error | ratio |")
    print("|---|---|---|---|---|")
    for name, source in inputs(data, readout, rows).items():
        predicted = fit_translation(source, targets, args.steps, args.seed, args.eval_every)
        read = readout.errors("v", predicted, labels)
        shape, colour = read["shape_accuracy"], read["color_error"]
        print(
            f"| {name} | {shape:.3f} | {shape / own['shape_accuracy']:.2f} | {colour:.4f} | "
            f"{colour / own['color_error']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    script_cli.run(main)
