"""`gw experiment ...`: experiments made of many workspaces (other modules add their own here)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..workspace.settings import TrainConfig, WorkspaceConfig
from .train import DOMAIN_DEPTH_HELP, DOMAIN_WIDTH_HELP

app = typer.Typer(no_args_is_help=True, help="Experiments made of many global workspaces.")


@app.command("semi-supervised")
def semi_supervised(
    data: Path = typer.Argument(..., help="Dataset folder with pretrained domains (`gw pretrain`)."),
    domains: str = typer.Option("v,attr", help="Comma-separated domains of the workspace."),
    paired: str = typer.Option(
        "250,1000,4000,16000,64000,ALL", help="Pair counts N, comma-separated; ALL = the whole train split."
    ),
    presets: str = typer.Option(
        "all",
        help="`all` (tr, tr+cont, tr+cy, tr+dcy, cont, full) or a list, which may hold `all`: "
        "`all,direct-tr,direct-tr+cy` adds the no-workspace ablation, `all,fusion` the workspace "
        "trained with the broadcast loss (fusion-gated: with learned fusion gates).",
    ),
    define: list[str] = typer.Option(
        [],
        "--define",
        help="Another preset, NAME=BASE:COEFFICIENTS (e.g. full-ref=full:dcy=1,cy=1, which the "
        "reference weighs); repeat for more, then name them in --presets.",
    ),
    seeds: int = typer.Option(3, help="Seeds per (preset, N)."),
    seed: int = typer.Option(0, help="First seed; members use seed, seed+1, ..."),
    steps: int = typer.Option(5000, help="Training steps of every member."),
    batch_size: int = typer.Option(
        TrainConfig.batch_size, help="Rows per group (paired batch, each unpaired batch)."
    ),
    lr: float = typer.Option(TrainConfig.lr, help="Peak learning rate (one-cycle)."),
    eval_every: int = typer.Option(500, help="Validation check every this many steps (best weights kept)."),
    workspace_dim: int = typer.Option(WorkspaceConfig.workspace_dim, help="Size of the workspace state."),
    width: int = typer.Option(
        WorkspaceConfig.width,
        help="Hidden width of every encoder and decoder (the paper's code used 32-128; attr → v shape "
        "needs ~256).",
    ),
    depth: int = typer.Option(WorkspaceConfig.depth, help="Linear layers per encoder and per decoder."),
    domain_width: str = typer.Option("", help=DOMAIN_WIDTH_HELP),
    domain_depth: str = typer.Option("", help=DOMAIN_DEPTH_HELP),
    select_on: str = typer.Option(
        "all",
        help="Weights each member keeps: `all` (its lowest validation translation loss summed over "
        "every direction), directions such as attr_to_v,v_to_attr (summed over those), or `last`.",
    ),
    grid: str = typer.Option(
        "",
        help="Tune loss coefficients: NAME=V1,V2;NAME=... (e.g. dcy=0.1,1;cy=0.1,1;cont=0.1,1). Each "
        "preset trains every combination of the coefficients it uses; per (preset, N) the point with "
        "the lowest validation loss is kept (selection.json).",
    ),
    grid_lr: str = typer.Option("", help="Peak learning rates to try for every preset, e.g. 1e-3,3e-3."),
    grid_wd: str = typer.Option("", help="Weight decays to try for every preset, e.g. 0,1e-4."),
    grid_width: str = typer.Option(
        "",
        help="Hidden widths to try for every preset, e.g. 32,256 (one ensemble per width; replaces --width).",
    ),
    grid_depth: str = typer.Option(
        "", help="Layers per encoder and decoder to try, e.g. 3,5 (replaces --depth)."
    ),
    grid_domain_width: str = typer.Option(
        "",
        help="Domains' own widths to try, points separated by /, e.g. v=256/v=512/v=512,attr=64 "
        "(each point its own ensembles, on top of --width and --domain-width).",
    ),
    grid_domain_depth: str = typer.Option(
        "", help="Domains' own depths to try, as --grid-domain-width, e.g. t=2/t=4."
    ),
    points_from: str = typer.Option(
        "",
        help="Earlier experiment folders, comma-separated (e.g. a shorter tuning run): each preset and "
        "pair count trains only the grid point their members chose on validation, at this run's budget.",
    ),
    paper_levels: str = typer.Option(
        "",
        help="Loss levels at which the paper's reading of the ratio is read, e.g. 0.6,0.8 "
        "(default: 3 inside both curves).",
    ),
    patience: int = typer.Option(
        0,
        help="Stop an ensemble once none of its members' validation translation loss has improved "
        "for this many steps (0: train to --steps); each member keeps its best weights as ever.",
    ),
    max_members: int = typer.Option(64, help="Members per ensemble at most."),
    mix_presets: bool = typer.Option(
        None,
        "--mix-presets/--one-preset-per-ensemble",
        help="Default: mix on a GPU, one preset per ensemble on CPU.",
    ),
    labelled: int = typer.Option(
        500, help="Labelled train examples of the linear probe and zero-shot means."
    ),
    out: Path = typer.Option(..., "--out", help="Experiment folder EXP."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    threads: int = typer.Option(
        1, help="CPU threads per process (0: torch's default); tiny networks run fastest on 1."
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite an existing EXP instead of refusing or resuming."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Train every preset × pair count × seed as vectorised ensembles; write results, figures, report.

    Rerunning the same command on an interrupted EXP resumes it. Under `torchrun --nproc-per-node N`
    the ensembles are shared out over the processes and rank 0 writes the results.
    """
    from ..experiments.runner import SemiSupervisedOptions, run_semi_supervised

    run_semi_supervised(
        SemiSupervisedOptions(
            data=data,
            domains=domains,
            paired=paired,
            presets=presets,
            seeds=seeds,
            seed=seed,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            eval_every=eval_every,
            workspace_dim=workspace_dim,
            width=width,
            depth=depth,
            domain_width=domain_width,
            domain_depth=domain_depth,
            select_on=select_on,
            patience=patience,
            max_members=max_members,
            mix_presets=mix_presets,
            labelled=labelled,
            out=out,
            device=device,
            force=force,
            progress=not quiet,
            threads=threads,
            define=tuple(define),
            grid=grid,
            grid_lr=grid_lr,
            grid_wd=grid_wd,
            grid_width=grid_width,
            grid_depth=grid_depth,
            grid_domain_width=grid_domain_width,
            grid_domain_depth=grid_domain_depth,
            paper_levels=paper_levels,
            points_from=points_from,
        )
    )


