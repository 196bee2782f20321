"""From command-line options to a finished semi-supervision experiment (shared by the CLI and the demo)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..device import resolve_device
from ..errors import UserError, require_at_least, require_positive
from ..fileio import refuse_overlap
from ..say import say
from ..workspace.data import check_domains, load_latent_data, train_fingerprint
from ..workspace.families import define_preset
from ..workspace.presets import Preset
from ..workspace.settings import TrainConfig, WorkspaceConfig, parse_domain_sizes
from . import distributed
from .downstream import DownstreamSettings
from .grid import Grid, check_grid, parse_grid, parse_values
from .semi_supervised.carried import with_points_from
from .semi_supervised.config import SELECT_LAST, ExperimentConfig
from .semi_supervised.parsing import parse_paired, parse_presets, parse_select_on
from .semi_supervised.run import ExperimentOutcome, run_experiment
from .semi_supervised.summary import headline


@dataclass(frozen=True)
class SemiSupervisedOptions:
    """The options of `gw experiment semi-supervised`, as typed on the command line."""

    data: Path
    domains: str
    paired: str
    presets: str
    seeds: int
    out: Path
    seed: int = 0
    steps: int = 5000
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    eval_every: int = 500
    workspace_dim: int = WorkspaceConfig.workspace_dim
    width: int = WorkspaceConfig.width
    """Hidden width of encoders and decoders (translating into `v` needs about 256)."""
    depth: int = WorkspaceConfig.depth
    domain_width: str = ""
    """Some domains' own encoder and decoder widths, `v=512,attr=64` (the others have `width`)."""
    domain_depth: str = ""
    """Some domains' own encoder and decoder depths, `t=4` (the others have `depth`)."""
    patience: int = 0
    """Stop an ensemble after this many steps without a better validation loss (0: never)."""
    max_members: int = 64
    mix_presets: bool | None = None
    labelled: int = 500
    device: str = "auto"
    force: bool = False
    progress: bool = True
    threads: int = 1
    """CPU threads per process (0: torch's default). The networks are tiny, so extra threads mostly
    add synchronisation: one thread per process, and torchrun for more cores, is fastest."""
    define: tuple[str, ...] = ()
    """Extra presets, each `NAME=BASE:COEFFICIENTS` (families.define_preset), usable in `presets`."""
    select_on: str = "all"
    """Which weights each member keeps (`ExperimentConfig.select_on`)."""
    grid: str = ""
    """Coefficient values to try, `dcy=0.1,1;cy=0.1,1` (grid.py); with grid_lr and grid_wd, empty
    strings train each preset with its own settings, as without a grid."""
    grid_lr: str = ""
    """Peak learning rates to try for every preset, `1e-3,3e-3`."""
    grid_wd: str = ""
    """Weight decays to try for every preset, `0,1e-4`."""
    grid_width: str = ""
    """Hidden widths to try for every preset, `32,256` (each width its own ensembles)."""
    grid_depth: str = ""
    """Layers per encoder and decoder to try for every preset, `3,5`."""
    grid_domain_width: str = ""
    """Domains' own widths to try, points separated by `/`: `v=256/v=512,attr=64` (each point its
    own ensembles, on top of `width` and `domain_width`)."""
    grid_domain_depth: str = ""
    """Domains' own depths to try, as `grid_domain_width`: `t=2/t=4`."""
    paper_levels: str = ""
    """Loss levels of the paper's reading of the ratio, `0.6,0.8`; empty: a few inside the curves."""
    points_from: str = ""
    """Earlier experiment folders, comma-separated: each (preset, N) trains only the grid point
    their members chose on validation (carried.py), instead of a grid of its own."""


_say = functools.partial(say, "experiment")


def check_numbers(options: SemiSupervisedOptions) -> None:
    """The checks that need no data, so that the demo can make them before it writes anything."""
    require_at_least(
        (
            ("--seeds", options.seeds, 1),
            ("--steps", options.steps, 1),
            ("--batch-size", options.batch_size, 1),
            ("--max-members", options.max_members, 1),
            ("--labelled", options.labelled, 1),
            ("--workspace-dim", options.workspace_dim, 1),
            ("--width", options.width, 1),
            ("--depth", options.depth, 1),
            ("--threads", options.threads, 0),
            ("--eval-every", options.eval_every, 0),
            ("--patience", options.patience, 0),
        )
    )
    require_positive([("--lr", options.lr)])
    _check_patience(options)


def _check_patience(options: SemiSupervisedOptions) -> None:
    """Patience counts steps between validation checks, which pick the weights each member keeps."""
    if not options.patience:
        return
    if options.select_on == SELECT_LAST:
        raise UserError(
            "--patience stops on the validation loss, which --select-on last ignores; drop one of them"
        )
    if options.eval_every == 0 or options.patience < options.eval_every:
        raise UserError(
            f"--patience {options.patience} is shorter than one validation check (--eval-every "
            f"{options.eval_every}); give --eval-every > 0 and --patience at least as long"
        )


