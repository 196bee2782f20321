"""The report of a semi-supervision experiment: curves, efficiency, downstream tables, pictures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..domains.display import displayable
from ..errors import UserError
from ..fileio import read_json, read_npz
from ..workspace.presets import MemberSpec, point_label
from .ablations import add_ablations_section
from .efficiency import level_range
from .figures import efficiency_figure, experiment_figures, validation_figure
from .fusion_report import add_fused_inputs_section
from .grid import chosen_points
from .report import Report
from .semi_supervised.readings import translation_metrics

if TYPE_CHECKING:
    from .semi_supervised.config import ExperimentConfig

DOWNSTREAM_PREFIXES = ("probe/", "zero_shot/", "retrieval/", "odd_one_out/")


def median_table(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str], presets: Sequence[str], paired: int
) -> list[list[Any]]:
    """One row per preset: the median over seeds of each metric at one pair count."""
    out = []
    for p in presets:
        cells: list[Any] = [p]
        for m in metrics:
            vals = [
                float(r[m])
                for r in rows
                if r["preset"] == p and r["paired"] == paired and r.get(m) is not None
            ]
            vals = [v for v in vals if np.isfinite(v)]
            cells.append(float(np.median(vals)) if vals else None)
        out.append(cells)
    return out


def efficiency_rows(efficiency: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for metric, comps in efficiency["metrics"].items():
        for name, comp in comps.items():
            span = level_range(comp)
            rng = f"{span[0]:.2f}–{span[1]:.2f}" if span else "–"
            levels = len(comp.get("levels", []))
            rows.append([metric, name, comp.get("ratio_median"), rng, levels, comp.get("note", "")])
    return rows


def readings_side_by_side(efficiency: dict[str, Any]) -> list[list[Any]]:
    """One row per comparison: the project's reading and the paper's, next to each other."""
    paper = efficiency.get("paper_protocol", {}).get("comparisons", {})
    rows = []
    for metric, comps in efficiency["metrics"].items():
        if metric != "translation/sum/latent_mse" and "translation/sum/latent_mse" in efficiency["metrics"]:
            continue
        for name, comp in comps.items():
            theirs = paper.get(name, {})
            rows.append([name, metric, comp.get("ratio_median"), _ratio_span(theirs), _levels_text(theirs)])
    return rows


def paper_rows(paper: dict[str, Any]) -> list[list[Any]]:
    """One row per (comparison, loss level) of the paper's reading."""
    return [
        [name, lv["loss"], lv["n_reference"], lv["n_candidate"], lv["ratio"], lv.get("note", comp["note"])]
        for name, comp in paper.get("comparisons", {}).items()
        for lv in comp["levels"] or [dict.fromkeys(("loss", "n_reference", "n_candidate", "ratio"))]
    ]


def _ratio_span(comparison: dict[str, Any]) -> str:
    low, high = comparison.get("ratio_min"), comparison.get("ratio_max")
    if low is None or high is None:
        return comparison.get("note") or "–"
    return f"{low:.2f}×" if math.isclose(low, high, rel_tol=5e-3) else f"{low:.2f}–{high:.2f}×"


def _levels_text(comparison: dict[str, Any]) -> str:
    return ", ".join(f"{lv['loss']:.3g}" for lv in comparison.get("levels", [])) or "–"


def selection_rows(selection: dict[str, Any]) -> list[list[Any]]:
    """One row per (preset, N): the grid point kept, its validation and test losses, points tried."""
    return [
        [s["preset"], s["paired"], s["grid_point"], s["validation"], s["test"], len(s["points"])]
        for s in selection["selected"]
    ]


def clip_verdict(rows: Sequence[dict[str, Any]], presets: Sequence[str]) -> str:
    """Does the full GW match or beat the CLIP-like `cont` on probe and zero-shot at every N?"""
    if "full" not in presets or "cont" not in presets:
        return "The presets full and cont were not both run; no comparison."
    metrics = sorted({k for r in rows for k in r if k.startswith(("probe/", "zero_shot/"))})
    ns = sorted({r["paired"] for r in rows})
    wins, total = 0, 0
    for m in metrics:
        for n in ns:
            full, cont = (median_table(rows, [m], [p], n)[0][1] for p in ("full", "cont"))
            if full is None or cont is None:
                continue
            total += 1
            wins += full >= cont
    if total == 0:
        return "No probe or zero-shot metric was computed (the dataset has no class column)."
    return (
        f"full ≥ cont (CLIP-like) in {wins} of {total} (metric, N) cells of linear probe and zero-shot "
        f"accuracy (medians over seeds). The slides claim the CLIP-like model is always below."
    )