@app.command("reread")
def reread(
    exp: Path = typer.Argument(
        ..., help="A finished experiment folder (`gw experiment semi-supervised --out`)."
    ),
    data: Path = typer.Option(
        None, "--data", help="Its dataset folder, if it moved since the experiment (same latents)."
    ),
    rescore: bool = typer.Option(
        False,
        "--rescore",
        help="First score every trained member on test again, through the dataset's specialists as "
        "they are now (e.g. after a new image probe, `gw pretrain --steps blur=N`).",
    ),
) -> None:
    """Recompute a finished experiment's results.csv, selection, efficiency, figures and report from
    its trained members, training nothing.

    After an upgrade that changes how results are read, this brings EXP up to date as a fresh run of
    the same command would write it; with --rescore, also after its specialists' readers changed.
    """
    from ..experiments.semi_supervised.reread import reread_experiment
    from ..experiments.semi_supervised.summary import headline

    outcome = reread_experiment(exp, data, say=typer.echo, rescore=rescore)
    typer.echo(headline(outcome))


@app.command("combine")
def combine(
    experiments: list[str] = typer.Argument(
        ...,
        help="Experiment folders (`gw experiment semi-supervised --out`) of the same dataset, domains, "
        "preset weights and budget; one still training offers the members it has finished; EXP:tr,full "
        "offers only those presets' members.",
    ),
    out: Path = typer.Option(..., "--out", help="Folder for the combined results and report."),
    data: Path = typer.Option(
        None, "--data", help="Their dataset folder, if it moved since they trained (same latents)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing combined folder OUT."),
) -> None:
    """Read several experiments as one grid: per preset and pair count, choose on validation over
    all their members, and write results.csv, selection.json, efficiency.json and report.html.

    For a grid trained in parts (on other machines, or widened later by another run): the choice
    and the ratios are those one experiment training every member would give.
    """
    import sys

    from ..experiments.semi_supervised.combined import combine_experiments
    from ..experiments.semi_supervised.summary import headline

    outcome = combine_experiments(experiments, out, data, force, sys.argv, say=typer.echo)
    typer.echo(headline(outcome))
