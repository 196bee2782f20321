"""The experiment's summary for the terminal."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import ablations
from ..efficiency import level_range
from .run import ExperimentOutcome


def paper_lines(paper: dict[str, Any]) -> list[str]:
    """The paper's reading of each comparison, one line each: its ratios at the loss levels."""
    lines = []
    for name, comp in paper.get("comparisons", {}).items():
        read = [lv for lv in comp["levels"] if lv["ratio"] is not None]
        text = (
            ", ".join(f"{lv['ratio']:.2f}× at {lv['loss']:.3g}" for lv in read)
            or comp["note"]
            or "no level inside both curves"
        )
        lines.append(f"efficiency {name:<18} paper's reading ({paper['metric']}): {text}")
    return lines


def headline(outcome: ExperimentOutcome) -> str:
    """A terminal summary: medians over seeds at the smallest and largest N, and the ratios."""
    rows = outcome.rows
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    ns = sorted({r["paired"] for r in rows})
    cols = [
        ("translation/sum/latent_mse", "tr-sum"),
        ("probe/v/shape_accuracy", "probe-v"),
        ("zero_shot/attr_to_v/shape_accuracy", "0shot a→v"),
        ("zero_shot/t_to_v/shape_accuracy", "0shot t→v"),
        ("retrieval/v_to_attr/top1", "retr v→a"),
        ("retrieval/v_to_t/top1", "retr v→t"),
        ("odd_one_out/attr_to_v/accuracy", "odd a→v"),
        ("odd_one_out/t_to_v/accuracy", "odd t→v"),
    ]
    cols = [(k, name) for k, name in cols if any(k in r for r in rows)]
    width = max(len("preset"), *(len(p) for p in presets)) + 2
    lines = []
    for n in (ns[0], ns[-1]) if len(ns) > 1 else (ns[0],):
        lines.append(f"N = {n} pairs (median over seeds)")
        lines.append("  " + f"{'preset':<{width}}" + "".join(f"{name:>11}" for _, name in cols))
        for p in presets:
            vals = []
            for key, _ in cols:
                v = [r[key] for r in rows if r["preset"] == p and r["paired"] == n and r.get(key) is not None]
                vals.append(f"{float(np.median(v)):>11.3f}" if v else f"{'-':>11}")
            lines.append("  " + f"{p:<{width}}" + "".join(vals))
    for metric, comps in outcome.efficiency["metrics"].items():
        for name, comp in comps.items():
            ratio = comp.get("ratio_median")
            text = f"{ratio:.2f}×" if ratio is not None else (comp.get("note") or "n/a")
            span = level_range(comp)
            spread = comp.get("leave_one_seed_out")
            if span:
                text += f" ({span[0]:.2f}–{span[1]:.2f}× over loss levels"
                text += (
                    f"; leaving one seed out: {spread['min']:.2f}–{spread['max']:.2f}×)" if spread else ")"
                )
            lines.append(f"efficiency {name:<18} {metric}: {text}")
    lines += paper_lines(outcome.efficiency.get("paper_protocol", {}))
    if "budget" in outcome.efficiency:
        lines.append(outcome.efficiency["budget"]["summary"])
    lines += ablations.ablation_lines(outcome.efficiency.get("ablations", {}))
    return "\n".join(lines)