def _picture_members(config: ExperimentConfig) -> list[tuple[str, int]]:
    presets = [p for p in ("full", "tr") if p in config.presets] or config.presets[:1]
    ns = [config.paired[0], config.paired[-1]] if len(config.paired) > 1 else config.paired
    return [(p, n) for n in ns for p in presets]


def _load_pictures(
    exp: Path, config: ExperimentConfig, chosen: dict[tuple[str, int], str]
) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """(preset, N) -> direction -> predicted latents (P, dim) of the first seed's member (of the
    chosen grid point, in a grid)."""
    want = set(_picture_members(config))
    seed = config.seeds[0]
    found: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for folder in sorted((exp / "chunks").iterdir()):
        if folder.name.startswith(".") or not (folder / "members.json").is_file():
            continue
        specs = [MemberSpec.from_json(o) for o in read_json(folder / "members.json", "chunk members")]
        fix = f"delete {folder} and rerun the experiment to retrain it"
        arrays = read_npz(folder / "pictures.npz", "chunk pictures", fix)
        for i, s in enumerate(specs):
            point = None if s.grid is None else point_label(s.grid)
            if s.seed == seed and (s.preset, s.paired) in want and chosen.get((s.preset, s.paired)) == point:
                found[(s.preset, s.paired)] = {k: v[i] for k, v in arrays.items()}
    return found


def add_selection_section(report: Report, selection: dict[str, Any], config: ExperimentConfig) -> None:
    """Which grid point each (preset, N) kept (selection.json), chosen on validation only."""
    report.heading("Grid: the point kept per preset and pair count")
    if config.points:
        sources = ", ".join(config.points_from)
        chosen = (
            "Each (preset, N) trained one point: among the members of the earlier experiments "
            f"{sources}, the one with the lowest mean over seeds of {selection['metric']} (validation)"
        )
    else:
        chosen = (
            "Every preset trained each point of the grid; per (preset, N) the point with the lowest mean "
            f"over seeds of {selection['metric']} (validation) is kept"
        )
    report.text(
        f"{chosen}, and only those members make the curves and ratios below. The test column is the "
        "kept point's summed test translation loss (mean over seeds), shown, never used to choose."
    )
    report.table(
        ["preset", "N", "grid point", "validation", "test", "points tried"], selection_rows(selection)
    )


def add_pictures(
    report: Report, exp: Path, config: ExperimentConfig, chosen: dict[tuple[str, int], str]
) -> None:
    """Translation strips: for each direction into or out of images, truth next to predictions."""
    from ..data.format import load_dataset
    from ..domains.store import load_domain

    data = Path(config.data)
    try:
        dataset = load_dataset(data)
        test = dataset.split("test")
        domains = {d: load_domain(data, d, "cpu") for d in config.domains}
    except UserError as exc:
        report.text(f"No translation pictures: {exc}", muted=True)
        return
    pictures = _load_pictures(exp, config, chosen)
    members = [m for m in _picture_members(config) if m in pictures]
    count = min(config.pictures, len(test))
    columns = list(dataset.info.label_columns)

    def show(domain: str, latents: np.ndarray) -> list[Any]:
        """Decoded latents as pictures (images), captions or attribute text."""
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
        return displayable(domains[domain].decode(z), columns)

    def truth(domain: str) -> list[Any]:
        return displayable(domains[domain].raw(test)[:count], columns)

    for a in config.domains:
        for b in config.domains:
            if a == b or "v" not in (domains[a].kind, domains[b].kind):
                continue
            key = f"{a}_to_{b}"
            header = [f"input ({a})", f"truth ({b})"] + [f"{p}, N={n}" for p, n in members]
            cols = [truth(a), truth(b)] + [show(b, pictures[m][key][:count]) for m in members]
            rows = [[col[i] for col in cols] for i in range(count)]
            report.heading(f"Translation {a} → {b}", level=3)
            report.pictures(
                header,
                rows,
                caption=f"First {count} test examples; predictions of seed {config.seeds[0]} at the smallest "
                f"and largest N, decoded by the frozen {b} specialist.",
            )


def add_efficiency_section(report: Report, efficiency: dict[str, Any], figures_dir: Path) -> None:
    """Both readings of the data-efficiency ratios (efficiency.json), side by side and in full."""
    report.heading("Data efficiency")
    paper = efficiency.get("paper_protocol", {})
    report.table(
        ["comparison", "metric (project)", "project's reading", "paper's reading", "paper's loss levels"],
        readings_side_by_side(efficiency),
        caption="Two readings of the same experiment. The project's: test translation loss, median over "
        "seeds, median of the ratio over loss levels. The paper's: validation minimum, mean over "
        "directions and seeds, ratio at each loss level (min–max over levels).",
    )
    if "budget" in efficiency:
        report.text(efficiency["budget"]["summary"] + ".")
    report.heading("The project's reading", level=3)
    report.text(
        "Ratio of the pairs the reference preset needs to the pairs the full workspace needs for the same "
        "loss, read on the log–log curves at several loss levels inside both curves' ranges "
        "(median over levels). " + efficiency["method"] + "."
    )
    report.table(
        ["metric", "comparison", "ratio (median)", "range over levels", "levels", "note"],
        efficiency_rows(efficiency),
    )
    report.heading("The paper's reading", level=3)
    report.text(
        f"{paper.get('method', '')}; metric {paper.get('metric', '')}; "
        f"levels: {paper.get('levels_from', '')}."
    )
    report.table(
        ["comparison", "loss level", "N reference", "N candidate", "ratio", "note"], paper_rows(paper)
    )
    by_level = efficiency_figure(efficiency, figures_dir)
    if by_level is not None:
        report.figure(by_level.svg, by_level.caption)


