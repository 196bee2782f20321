"""Figures of an experiment: metrics against the number of paired examples, one curve per preset.

Every figure is drawn without pyplot (no global state, no display needed) and saved as PNG and
SVG. A curve is the median over seeds at each pair count; the band spans the seeds' minimum to
maximum. Which panels exist is read from the metric names in the results, so a new domain or
preset needs no change here.
"""

from __future__ import annotations

import fnmatch
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ..fileio import atomic_write_bytes

PRESET_STYLE: dict[str, tuple[str, str]] = {
    "tr": ("#d62728", "o"),
    "tr+cont": ("#ff7f0e", "s"),
    "tr+cy": ("#9467bd", "^"),
    "tr+dcy": ("#8c564b", "v"),
    "cont": ("#7f7f7f", "D"),
    "full": ("#1f77b4", "*"),
    "fusion": ("#2ca02c", "P"),
    "fusion-gated": ("#98df8a", "p"),
    "direct-tr": ("#e377c2", "x"),
    "direct-tr+cy": ("#17becf", "X"),
}
_FALLBACK = ["#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]

LOG_Y_PATTERNS = ("*latent_mse", "*error*", "*loss*")
"""Metrics drawn on a log y axis (errors and losses); accuracies stay linear."""


@dataclass(frozen=True)
class FigureGroup:
    """One figure: a panel per metric matching any of `patterns`."""

    name: str
    title: str
    caption: str
    patterns: tuple[str, ...]


GROUPS = (
    FigureGroup(
        "translation",
        "Translation loss against paired examples",
        "Test translation loss (MSE between predicted and true unimodal latents) against the number of "
        "paired training examples N, log–log; median over seeds, band = min–max over seeds. "
        "Dashed: predicting the training mean.",
        ("translation/*/latent_mse",),
    ),
    FigureGroup(
        "coherence",
        "Attribute-level coherence of translations",
        "Shape accuracy and position error of translated outputs, read back as attributes, against N.",
        ("translation/*/shape_accuracy", "translation/*/position_error_px"),
    ),
    FigureGroup(
        "cycles",
        "Demi-cycle and cycle losses",
        "Test demi-cycle (encode, decode the same domain) and cycle (through the other domain) losses "
        "against N.",
        ("demi_cycle/*/latent_mse", "cycle/*/latent_mse"),
    ),
    FigureGroup(
        "downstream",
        "Downstream tasks",
        "Linear probe and zero-shot shape classification, odd-one-out accuracy and retrieval top-1 "
        "from workspace states, against N. Chance is 1/3 for the classification tasks.",
        ("probe/*", "zero_shot/*", "odd_one_out/*", "retrieval/*/top1"),
    ),
)


@dataclass(frozen=True)
class SavedFigure:
    name: str
    title: str
    caption: str
    png: Path
    svg: Path


def preset_style(preset: str, order: Sequence[str]) -> tuple[str, str]:
    if preset in PRESET_STYLE:
        return PRESET_STYLE[preset]
    unknown = [p for p in order if p not in PRESET_STYLE]
    return _FALLBACK[unknown.index(preset) % len(_FALLBACK)], "o"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def curve_points(
    rows: Sequence[Mapping[str, Any]], preset: str, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair counts, median, min and max over seeds of one preset's metric (finite values only)."""
    by_n: dict[int, list[float]] = {}
    for r in rows:
        if r["preset"] == preset and _finite(r.get(metric)):
            by_n.setdefault(int(r["paired"]), []).append(float(r[metric]))
    ns = np.array(sorted(by_n), dtype=np.float64)
    vals = [np.asarray(by_n[int(n)]) for n in ns]
    return (
        ns,
        np.array([np.median(v) for v in vals]),
        np.array([v.min() for v in vals]),
        np.array([v.max() for v in vals]),
    )


def _tick(value: float, _pos: int) -> str:
    if value <= 0:
        return ""
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1000:
        return f"{value / 1000:.3g}k"
    return f"{value:.3g}"


def _plain_log_ticks(ax: Axes, which: str) -> None:
    """Log ticks labelled in plain text (matplotlib's default log labels go through mathtext, seconds
    per figure): evenly spaced ones inside a decade (a loss range of 0.22-0.35), 1-2-5 per decade
    over a short range, one per decade over a long one, so that labels never run together."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = ax.dataLim.intervalx if which == "x" else ax.dataLim.intervaly
    decades = math.log10(hi / lo) if 0 < lo < hi else 0.0
    if decades < 1.0:
        axis.set_major_locator(MaxNLocator(nbins=4))
    else:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2.5 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(_tick))
    axis.set_minor_formatter(NullFormatter())


def draw_metric(
    ax: Axes,
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    presets: Sequence[str],
    baseline: float | None = None,
) -> bool:
    """One panel: a curve per preset with its band. Returns False when nothing could be drawn."""
    log_y = any(fnmatch.fnmatch(metric, p) for p in LOG_Y_PATTERNS)
    drawn = False
    for preset in presets:
        ns, med, lo, hi = curve_points(rows, preset, metric)
        if log_y:
            keep = med > 0
            ns, med, lo, hi = ns[keep], med[keep], np.maximum(lo[keep], 1e-12), hi[keep]
        if len(ns) == 0:
            continue
        colour, marker = preset_style(preset, presets)
        ax.plot(ns, med, color=colour, marker=marker, label=preset, linewidth=1.5, markersize=5)
        if len(ns) > 1:
            ax.fill_between(ns, lo, hi, color=colour, alpha=0.18, linewidth=0)
        drawn = True
    if not drawn:
        return False
    if baseline is not None and _finite(baseline) and (baseline > 0 or not log_y):
        ax.axhline(baseline, color="black", linestyle="--", linewidth=1, label="train mean")
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    for which in ("x", "y") if log_y else ("x",):
        _plain_log_ticks(ax, which)
    ax.set_xlabel("paired examples N")
    ax.set_title(metric, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    return True


def metrics_matching(rows: Sequence[Mapping[str, Any]], patterns: Sequence[str]) -> list[str]:
    """Metric columns matching any pattern, in first-seen order, with at least one finite value."""
    names: list[str] = []
    for r in rows:
        for key in r:
            if key not in names and any(fnmatch.fnmatch(key, p) for p in patterns):
                names.append(key)
    return [m for m in names if any(_finite(r.get(m)) for r in rows)]


def save_figure(fig: Figure, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write `name`.png and `name`.svg atomically; the SVG is byte-stable for the same data."""
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        with mpl.rc_context({"svg.hashsalt": "global_workspace", "svg.fonttype": "none"}):
            FigureCanvasAgg(fig)
            fig.savefig(buf, format=ext, dpi=110, metadata={"Date": None} if ext == "svg" else {})
        path = Path(out_dir) / f"{name}.{ext}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths[0], paths[1]


def panel_grid(panels: int, legend_width: float) -> tuple[Figure, list[Axes]]:
    """A figure with `panels` axes, 3 per row, and `legend_width` inches on the right for a legend.
    Fixed margins instead of a layout engine: constrained layout costs seconds per figure."""
    cols = min(3, panels)
    nrows = math.ceil(panels / cols)
    width, height = 3.9 * cols + 1.4, 3.1 * nrows + 0.5
    fig = Figure(figsize=(width, height))
    grid = fig.subplots(nrows, cols, squeeze=False)
    fig.subplots_adjust(
        left=0.75 / width,
        right=1 - legend_width / width,
        bottom=0.55 / height,
        top=1 - 0.75 / height,
        wspace=0.32,
        hspace=0.5,
    )
    axes = list(grid.flat)
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def experiment_figures(
    rows: Sequence[Mapping[str, Any]],
    out_dir: Path,
    presets: Sequence[str],
    baselines: Mapping[str, float] | None = None,
    groups: Sequence[FigureGroup] = GROUPS,
    prefix: str = "",
) -> list[SavedFigure]:
    """Draw every group that has data; one PNG + SVG per group under `out_dir`."""
    saved = []
    for group in groups:
        metrics = metrics_matching(rows, group.patterns)
        if not metrics:
            continue
        fig, axes = panel_grid(len(metrics), legend_width=1.45)
        for ax, metric in zip(axes, metrics, strict=False):
            draw_metric(ax, rows, metric, presets, (baselines or {}).get(metric))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False)
        fig.suptitle(group.title)
        name = f"{prefix}{group.name}"
        png, svg = save_figure(fig, out_dir, name)
        saved.append(SavedFigure(name, group.title, group.caption, png, svg))
    return saved


VALIDATION_CAPTION = (
    "Validation translation loss against the training step, median over seeds, one line per preset "
    "and pair count (the darker, the more pairs). Each member keeps the weights of its lowest point; "
    "a line still falling at its last step was still improving, one that rises again overfits its pairs."
)


def validation_figure(
    curves: Sequence[Mapping[str, Any]], out_dir: Path, presets: Sequence[str], name: str = "validation"
) -> SavedFigure | None:
    """Validation curves, one panel per translation metric; None without curves."""
    metrics = sorted({k for r in curves for k in r if k.startswith("translation/")})
    if not metrics:
        return None
    fig, axes = panel_grid(len(metrics), legend_width=1.9)
    pair_counts = sorted({int(r["paired"]) for r in curves})
    for ax, metric in zip(axes, metrics, strict=False):
        for preset in presets:
            colour, _ = preset_style(preset, presets)
            for i, n in enumerate(pair_counts):
                steps, values = _median_curve(curves, preset, n, metric)
                if len(steps) == 0:
                    continue
                shade = 0.3 + 0.7 * (i + 1) / len(pair_counts)
                ax.plot(steps, values, color=colour, alpha=shade, linewidth=1.2, label=f"{preset} N={n}")
        ax.set_yscale("log")
        _plain_log_ticks(ax, "y")
        ax.set_xlabel("training step")
        ax.set_title(metric, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=7, frameon=False)
    fig.suptitle("Validation loss during training")
    png, svg = save_figure(fig, out_dir, name)
    return SavedFigure(name, "Validation loss during training", VALIDATION_CAPTION, png, svg)


def _median_curve(
    curves: Sequence[Mapping[str, Any]], preset: str, paired: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the median over seeds of one preset's metric at `paired` pairs (positive values)."""
    by_step: dict[float, list[float]] = {}
    for r in curves:
        if r["preset"] == preset and int(r["paired"]) == paired and _finite(r.get(metric)):
            by_step.setdefault(float(r["step"]), []).append(float(r[metric]))
    steps = sorted(s for s, v in by_step.items() if np.median(v) > 0)
    return np.array(steps), np.array([np.median(by_step[s]) for s in steps])


EFFICIENCY_CAPTION = (
    "Data-efficiency ratio N_reference(L) / N_candidate(L) against the loss level L it is read at, "
    "for every comparison of efficiency.json (lower loss to the right). The shaded band is the "
    "paper's 4–7×; a ratio that climbs to the right means the reference stops gaining from more "
    "pairs before the candidate does."
)


def efficiency_figure(
    efficiency: Mapping[str, Any], out_dir: Path, name: str = "efficiency"
) -> SavedFigure | None:
    """Ratio against loss level, one panel per metric with a readable ratio; None if there is none."""
    panels = {
        metric: {key: comp["ratio_by_level"] for key, comp in comps.items() if comp.get("ratio_by_level")}
        for metric, comps in efficiency.get("metrics", {}).items()
    }
    panels = {metric: lines for metric, lines in panels.items() if lines}
    if not panels:
        return None
    fig, axes = panel_grid(len(panels), legend_width=1.9)
    for ax, (metric, lines) in zip(axes, panels.items(), strict=False):
        ax.axhspan(4.0, 7.0, color="#1f77b4", alpha=0.08, linewidth=0, label="paper: 4–7×")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        for key, levels in lines.items():
            candidate, reference = key.split("_vs_", 1)
            colour, _ = preset_style(reference, [reference])
            style = "-" if candidate == efficiency.get("candidate") else "--"
            loss = [lv["loss"] for lv in levels]
            ratio = [lv["ratio"] for lv in levels]
            ax.plot(loss, ratio, color=colour, linestyle=style, linewidth=1.5, label=key)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.invert_xaxis()
        for which in ("x", "y"):
            _plain_log_ticks(ax, which)
        ax.set_xlabel("loss level L")
        ax.set_ylabel("pairs ratio")
        ax.set_title(metric, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="upper right", fontsize=8, frameon=False)
    fig.suptitle("Data efficiency against the loss level")
    png, svg = save_figure(fig, out_dir, name)
    return SavedFigure(name, "Data efficiency against the loss level", EFFICIENCY_CAPTION, png, svg)
