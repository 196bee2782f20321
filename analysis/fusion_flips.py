"""Which workspace dimensions a fused `a+b` state can hand to `b`: one at a time, from all-`a`.

For one stored member, the state takes every dimension from `a`'s encoding, then hands a single
dimension to `b`, and prints how each target's test MSE moves. docs/results.md ("one state, two
readers") reads this: when every flip costs one target more than it gains the other, no choice of
gates keeps both domains' own information.

    PYTHONPATH=src python3 analysis/fusion_flips.py EXPERIMENT --member fusion-gated/paired=12000/seed=0
"""

from __future__ import annotations

import script_cli
import torch

from global_workspace import load_workspace
from global_workspace.workspace.data import load_latent_data
from global_workspace.workspace.evaluate import as_latent


def main() -> None:
    parser = script_cli.parser(__doc__)
    parser.add_argument("run", help="a `gw train` run or a `gw experiment` folder")
    parser.add_argument("--member", default="0", help="member id in an experiment, or index in a run")
    parser.add_argument("--pair", default="v,t", help="a,b: the state starts from a, dimensions go to b")
    args = parser.parse_args()
    first, second = script_cli.domain_pair(parser, "--pair", args.pair)
    member = int(args.member) if args.member.isdigit() else args.member
    ws = load_workspace(args.run, member=member)
    model, names = ws.model, ws.model.domain_names
    test = load_latent_data(ws.data, names, ws.device, splits=("test",)).split("test")
    torch.set_grad_enabled(False)
    enc_a, enc_b = model.encode(first, test[first]), model.encode(second, test[second])

    def errors(to_b: torch.Tensor) -> list[float]:
        state = torch.tanh(enc_a * (1 - to_b) + enc_b * to_b)
        preds = {c: as_latent(model.decode(c, state), ws.specs[c]) for c in names}
        return [float((preds[c] - test[c]).pow(2).mean()) for c in names]

    def show(values: list[float], sign: str = "") -> str:
        return " ".join(f"{c} {x:{sign}.3f}" for c, x in zip(names, values, strict=True))

    dims = model.config.workspace_dim
    base = errors(torch.zeros(dims))
    print(f"all from {first}: {show(base)}")
    print(f"all from {second}: {show(errors(torch.ones(dims)))}")
    for i in range(dims):
        flip = torch.zeros(dims)
        flip[i] = 1
        change = [x - b for x, b in zip(errors(flip), base, strict=True)]
        print(f"dimension {i:2} to {second}: {show(change, '+')}")


if __name__ == "__main__":
    script_cli.run(main)
