"""What the rows say: baselines, the summed translation loss and the efficiency ratios."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...workspace.data import LatentData
from .. import ablations
from ..efficiency import VAL_MIN_MEAN, add_combined_column, efficiency_report, paper_protocol
from .config import KEPT_STEP, SELECT_LAST, VARIANTS_OF_FULL, ExperimentConfig


def mean_baselines(data: LatentData) -> dict[str, float]:
    """Test MSE of predicting each domain's training mean latent, under the translation names, and
    their sum where there is more than one direction (beside `translation/sum/latent_mse`)."""
    train, test = data.split("train"), data.split("test")
    out = {}
    for b in data.specs:
        mean = train[b].mean(dim=0, keepdim=True)
        mse = float((test[b] - mean).pow(2).mean())
        for a in data.specs:
            if a != b:
                out[f"translation/{a}_to_{b}/latent_mse"] = mse
    if len(out) > 1:
        out["translation/sum/latent_mse"] = float(sum(out.values()))
    return out


def translation_metrics(rows: Sequence[dict[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r if k.startswith("translation/") and k.endswith("/latent_mse")})


def add_summed_translation(rows: list[dict[str, Any]]) -> None:
    """Each row gains translation/sum/latent_mse, the sum over directions (docs/design.md §11's figure)."""
    add_combined_column(rows, "translation/sum/latent_mse", translation_metrics(rows), sum)


def with_drawn_shape_errors(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Copies of the rows with `translation/{a}_to_v/shape_error`, 1 − the probe's shape accuracy on
    the images translated into `v`, and those names: a target read off the drawn pictures, which the
    latent MSE barely sees, that the ratio reads like a loss (results.csv keeps the accuracy)."""
    accuracies = sorted(
        {k for r in rows for k in r if k.startswith("translation/") and k.endswith("_to_v/shape_accuracy")}
    )
    errors = [k.removesuffix("accuracy") + "error" for k in accuracies]
    copies = [dict(r) for r in rows]
    for r in copies:
        for accuracy, error in zip(accuracies, errors, strict=True):
            if r.get(accuracy) is not None:
                r[error] = 1.0 - float(r[accuracy])
    return copies, errors


def efficiency_references(config: ExperimentConfig) -> list[str]:
    """The presets the candidate is compared with, of those run (never the candidate itself: an
    experiment of `tr` alone has no ratio to read)."""
    candidate = efficiency_candidate(config)
    return [p for p in ("tr", "tr+cont") if p in config.presets and p != candidate]


def efficiency_candidate(config: ExperimentConfig) -> str:
    """The preset whose ratios against the references are read: `full`, else the last one run."""
    return "full" if "full" in config.presets else config.presets[-1]


def variant_references(config: ExperimentConfig, candidate: str) -> dict[str, list[str]]:
    """Each of our variants of `full` that was run (other than the candidate) -> its references."""
    references: list[str] = [p for p in ("tr", "tr+cont", "full") if p in config.presets]
    return {v: references for v in VARIANTS_OF_FULL if v in config.presets and v != candidate}


def paper_readings(config: ExperimentConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's reading of the ratios (efficiency.paper_protocol) for the candidate and, like the
    project's reading, for our variants of `full`."""
    candidate = efficiency_candidate(config)
    out = paper_protocol(rows, VAL_MIN_MEAN, candidate, efficiency_references(config), config.paper_levels)
    for variant, references in variant_references(config, candidate).items():
        more = paper_protocol(rows, VAL_MIN_MEAN, variant, references, config.paper_levels)
        out["comparisons"].update(more["comparisons"])
    return out


def efficiency_readings(config: ExperimentConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The project's reading of the data-efficiency ratios (efficiency_report), with our variants
    of `full` and the ablations."""
    metrics = translation_metrics(rows)
    metrics += [m for m in ("translation/v_to_attr/position_error_px",) if any(m in r for r in rows)]
    rows, shape_errors = with_drawn_shape_errors(rows)
    metrics += shape_errors
    candidate = efficiency_candidate(config)
    efficiency = efficiency_report(rows, metrics, candidate, efficiency_references(config))
    for variant, references in variant_references(config, candidate).items():
        for metric, comps in efficiency_report(rows, metrics, variant, references)["metrics"].items():
            efficiency["metrics"][metric].update(comps)
    if ablations.has_ablations(config.presets):
        efficiency["ablations"] = ablations.ablation_efficiency(rows, metrics, config.presets)
    return efficiency


def all_readings(
    config: ExperimentConfig, chosen: list[dict[str, Any]], baselines: dict[str, float]
) -> dict[str, Any]:
    """efficiency.json: the project's reading, the paper's and the budget's, of the chosen members."""
    efficiency = efficiency_readings(config, chosen)
    efficiency["baselines_train_mean"] = baselines
    efficiency["paper_protocol"] = paper_readings(config, chosen)
    efficiency["budget"] = budget_reading(config, chosen)
    return efficiency


def budget_reading(config: ExperimentConfig, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each (preset, N) whose members kept the budget's last check: they were still improving when
    training ended, so the ratios are read at this budget, not at every preset's own best (a ratio
    can grow or shrink with the budget)."""
    steps = config.train.steps
    if config.select_on == SELECT_LAST:
        reading: dict[str, Any] = {"steps": steps, "still_improving": None}
        return {**reading, "summary": _budget_summary(reading)}
    improving = []
    for preset in config.presets:
        for n in config.paired:
            selected = [
                r
                for r in rows
                if r["preset"] == preset and r["paired"] == n and r.get(VAL_MIN_MEAN) is not None
            ]
            last = [r for r in selected if (r.get(KEPT_STEP) or 0) >= steps]
            if last:
                improving.append({"preset": preset, "paired": n, "members": len(last), "of": len(selected)})
    reading = {"steps": steps, "still_improving": improving}
    return {**reading, "summary": _budget_summary(reading)}


def _budget_summary(budget: dict[str, Any]) -> str:
    """The budget reading in words, for the terminal and the report."""
    improving = budget["still_improving"]
    if improving is None:
        return (
            f"budget: every member keeps its last step, so nothing says whether {budget['steps']} were enough"
        )
    if not improving:
        return f"budget: every member had stopped improving before the last of {budget['steps']} steps"
    by_preset: dict[str, list[str]] = {}
    for item in improving:
        by_preset.setdefault(item["preset"], []).append(f"{item['paired']} ({item['members']}/{item['of']})")
    where = "; ".join(f"{p} at N = {', '.join(ns)}" for p, ns in by_preset.items())
    return (
        f"budget: still improving at the last of {budget['steps']} steps: {where}. The ratios are read "
        "at this budget; raise --steps (with --patience the members that stop improving stop early)"
    )
