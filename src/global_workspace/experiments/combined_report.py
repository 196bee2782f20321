"""The report of several experiments read as one (`gw experiment combine`): the sources, the point
chosen per preset and N over all of them, and both readings of the ratios."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .experiment_report import add_efficiency_section, add_every_member_table, median_table, selection_rows
from .figures import experiment_figures
from .report import Report
from .semi_supervised.readings import translation_metrics

if TYPE_CHECKING:
    from .semi_supervised.config import ExperimentConfig


def build_combined_report(
    out: Path,
    config: ExperimentConfig,
    record: dict[str, Any],
    chosen: list[dict[str, Any]],
    every: list[dict[str, Any]],
    selection: dict[str, Any],
    efficiency: dict[str, Any],
    baselines: dict[str, float],
) -> Path:
    """Write OUT/figures/* and OUT/report.html; `config` is the merged settings the readings used,
    `record` combined.json."""
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = {f.name: f for f in experiment_figures(chosen, figures_dir, config.presets, baselines)}
    report = Report(f"Combined semi-supervised experiments: {' + '.join(config.domains)}")
    report.text(
        f"{len(every)} finished members of {len(record['sources'])} experiments, {config.train.steps} "
        f"steps of batch {config.train.batch_size}: presets {', '.join(config.presets)}; pair counts "
        f"{', '.join(map(str, config.paired))}; seeds {', '.join(map(str, config.seeds))}. Per (preset, "
        f"N) the point with the lowest mean over seeds of {selection['metric']} (validation) among all "
        "of them is kept; the same point trained by two experiments counts as two. Translation "
        "pictures and validation curves are in each source's own report."
    )
    report.code(" ".join(str(a) for a in record["command"]))
    report.table(
        ["experiment", "presets offered", "finished members", "planned", "command"],
        [
            [
                s["experiment"],
                ",".join(s["presets"]),
                s["finished"],
                s["planned"],
                " ".join(map(str, s["command"])),
            ]
            for s in record["sources"]
        ],
        caption="The sources. An experiment still training offers the members it has finished.",
    )
    report.heading("The point kept per preset and pair count")
    report.table(
        ["preset", "N", "grid point", "validation", "test", "points tried"], selection_rows(selection)
    )
    report.heading("Translation against paired examples")
    if "translation" in figures:
        report.figure(figures["translation"].svg, figures["translation"].caption)
    trans = translation_metrics(chosen)
    for n in config.paired:
        report.table(
            ["preset", *trans],
            median_table(chosen, trans, config.presets, n),
            caption=f"Test translation loss of the kept points at N = {n} (median over seeds).",
        )
    add_efficiency_section(report, efficiency, figures_dir)
    for name in ("coherence", "cycles", "downstream"):
        if name in figures:
            report.heading(figures[name].title)
            report.figure(figures[name].svg, figures[name].caption)
    add_every_member_table(report, every)
    return report.write(out / "report.html")
