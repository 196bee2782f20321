"""`gw train DATA` and `gw evaluate RUN`: train a global workspace ensemble, score a run."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from ..errors import require_at_least, require_positive
from ..workspace.settings import TrainConfig, WorkspaceConfig, parse_domain_sizes

DOMAIN_WIDTH_HELP = (
    "Hidden widths of some domains' encoders and decoders, e.g. v=512,attr=64 (the others: --width)."
)
DOMAIN_DEPTH_HELP = "Linear layers of some domains' encoders and decoders, e.g. t=4 (the others: --depth)."


def train(
    data: Path = typer.Argument(..., help="Dataset folder with pretrained domains (`gw pretrain`)."),
    domains: str = typer.Option("v,attr", help="Comma-separated domains the workspace connects."),
    preset: str = typer.Option(
        None,
        help="Loss preset: tr, tr+cont, tr+cy, tr+dcy, cont or full (default full without --coef); "
        "full-bt is full with back-translation in place of the cycle; "
        "direct-tr, direct-tr+cy train direct translators with no shared workspace (the ablation); "
        "fusion trains with the broadcast loss (several domains enter at once), fusion-gated the "
        "same with learned per-dimension fusion gates.",
    ),
    coef: str = typer.Option(
        None,
        help="Loss weights, e.g. tr=1,cont=0.1,dcy=1,cy=1 (the loss is the SUM of the weighted "
        "terms; the reference averages them). Alone: a workspace with exactly these weights; with "
        "--preset: that preset's model and weights, the listed ones replaced (--preset fusion "
        "--coef cy=0,bt=0.1).",
    ),
    paired: int = typer.Option(..., help="Number of paired training examples (0 for presets without pairs)."),
    steps: int = typer.Option(1000, help="Optimisation steps (the one-cycle schedule spans them)."),
    seed: int = typer.Option(
        0, help="Seed of the first member: initialisation, batches and choice of pairs."
    ),
    ensemble_seeds: int = typer.Option(1, help="Members trained together, with seeds seed, seed+1, ..."),
    out: Path = typer.Option(..., help="Run folder to create."),
    device: str = typer.Option("auto", help="auto (the GPU when present), cpu or cuda."),
    batch_size: int = typer.Option(
        TrainConfig.batch_size, help="Rows per group and step (paired, and each unpaired)."
    ),
    lr: float = typer.Option(TrainConfig.lr, help="Peak learning rate of the one-cycle schedule."),
    eval_every: int = typer.Option(500, help="Validate and checkpoint every N steps (0: at the end only)."),
    log_every: int = typer.Option(50, help="Write training losses every N steps."),
    workspace_dim: int = typer.Option(WorkspaceConfig.workspace_dim, help="Size of the workspace state."),
    width: int = typer.Option(WorkspaceConfig.width, help="Hidden width of encoders and decoders."),
    depth: int = typer.Option(WorkspaceConfig.depth, help="Linear layers per encoder and per decoder."),
    domain_width: str = typer.Option("", help=DOMAIN_WIDTH_HELP),
    domain_depth: str = typer.Option("", help=DOMAIN_DEPTH_HELP),
    learn_logit_scale: bool = typer.Option(
        False, "--learn-logit-scale", help="Train the contrastive temperature."
    ),
    no_cuda_graph: bool = typer.Option(False, "--no-cuda-graph", help="Run eagerly on CUDA (debugging)."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT from its checkpoint (same settings)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a global workspace (an ensemble of --ensemble-seeds members) on precomputed latents."""
    from ..workspace.families import edited_preset
    from ..workspace.presets import MemberSpec, Preset, parse_coefficients
    from ..workspace.presets import preset as lookup
    from ..workspace.run import make_config, train_workspace

    require_at_least(
        (
            ("--steps", steps, 1),
            ("--ensemble-seeds", ensemble_seeds, 1),
            ("--batch-size", batch_size, 1),
            ("--workspace-dim", workspace_dim, 1),
            ("--width", width, 1),
            ("--depth", depth, 1),
            ("--log-every", log_every, 1),
            ("--eval-every", eval_every, 0),
        )
    )
    require_positive([("--lr", lr)])
    names = [d.strip() for d in domains.split(",")]
    widths = parse_domain_sizes("--domain-width", domain_width, names)
    depths = parse_domain_sizes("--domain-depth", domain_depth, names)
    if preset is None and coef is not None:
        chosen = Preset("custom", parse_coefficients(coef))
    else:
        base = lookup(preset or "full")  # the preset names the model (its family); --coef edits its weights
        chosen = base if coef is None else edited_preset(base, coef)
    members = [MemberSpec.from_preset(chosen, seed + i, paired) for i in range(ensemble_seeds)]
    settings = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        eval_every=eval_every,
        log_every=log_every,
        cuda_graph=not no_cuda_graph,
    )
    config = make_config(
        data,
        domains.split(","),
        members,
        settings,
        workspace_dim=workspace_dim,
        width=width,
        depth=depth,
        learn_logit_scale=learn_logit_scale,
        domain_width=widths,
        domain_depth=depths,
    )
    command = shlex.join(["gw", *sys.argv[1:]])
    summary = train_workspace(
        config, out, device, force=force, resume=resume, command=command, progress=not quiet
    )
    typer.echo(f"trained {out}: {json.dumps(summary)}")


def evaluate(
    run: Path = typer.Argument(..., help="Run folder made by `gw train`."),
    split: str = typer.Option(
        "test", help="Split to score (metrics.json for test, metrics_{split}.json else)."
    ),
    device: str = typer.Option("auto", help="auto (the GPU when present), cpu or cuda."),
    force: bool = typer.Option(False, "--force", help="Replace the metrics file if it exists."),
    data: Path = typer.Option(None, "--data", help="The dataset folder, if it moved since training."),
) -> None:
    """Score every member of a trained run: translation, cycles, retrieval, attributes."""
    from ..workspace.run import evaluate_run

    scored = evaluate_run(run, split, device, force=force, data=data)
    if not scored.finished:
        typer.echo(
            f"gw evaluate: the run stopped at step {scored.step} of {scored.steps}; these metrics score "
            "that checkpoint (rerun its `gw train` command with --resume to finish it)",
            err=True,
        )
    typer.echo(f"wrote {scored.file} (step {scored.step})")
