"""The "ablations" part of a semi-supervision experiment: the workspace presets next to the direct
translators (no shared workspace, workspace/direct.py) at every N, and efficiency ratios.

efficiency.json gains "ablations": {comparison -> efficiency_report of (candidate, reference)}:
  full_vs_direct-tr+cy    the full workspace against direct translators with the same tr + cy
                          losses: does the shared space (with demi-cycles and contrastive) pay?
  tr+cy_vs_direct-tr+cy   the same losses with and without a shared space
  tr_vs_direct-tr         supervised translation only, with and without a shared space
A ratio > 1 means the direct model needs that many times more pairs for the same loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .efficiency import efficiency_report
from .report import Report

COMPARISONS = (("full", "direct-tr+cy"), ("tr+cy", "direct-tr+cy"), ("tr", "direct-tr"))
"""(workspace preset, direct preset) pairs compared when both were run."""

DIRECT_PRESETS = ("direct-tr", "direct-tr+cy")


def has_ablations(presets: Sequence[str]) -> bool:
    return any(p in presets for p in DIRECT_PRESETS)


def ablation_efficiency(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str], presets: Sequence[str]
) -> dict[str, Any]:
    """comparison name -> efficiency_report(candidate = workspace preset, reference = direct one)."""
    out: dict[str, Any] = {}
    for candidate, reference in COMPARISONS:
        if candidate in presets and reference in presets:
            report = efficiency_report(rows, metrics, candidate=candidate, references=[reference])
            out[f"{candidate}_vs_{reference}"] = report
    return out


def ablation_rows(ablations: dict[str, Any]) -> list[list[Any]]:
    """Table rows: metric, comparison, median ratio, range over levels, levels, note."""
    rows = []
    for report in ablations.values():
        for metric, comps in report["metrics"].items():
            for name, comp in comps.items():
                levels = comp.get("levels", [])
                ratios = [lv["ratio"] for lv in levels]
                rng = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "–"
                rows.append([metric, name, comp.get("ratio_median"), rng, len(levels), comp.get("note", "")])
    return rows


def ablation_lines(ablations: dict[str, Any]) -> list[str]:
    """Terminal summary lines of the ratios."""
    lines = []
    for metric, name, ratio, _, _, note in ablation_rows(ablations):
        text = f"{ratio:.2f}×" if ratio is not None else (note or "n/a")
        lines.append(f"ablation {name:<22} {metric}: {text}")
    return lines


def _median(rows: Sequence[dict[str, Any]], preset: str, n: int, metric: str) -> float | None:
    vals = [
        float(r[metric])
        for r in rows
        if r["preset"] == preset and r["paired"] == n and r.get(metric) is not None
    ]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.median(vals)) if vals else None


def add_ablations_section(
    report: Report,
    rows: Sequence[dict[str, Any]],
    presets: Sequence[str],
    paired: Sequence[int],
    ablations: dict[str, Any],
) -> None:
    """The report's "Ablations" section (nothing when no direct preset was run)."""
    if not has_ablations(presets):
        return
    report.heading("Ablations: no shared workspace")
    report.text(
        "direct-tr and direct-tr+cy replace the workspace by one MLP per direction, T_ab, of the same "
        "size as the workspace's path E_a → D_b (within a few percent), trained with the same translation "
        "loss on pairs and, for direct-tr+cy, the same cycle loss T_ba(T_ab(u_a)) ≈ u_a on unpaired data. "
        "They have no demi-cycle and no contrastive term (no shared space); retrieval and the downstream "
        "tasks read from a workspace state are not applicable to them (n/a, not zero)."
    )
    shown = [p for p in ("tr", "tr+cy", "full", *DIRECT_PRESETS) if p in presets]
    metrics = sorted(
        {k for r in rows for k in r if k.startswith(("translation/", "cycle/")) and k.endswith("latent_mse")}
    )
    metrics += sorted(
        {
            k
            for r in rows
            for k in r
            if k.startswith("translation/") and k.endswith(("shape_accuracy", "position_error_px"))
        }
    )
    for n in paired:
        report.table(
            ["preset", *metrics],
            [[p, *[_median(rows, p, n, m) for m in metrics]] for p in shown],
            caption=f"Test metrics at N = {n} (median over seeds).",
        )
    if ablations:
        report.text(
            "Data efficiency of the workspace against the direct translators: the pairs the direct model "
            "needs divided by the pairs the workspace preset needs for the same loss (efficiency.py)."
        )
        report.table(
            ["metric", "comparison", "ratio (median)", "range over levels", "levels", "note"],
            ablation_rows(ablations),
        )