def build_config(options: SemiSupervisedOptions, device: torch.device) -> ExperimentConfig:
    """Check every option before any work; UserError names the first bad one."""
    check_numbers(options)
    defined: dict[str, Preset] = {}
    for text in options.define:
        made = define_preset(text, defined)
        if made.name in defined:
            raise UserError(f"--define makes preset {made.name!r} twice; define each name once")
        defined[made.name] = made
    presets = parse_presets(options.presets, defined)
    unused = [name for name in defined if name not in {p.name for p in presets}]
    if unused:
        raise UserError(
            f"--define made preset {unused[0]!r}, which --presets does not list, so it would not train; "
            f"add it: --presets {options.presets},{unused[0]}"
        )
    coefficients = {p.name: dict(p.coefficients) for p in presets}
    names = [d.strip() for d in options.domains.split(",")]
    grid, paper_levels = _tuning(options, coefficients, names)
    domain_width = parse_domain_sizes("--domain-width", options.domain_width, names)
    domain_depth = parse_domain_sizes("--domain-depth", options.domain_depth, names)
    data = Path(options.data).resolve()
    domains = check_domains(data, options.domains.split(","))
    train_size = load_latent_data(data, domains, torch.device("cpu"), splits=("train",)).pair_count("train")
    paired = parse_paired(options.paired, train_size)
    select_on = parse_select_on(options.select_on, domains)
    mix = options.mix_presets if options.mix_presets is not None else device.type == "cuda"
    config = ExperimentConfig(
        data=str(data),
        domains=domains,
        presets=[p.name for p in presets],
        paired=paired,
        seeds=list(range(options.seed, options.seed + options.seeds)),
        train=TrainConfig(
            steps=options.steps,
            batch_size=options.batch_size,
            lr=options.lr,
            eval_every=options.eval_every,
            log_every=max(options.eval_every, 1),
        ),
        workspace_dim=options.workspace_dim,
        width=options.width,
        depth=options.depth,
        domain_width=domain_width,
        domain_depth=domain_depth,
        select_on=select_on,
        patience=options.patience,
        max_members=options.max_members,
        mix_presets=mix,
        downstream=DownstreamSettings(labelled=options.labelled),
        coefficients=coefficients,
        families={p.name: p.family for p in presets},
        data_fingerprint=train_fingerprint(data, domains),
        grid=grid,
        paper_levels=paper_levels,
    )
    return _carry_points(options, config) if options.points_from.strip() else config


def _carry_points(options: SemiSupervisedOptions, config: ExperimentConfig) -> ExperimentConfig:
    """`config` training the points earlier experiments chose, which replaces a grid of its own."""
    if config.grid is not None:
        raise UserError(
            "--points-from trains the points earlier experiments chose, and a --grid option would "
            "choose again; drop one of them"
        )
    sources = [Path(p.strip()).resolve() for p in options.points_from.split(",") if p.strip()]
    for source in sources:
        refuse_overlap(Path(options.out), {"--points-from experiment": source}, "experiment folder")
    return with_points_from(config, sources)


def _tuning(
    options: SemiSupervisedOptions, coefficients: dict[str, dict[str, float]], domains: list[str]
) -> tuple[Grid | None, list[float]]:
    """The grid (None without one) and the paper's loss levels, checked before any data is read
    (per-domain sizes against the names in --domains)."""
    grid = parse_grid(
        options.grid,
        options.grid_lr,
        options.grid_wd,
        options.lr,
        TrainConfig().weight_decay,
        options.grid_width,
        options.grid_depth,
        options.grid_domain_width,
        options.grid_domain_depth,
        domains,
    )
    if grid is not None:
        check_grid(grid, coefficients)
    levels = options.paper_levels.strip()
    return grid, parse_values("--paper-levels", levels, positive=True) if levels else []


def run_semi_supervised(options: SemiSupervisedOptions) -> ExperimentOutcome | None:
    """Run (or resume) the experiment and print its summary; None on ranks other than 0."""
    ranked = distributed.init(options.device)
    threads = torch.get_num_threads()
    try:
        device = ranked if ranked is not None else resolve_device(options.device)
        config = build_config(options, device)
        if device.type == "cpu" and options.threads > 0:
            torch.set_num_threads(options.threads)
        outcome = run_experiment(config, Path(options.out), device, options.force, options.progress, say=_say)
        if outcome is not None:
            print(headline(outcome))
            print(f"report: {outcome.report}")
        return outcome
    finally:
        torch.set_num_threads(threads)
        distributed.close()