def build_report(
    exp: Path,
    config: ExperimentConfig,
    rows: list[dict[str, Any]],
    efficiency: dict[str, Any],
    baselines: dict[str, float],
    seconds: float,
    selection: dict[str, Any] | None = None,
    every: list[dict[str, Any]] | None = None,
    curves: list[dict[str, Any]] | None = None,
) -> Path:
    """Write EXP/figures/* and EXP/report.html; returns the report's path. `rows` are what the
    curves and ratios use (in a grid, the chosen points' members); `every` is every member;
    `curves` the validation checks of `rows`' members (validation.csv)."""
    figures_dir = exp / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = {f.name: f for f in experiment_figures(rows, figures_dir, config.presets, baselines)}
    report = Report(f"Semi-supervised global workspace: {' + '.join(config.domains)}")
    meta = read_json(exp / "experiment.json", "experiment settings")
    trained = len(every) if every else len(rows)
    count = (
        f"{trained} workspaces"
        if trained == len(rows)
        else f"{trained} workspaces trained, the {len(rows)} of the grid points chosen on validation shown"
    )
    report.text(
        f"{count}: presets {', '.join(config.presets)}; pair counts "
        f"{', '.join(map(str, config.paired))}; seeds {', '.join(map(str, config.seeds))}; "
        f"{config.train.steps} steps of batch {config.train.batch_size}, peak lr {config.train.lr}. "
        f"{config.kept_weights()} "
        f"Wall time of this run: {seconds:.0f} s."
    )
    report.code(" ".join(str(a) for a in meta.get("command", [])))

    report.heading("Translation against paired examples")
    if "translation" in figures:
        report.figure(figures["translation"].svg, figures["translation"].caption)
    trans = translation_metrics(rows)
    smallest = config.paired[0]
    table = median_table(rows, trans, config.presets, smallest)
    table.append(["train mean", *[baselines.get(m) for m in trans]])
    report.table(
        ["preset", *trans], table, caption=f"Test translation loss at N = {smallest} (median over seeds)."
    )

    during = validation_figure(curves or [], figures_dir, config.presets)
    if during is not None:
        report.heading(during.title, level=3)
        report.figure(during.svg, during.caption)

    if selection is not None:
        add_selection_section(report, selection, config)

    add_efficiency_section(report, efficiency, figures_dir)

    for name in ("coherence", "cycles"):
        if name in figures:
            report.heading(figures[name].title)
            report.figure(figures[name].svg, figures[name].caption)

    report.heading("Downstream tasks")
    down = sorted({k for r in rows for k in r if k.startswith(DOWNSTREAM_PREFIXES)})
    if "downstream" in figures:
        report.figure(figures["downstream"].svg, figures["downstream"].caption)
    report.text(clip_verdict(rows, config.presets))
    for n in config.paired:
        if down:
            report.table(
                ["preset", *down],
                median_table(rows, down, config.presets, n),
                caption=f"Downstream accuracies at N = {n} (median over seeds; chance 1/3 for classifying).",
            )

    add_ablations_section(report, rows, config.presets, config.paired, efficiency.get("ablations", {}))
    add_fused_inputs_section(report, rows, config.presets, config.paired)

    report.heading("Translation pictures")
    add_pictures(report, exp, config, chosen_points(selection) if selection is not None else {})

    add_every_member_table(report, rows if every is None else every)
    return report.write(exp / "report.html")


def add_every_member_table(report: Report, every: Sequence[dict[str, Any]]) -> None:
    """Every member's test metrics, as results.csv holds them."""
    report.heading("Every member")
    metrics = sorted({k for r in every for k in r if k not in ("member", "preset", "paired", "seed")})
    report.table(
        ["preset", "N", "seed", *metrics],
        [[r["preset"], r["paired"], r["seed"], *[r.get(m) for m in metrics]] for r in every],
        caption=(
            "Test metrics of every member, and kept_step: the step whose weights it kept "
            "(also in results.csv)."
        ),
    )
