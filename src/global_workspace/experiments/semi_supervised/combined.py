"""Several experiments read as one (`gw experiment combine`).

A grid trained in parts (on other machines, at other times, or widened later by another run) is
chosen on validation over all its members, as one experiment's grid is, and its ratios read the
same way: one command instead of a hand-made merge of results files. The sources must share the
dataset, domains, preset weights and budget, or their members would not answer the same question.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ...errors import UserError
from ...fileio import atomic_write_json, read_json, refuse_overlap
from ...locking import locked_atomic_directory
from ...workspace.data import load_latent_data
from ...workspace.presets import MemberSpec
from ..grid import select_points
from .candidates import check_alike, finished_rows, gather_candidates
from .config import ExperimentConfig
from .readings import all_readings, mean_baselines
from .results_io import write_results_csv
from .resume import check_experiment_data, read_experiment
from .run import ExperimentOutcome

COMBINED_JSON = "combined.json"
"""The file every combined folder holds: its sources and the command (and --force's marker)."""
OPTION = "gw experiment combine"


def combine_experiments(
    sources: Sequence[str | Path],
    out: Path,
    data: Path | None = None,
    force: bool = False,
    command: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> ExperimentOutcome:
    """Write OUT/results.csv (every finished member of `sources`), selection.json (per preset and
    N, the point chosen on validation over all of them), efficiency.json, baselines.json, figures
    and report.html. A source `EXP:P1,P2` offers only the members of those presets."""
    from ..combined_report import build_combined_report

    start = time.perf_counter()
    paths, offered = _parse_sources(sources)
    for exp in paths:
        refuse_overlap(out, {"experiment": exp}, "combined folder")
    configs = [read_experiment(exp) for exp in paths]
    first = configs[0]
    folder = Path(data) if data is not None else Path(first.data)
    refuse_overlap(out, {"dataset": folder}, "combined folder")
    for exp, config in zip(paths, configs, strict=True):
        check_alike(exp, config, first, OPTION)
        _check_same_budget(exp, config, first)
        _check_offered(exp, config, offered[exp])
        check_experiment_data(exp, config, folder, "--data")

    def wanted(exp: Path, spec: MemberSpec) -> bool:
        presets = offered[exp]
        return presets is None or spec.preset in presets

    rows, _ = gather_candidates(paths, OPTION, first, wanted)
    if not rows:
        raise UserError(
            f"no member of {', '.join(map(str, paths))} has finished training; combine them once "
            "their first ensembles are written"
        )
    merged = _merged_config(configs, rows, folder)
    chosen, selection = select_points(rows)
    baselines = mean_baselines(load_latent_data(folder, merged.domains, torch.device("cpu")))
    efficiency = all_readings(merged, chosen, baselines)
    counts = [_member_counts(exp, config, wanted) for exp, config in zip(paths, configs, strict=True)]
    record = {"command": list(command), "sources": counts}
    with locked_atomic_directory(out, force, "combined folder", COMBINED_JSON) as tmp:
        atomic_write_json(tmp / COMBINED_JSON, record)
        atomic_write_json(tmp / "selection.json", selection)
        atomic_write_json(tmp / "efficiency.json", efficiency)
        atomic_write_json(tmp / "baselines.json", baselines)
        build_combined_report(tmp, merged, record, chosen, rows, selection, efficiency, baselines)
        write_results_csv(tmp / "results.csv", rows)
    seconds = time.perf_counter() - start
    say(
        f"combined {len(rows)} members of {len(paths)} experiments into {out}: chose a point for "
        f"{len(selection['selected'])} (preset, N) on validation"
    )
    return ExperimentOutcome(Path(out), chosen, efficiency, Path(out) / "report.html", 0, seconds, selection)


def _parse_sources(sources: Sequence[str | Path]) -> tuple[list[Path], dict[Path, list[str] | None]]:
    """The source folders, resolved, and the presets each offers (None: all); `EXP:tr,full` names
    them. A folder named twice is refused: its members would count twice."""
    paths: list[Path] = []
    offered: dict[Path, list[str] | None] = {}
    for given in sources:
        text = str(given)
        head, colon, tail = text.rpartition(":")
        presets = None
        if colon and head and tail and "/" not in tail and not Path(text).exists():
            text, presets = head, [p.strip() for p in tail.split(",") if p.strip()]
        path = Path(text).resolve()
        if path in offered:
            raise UserError(f"{given} names {text} a second time; name each experiment once")
        paths.append(path)
        offered[path] = presets
    if not paths:
        raise UserError("name the experiment folders to combine (`gw experiment semi-supervised --out`)")
    return paths, offered


def _check_offered(exp: Path, config: ExperimentConfig, presets: list[str] | None) -> None:
    """Refuse a preset named after `EXP:` that the experiment did not train."""
    for name in presets or []:
        if name not in config.presets:
            raise UserError(
                f"{OPTION}: {exp} trained {','.join(config.presets)}, not {name}; after the colon name "
                "presets it trained"
            )


def _check_same_budget(exp: Path, config: ExperimentConfig, first: ExperimentConfig) -> None:
    """Refuse sources trained for another budget or selected another way: the budget reading and the
    choice on validation compare members that saw the same number of examples and kept weights alike."""
    mine = (config.train.steps, config.train.batch_size, config.select_on, config.paper_levels)
    theirs = (first.train.steps, first.train.batch_size, first.select_on, first.paper_levels)
    if mine != theirs:
        raise UserError(
            f"{OPTION}: {exp} trained {config.train.steps} steps of batch {config.train.batch_size} "
            f"(weights kept on {config.select_on}, paper levels {config.paper_levels or 'default'}), "
            f"the first experiment {first.train.steps} of {first.train.batch_size} ({first.select_on}, "
            f"{first.paper_levels or 'default'}); combine only experiments of one budget and selection"
        )


def _merged_config(
    configs: Sequence[ExperimentConfig], rows: Sequence[dict[str, Any]], data: Path
) -> ExperimentConfig:
    """The settings the readings see: the first source's, over every preset, N and seed trained."""
    trained = {str(r["preset"]) for r in rows}
    presets = [p for config in configs for p in config.presets if p in trained]
    return dataclasses.replace(
        configs[0],
        data=str(data),
        presets=list(dict.fromkeys(presets)),
        paired=sorted({int(r["paired"]) for r in rows}),
        seeds=sorted({int(r["seed"]) for r in rows}),
        grid=None,
        points={},
        points_from=[],
    )


def _member_counts(
    exp: Path, config: ExperimentConfig, wanted: Callable[[Path, MemberSpec], bool]
) -> dict[str, Any]:
    """A source as combined.json records it: its folder, command, the presets it offers, and how
    many of their members had finished."""
    command = read_json(exp / "experiment.json", "experiment settings").get("command", [])
    return {
        "experiment": str(exp),
        "command": command,
        "presets": [
            p for p in config.presets if any(wanted(exp, m) for m in config.members() if m.preset == p)
        ],
        "finished": sum(wanted(exp, spec) for spec, _ in finished_rows(exp)),
        "planned": sum(wanted(exp, m) for m in config.members()),
    }
