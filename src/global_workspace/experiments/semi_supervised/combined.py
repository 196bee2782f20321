"""Several experiments read as one (`gw experiment combine`).

A grid trained in parts (on other machines, at other times, or widened later by another run) is
chosen on validation over all its members, as one experiment's grid is, and its ratios read the
same way: one command instead of a hand-made merge of results files. The sources must share the
dataset, domains, preset weights and budget, or their members would not answer the same question.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ...errors import UserError
from ...fileio import atomic_write_json, read_json, refuse_existing, refuse_overlap
from ...locking import locked_atomic_directory
from ...workspace.data import load_latent_data
from ...workspace.presets import PRESETS, MemberSpec
from ..grid import GRID_POINT, select_points
from .candidates import check_alike, check_same_sizes, gather_candidates
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
    configs = {exp: read_experiment(exp) for exp in paths}
    first = configs[paths[0]]
    folder = Path(data) if data is not None else Path(first.data)
    refuse_overlap(out, {"dataset": folder}, "combined folder")
    refuse_existing(Path(out), force, "combined folder", COMBINED_JSON)
    for exp, config in configs.items():
        _check_offered(exp, config, offered[exp])
        check_alike(exp, config, first, OPTION, offered[exp])
        check_same_sizes(exp, config, first, OPTION, "combine experiments of one architecture")
        _check_same_budget(exp, config, first)
        check_experiment_data(exp, config, folder, "--data")

    def wanted(exp: Path, spec: MemberSpec) -> bool:
        presets = offered[exp]
        return presets is None or spec.preset in presets

    gathered, points = gather_candidates(configs, wanted)
    rows, incomplete = _complete_points(gathered)
    if not rows:
        raise UserError(
            f"no member of {', '.join(map(str, paths))} has finished training; combine them once "
            "their first ensembles are written"
        )
    merged = _merged_config(list(configs.values()), rows, folder)
    chosen, selection = select_points(rows)
    baselines = mean_baselines(load_latent_data(folder, merged.domains, torch.device("cpu")))
    efficiency = all_readings(merged, chosen, baselines)
    from_source = Counter(points[r[GRID_POINT]].exp for r in rows)
    counts = [_member_counts(exp, config, offered[exp], from_source[exp]) for exp, config in configs.items()]
    record = {"command": list(command), "sources": counts, "incomplete_points_left_out": incomplete}
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
        + (f"; left out {len(incomplete)} points whose seeds have not all finished" if incomplete else "")
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
            if not presets:
                raise UserError(f"{given} names no preset after the colon; write EXP:tr,full or EXP alone")
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


def _complete_points(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the rows of points that hold as many seeds as the best-covered point of their (preset, N),
    the labels of the others): a point with fewer finished seeds would be ranked on another mean."""

    def point_of(r: dict[str, Any]) -> tuple[str, int, str]:
        return str(r["preset"]), int(r["paired"]), str(r[GRID_POINT])

    seeds: dict[tuple[str, int, str], set[int]] = {}
    for r in rows:
        seeds.setdefault(point_of(r), set()).add(int(r["seed"]))
    most: dict[tuple[str, int], int] = {}
    for (preset, n, _), found in seeds.items():
        most[(preset, n)] = max(most.get((preset, n), 0), len(found))
    short = {key for key, found in seeds.items() if len(found) < most[key[:2]]}
    kept = [r for r in rows if point_of(r) not in short]
    return kept, sorted(f"{preset} N={n}: {label}" for preset, n, label in short)


def _merged_config(
    configs: Sequence[ExperimentConfig], rows: Sequence[dict[str, Any]], data: Path
) -> ExperimentConfig:
    """The settings the readings see: the first source's, over every preset, N and seed trained.
    The presets keep the library's order whatever the order of the sources, so that the readings
    compare the same pair of presets however the command names them."""
    trained = {str(r["preset"]) for r in rows}
    seen = [p for config in configs for p in config.presets if p in trained]
    presets = [p for p in PRESETS if p in trained] + list(dict.fromkeys(p for p in seen if p not in PRESETS))
    return dataclasses.replace(
        configs[0],
        data=str(data),
        presets=presets,
        paired=sorted({int(r["paired"]) for r in rows}),
        seeds=sorted({int(r["seed"]) for r in rows}),
        grid=None,
        points={},
        points_from=[],
    )


def _member_counts(
    exp: Path, config: ExperimentConfig, offered: list[str] | None, combined: int
) -> dict[str, Any]:
    """A source as combined.json records it: its folder, command, the presets it offers, how many
    of their members are among the combined rows (`combined`) and how many it planned."""
    command = read_json(exp / "experiment.json", "experiment settings").get("command", [])
    presets = [p for p in config.presets if offered is None or p in offered]
    return {
        "experiment": str(exp),
        "command": command,
        "presets": presets,
        "finished": combined,
        "planned": sum(m.preset in presets for m in config.members()),
    }
