"""How well can any one workspace-sized code of two domains reconstruct both?

Trains, on a dataset's train latents, autoencoders with a tanh code of the workspace's size and
the workspace's decoders (width 32, 5 layers): one per domain, and one joint code of both domains
whose loss weighs the first domain by each of --weights. A joint code that matched both
single-domain codes on their own domain would show room for a fused state to beat each input
alone on it; docs/results.md reads the result.

    PYTHONPATH=src python3 analysis/fusion_bound.py DATA --domains v,t
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import script_cli
import torch

from global_workspace.workspace.data import load_latent_data
from global_workspace.workspace.ensemble import EnsembleMLP

Latents = Mapping[str, torch.Tensor]


def fit_code(
    train: Latents,
    test: Latents,
    inputs: Sequence[str],
    weights: Mapping[str, float],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Test MSE of each weighted target after training inputs -> tanh code -> targets."""
    width_in = sum(int(train[d].shape[1]) for d in inputs)
    encoder = EnsembleMLP(1, width_in, args.encoder_width, args.workspace_dim, 5)
    decoders = {d: EnsembleMLP(1, args.workspace_dim, 32, int(train[d].shape[1]), 5) for d in weights}
    encoder.reset_parameters([args.seed], "bound/encoder")
    for d, decoder in decoders.items():
        decoder.reset_parameters([args.seed], f"bound/decoder/{d}")
    params = [*encoder.parameters(), *(p for m in decoders.values() for p in m.parameters())]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    rows = int(train[inputs[0]].shape[0])

    def code(latents: Latents, index: torch.Tensor | slice) -> torch.Tensor:
        return torch.tanh(encoder(torch.cat([latents[d][index] for d in inputs], dim=-1).unsqueeze(0)))

    for _ in range(args.steps):
        index = torch.randint(0, rows, (256,), generator=generator)
        state = code(train, index)
        loss = sum(w * (decoders[d](state)[0] - train[d][index]).pow(2).mean() for d, w in weights.items())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        state = code(test, slice(None))
        return {d: round(float((decoders[d](state)[0] - test[d]).pow(2).mean()), 3) for d in weights}


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("data", help="a dataset folder with pretrained latents")
    parser.add_argument("--domains", default="v,t", help="a,b: the two domains")
    parser.add_argument("--weights", default="0.25,0.5,0.75", help="weights of a in the joint code's loss")
    parser.add_argument("--workspace-dim", type=int, default=12)
    parser.add_argument("--encoder-width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    first, second = script_cli.domain_pair(parser, "--domains", args.domains)
    latents = load_latent_data(args.data, [first, second], torch.device("cpu"), splits=("train", "test"))
    train, test = latents.split("train"), latents.split("test")
    print(f"{first} alone: {fit_code(train, test, [first], {first: 1.0}, args)}")
    print(f"{second} alone: {fit_code(train, test, [second], {second: 1.0}, args)}")
    for w in (float(x) for x in args.weights.split(",")):
        joint = fit_code(train, test, [first, second], {first: w, second: 1 - w}, args)
        print(f"{first}+{second}, weight {w} on {first}: {joint}")


if __name__ == "__main__":
    script_cli.run(main)
