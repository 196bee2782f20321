"""Writing the attention experiment: EXP/results.json, EXP/figures/*.png|svg, EXP/report.html.

Figures are drawn without pyplot and saved by the semi-supervised experiment's `save_figure`;
the report uses the same `Report` machinery. Everything is read from the results dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..experiments.figures import save_figure
from ..experiments.report import Report
from ..fileio import atomic_write_json

NOISE_TITLES = {"fixed": "fixed noise vector", "random": "noise drawn afresh"}


def heatmap_figure(grid: Mapping[str, Any], title: str) -> Figure:
    """Accuracy and mean attention per domain over the two-sided noise grid, one panel each."""
    a, b = grid["domains"]
    scales = np.asarray(grid["scales"])
    panels = [("shape accuracy", np.asarray(grid["shape_accuracy"]), (0.0, 1.0), "viridis")]
    panels += [
        (f"attention on {d}", np.asarray(v), (0.0, 1.0), "magma") for d, v in grid["attention"].items()
    ]
    fig = Figure(figsize=(4.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, values, (lo, hi), cmap) in zip(axes, panels, strict=True):
        image = ax.imshow(values, origin="lower", vmin=lo, vmax=hi, cmap=cmap, aspect="auto")
        ticks = np.arange(len(scales))
        ax.set_xticks(ticks, [f"{s:.2g}" for s in scales])
        ax.set_yticks(ticks, [f"{s:.2g}" for s in scales])
        ax.set_xlabel(f"noise scale on {b}")
        ax.set_ylabel(f"noise scale on {a}")
        ax.set_title(name)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                colour = "white" if values[i, j] < 0.6 else "black"
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7, color=colour)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title)
    return fig


def line_figure(line: Mapping[str, Any], title: str) -> Figure:
    """Mean attention on each domain (and accuracy) against the noise on one domain."""
    scales = np.asarray(line["scales"])
    corrupted = line["corrupted"]
    fig = Figure(figsize=(4.4 * len(corrupted), 3.6), layout="constrained")
    axes = fig.subplots(1, len(corrupted), squeeze=False)[0]
    for ax, (c, values) in zip(axes, corrupted.items(), strict=True):
        for d, att in values["attention"].items():
            ax.plot(scales, att, marker="o", label=f"attention on {d}")
        ax.plot(scales, values["shape_accuracy"], color="black", linestyle="--", label="shape accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"noise scale on {c} (others clean)")
        ax.set_title(f"{c} corrupted")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def write_attention(exp: Path, results: Mapping[str, Any], command: str | None = None) -> Path:
    """Write results.json, the figures and report.html into the folder `exp`; returns the report."""
    exp = Path(exp)
    atomic_write_json(exp / "results.json", results)
    figures = exp / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    best = "two-step selector trained on random noise"
    heat_png, _ = save_figure(
        heatmap_figure(results["grid"], f"Two-sided noise ({best})"), figures, "heatmap"
    )
    line_png, _ = save_figure(
        line_figure(results["line"], f"Attention against noise ({best})"), figures, "line"
    )

    report = Report("Attention over a frozen global workspace")
    settings = results["settings"]
    report.text(
        f"Domains {', '.join(results['domains'])}; {results['members']} workspace member(s) (seeds "
        f"{results['seeds']}), one classifier and one set of selectors each; {results['test_examples']} "
        "test examples. A shape classifier is trained on clean workspace states, then selectors are "
        "trained with workspace and classifier frozen while one domain per example is corrupted by "
        f"{settings['scale_low']:g}–{settings['scale_high']:g} × 5 × a standardised Gaussian vector "
        "(fixed once, or drawn afresh). Accuracies are means over members (chance 1/3)."
    )
    checkpoint = results["checkpoint"]
    if not checkpoint["finished"]:
        report.text(
            f"The workspace run stopped at step {checkpoint['step']} of {checkpoint['steps']}: these "
            "figures are of that unfinished checkpoint."
        )
    if command:
        report.code(command)
    report.heading("Shape accuracy under one-sided noise")
    methods = list(next(iter(results["table"].values())))
    rows: list[list[Any]] = []
    for noise, by_method in results["table"].items():
        rows.append([NOISE_TITLES.get(noise, noise)] + [by_method[m]["shape_accuracy"] for m in methods])
        rows.append(
            [f"  attention on the corrupted domain ({noise})"]
            + [by_method[m].get("attention_on_corrupted", float("nan")) for m in methods]
        )
    report.table(
        ["noise", *methods],
        rows,
        caption="equal = no selection (every domain weighs 1/n); oracle = all weight on the clean "
        "domain(s), i.e. the corrupted one dropped; a reference, not a bound: at small noise scales "
        "the corrupted domain still carries information a selector may use.",
    )
    clean = results["clean"]
    report.table(
        ["clean input", "shape accuracy"],
        [[name, value["shape_accuracy"]] for name, value in clean.items()],
        caption="equal = all domains with equal weights; alone/d = domain d alone.",
    )
    report.heading("Two-sided noise")
    report.figure(
        heat_png, "Entry (i, j): scale i on the first domain, j on the second, both corrupted at once."
    )
    report.heading("Attention against one-sided noise")
    report.figure(line_png, "One domain corrupted at increasing scale, the others clean.")
    report.heading("Training")
    report.table(["quantity", "value"], [[k, v] for k, v in results["training"].items()])
    return report.write(exp / "report.html")
