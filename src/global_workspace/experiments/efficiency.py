"""The data-efficiency ratio (docs/design.md §6): how many more pairs a model needs for the same loss.

For one metric (lower is better, e.g. `translation/v_to_attr/latent_mse`) every preset gives a
curve loss(N) over the pair counts N it was trained with, one value per seed. The ratio of a
reference preset (`tr`) to a candidate (`full`) at a loss level L is N_ref(L) / N_cand(L), where
N_p(L) is the number of pairs preset p needs to reach L.

How N_p(L) is read off a curve:
1. Seeds are aggregated per N (median by default, or the geometric mean).
2. The curve is taken in log–log space, (log N, log loss).
3. More pairs should never hurt, but measured curves are noisy and sometimes rise. A non-monotone
   curve is replaced by its least-squares non-increasing fit (isotonic regression, pool adjacent
   violators, in log space): violating neighbours are averaged, not dropped, so neither curve is
   flattered. `monotone_fit` in the output says when that happened.
4. N_p(L) is the smallest N where the piecewise-linear (in log–log) fitted curve reaches L.

Levels are spread evenly in log space strictly inside the overlap of the two curves' loss ranges,
so both curves are interpolated, never extrapolated. When the ranges do not overlap the ratio is
only bounded (e.g. the candidate at its fewest pairs already beats the reference at its most);
`bound` then gives that bound and `levels` is empty.

The ratio need not be the same at every level: where the reference's curve flattens (it stops
gaining from more pairs) the ratio grows, and a single number hides that. `ratio_by_level` reads
it at many levels for the report's efficiency figure.

`paper_protocol` reads the ratio as the paper's code did (docs/design.md §12) instead: the loss is the
minimum over training of the validation translation loss, averaged over directions and over seeds
(mean, no monotone fit), and the ratio is read at chosen loss levels on the measured curves,
interpolated in log–log. Both readings are written side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

AGGREGATES = ("median", "geomean", "mean")
LEVELS_FOR_FIGURE = 25
"""Loss levels of `ratio_by_level`: enough for a smooth ratio-against-loss line."""
VAL_MIN_PREFIX = "val_min/"
"""Per-direction minimum over training of the validation translation loss: `val_min/translation/
{a}_to_{b}/latent_mse` (recorded by train_chunk wherever validation checks run)."""
VAL_MIN_MEAN = "val_min/translation/mean/latent_mse"
"""The mean over directions of the validation minima: what the grid selects on and what the
paper's reading of the data-efficiency ratio uses."""


@dataclass(frozen=True)
class Curve:
    """One preset's aggregated curve: increasing pair counts and the loss at each (both > 0)."""

    n: np.ndarray  # (P,) float, strictly increasing
    loss: np.ndarray  # (P,) float, as measured (aggregated over seeds)
    fitted: np.ndarray  # (P,) non-increasing fit of log(loss), exponentiated back

    @property
    def monotone_fit(self) -> bool:
        """True when the measured curve rose somewhere and had to be fitted."""
        return not np.allclose(self.fitted, self.loss, rtol=1e-12, atol=0.0)

    def pairs_needed(self, level: float) -> float:
        """Smallest N (interpolated in log–log) at which the fitted curve is at or below `level`."""
        logl = np.log(self.fitted)
        target = math.log(level)
        if target < logl[-1] - 1e-12 or target > logl[0] + 1e-12:
            raise ValueError(f"level {level} lies outside the curve's range")
        n = first_crossing(self.n, self.fitted, level)
        assert n is not None, "the last point is at or below any level in range"
        return n


def first_crossing(n: np.ndarray, loss: np.ndarray, level: float) -> float | None:
    """Smallest N at which the curve (increasing `n`) reaches `level`, interpolated linearly in
    log–log between the points around it; None when no point reaches it."""
    logn, logl = np.log(n), np.log(loss)
    target = math.log(level)
    for i in range(len(logn)):
        if logl[i] <= target + 1e-12:
            if i == 0:
                return float(n[0])
            x0, x1, y0, y1 = logn[i - 1], logn[i], logl[i - 1], logl[i]
            frac = (y0 - target) / (y0 - y1)  # y0 > target >= y1, so y0 > y1
            return float(math.exp(x0 + frac * (x1 - x0)))
    return None


def isotonic_decreasing(values: Sequence[float]) -> np.ndarray:
    """Least-squares non-increasing fit of a sequence (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean2, w2 = blocks.pop()
            mean1, w1 = blocks.pop()
            blocks.append([(mean1 * w1 + mean2 * w2) / (w1 + w2), w1 + w2])
    out: list[float] = []
    for mean, weight in blocks:
        out.extend([mean] * int(weight))
    return np.asarray(out)


def aggregate(values: Sequence[float], how: str) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if how == "mean":
        return float(np.mean(arr))
    if how == "median":
        return float(np.median(arr))
    if how == "geomean":
        return float(np.exp(np.mean(np.log(arr))))
    raise ValueError(f"unknown aggregate {how!r}; use one of {AGGREGATES}")


def make_curve(points: Iterable[tuple[float, float]], how: str = "median") -> Curve | None:
    """Build a curve from (N, loss) points, several per N (one per seed). None if fewer than 2 N.

    Points with a non-finite or non-positive loss or N are ignored (a log scale cannot hold them).
    """
    by_n: dict[float, list[float]] = {}
    for n, loss in points:
        if n > 0 and loss > 0 and math.isfinite(n) and math.isfinite(loss):
            by_n.setdefault(float(n), []).append(float(loss))
    if len(by_n) < 2:
        return None
    ns = np.array(sorted(by_n))
    losses = np.array([aggregate(by_n[n], how) for n in ns])
    fitted = np.exp(isotonic_decreasing(np.log(losses)))
    return Curve(n=ns, loss=losses, fitted=fitted)


def efficiency_ratio(reference: Curve, candidate: Curve, levels: int = 5) -> dict[str, Any]:
    """N_reference(L) / N_candidate(L) at `levels` loss levels inside both curves' ranges."""
    ref_lo, ref_hi = float(reference.fitted.min()), float(reference.fitted.max())
    cand_lo, cand_hi = float(candidate.fitted.min()), float(candidate.fitted.max())
    lo, hi = max(ref_lo, cand_lo), min(ref_hi, cand_hi)
    result: dict[str, Any] = {
        "levels": [],
        "ratio_median": None,
        "ratio_geomean": None,
        "bound": None,
        "note": "",
        "reference_monotone_fit": reference.monotone_fit,
        "candidate_monotone_fit": candidate.monotone_fit,
    }
    if not lo < hi:
        if cand_hi <= ref_lo:
            # The candidate's worst point is as good as the reference's best one.
            bound = float(reference.n[int(np.argmin(reference.fitted))] / candidate.n[0])
            result["bound"] = {"ratio_at_least": bound}
            result["note"] = (
                f"the candidate with its fewest pairs is already at or below the reference's best loss; "
                f"ratio >= {bound:.3g}"
            )
        elif ref_hi <= cand_lo:
            bound = float(reference.n[0] / candidate.n[int(np.argmin(candidate.fitted))])
            result["bound"] = {"ratio_at_most": bound}
            result["note"] = (
                f"the reference with its fewest pairs is already at or below the candidate's best loss; "
                f"ratio <= {bound:.3g}"
            )
        else:
            result["note"] = "the curves are flat over the same loss value; no ratio can be read"
        return result
    # Levels evenly spaced in log loss, strictly inside (lo, hi): the ends are excluded because
    # a level equal to a curve's plateau is reached at an arbitrary point of the plateau.
    fractions = (np.arange(levels) + 0.5) / levels
    rows = []
    for frac in fractions:
        level = float(math.exp(math.log(lo) + frac * (math.log(hi) - math.log(lo))))
        n_ref = reference.pairs_needed(level)
        n_cand = candidate.pairs_needed(level)
        rows.append({"loss": level, "n_reference": n_ref, "n_candidate": n_cand, "ratio": n_ref / n_cand})
    ratios = [r["ratio"] for r in rows]
    result["levels"] = rows
    result["ratio_median"] = float(np.median(ratios))
    result["ratio_geomean"] = float(np.exp(np.mean(np.log(ratios))))
    return result


def efficiency_report(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    candidate: str = "full",
    references: Sequence[str] = ("tr", "tr+cont"),
    how: str = "median",
    levels: int = 5,
) -> dict[str, Any]:
    """efficiency.json: for each metric, the ratio of each reference preset to the candidate.

    rows: one mapping per member with at least "preset", "paired" and the metric columns.
    """
    out: dict[str, Any] = {
        "candidate": candidate,
        "aggregate_over_seeds": how,
        "levels_per_comparison": levels,
        "method": (
            "per metric and preset: aggregate seeds per pair count, fit a non-increasing curve to "
            "log(loss) vs log(N) by isotonic regression where the measured curve rises, interpolate "
            "linearly in log-log; ratio = N_reference(L) / N_candidate(L) at loss levels evenly spaced "
            "in log space inside both curves' ranges"
        ),
        "metrics": {},
    }
    for metric in metrics:
        curves = {preset: _curve(rows, metric, preset, how) for preset in {candidate, *references}}
        cand = curves[candidate]
        per_ref: dict[str, Any] = {}
        for ref in references:
            key = f"{candidate}_vs_{ref}"
            curve = curves[ref]
            if cand is None or curve is None:
                per_ref[key] = {"note": "needs at least two pair counts for both presets", "levels": []}
            else:
                per_ref[key] = efficiency_ratio(curve, cand, levels)
                dense = efficiency_ratio(curve, cand, LEVELS_FOR_FIGURE)["levels"]
                per_ref[key]["ratio_by_level"] = [{"loss": r["loss"], "ratio": r["ratio"]} for r in dense]
                per_ref[key]["leave_one_seed_out"] = _seed_spread(rows, metric, ref, candidate, how, levels)
        out["metrics"][metric] = per_ref
    return out


def level_range(comparison: Mapping[str, Any]) -> tuple[float, float] | None:
    """(min, max) of a comparison's ratios over its loss levels; None when no ratio was read."""
    ratios = [lv["ratio"] for lv in comparison.get("levels", [])]
    return (min(ratios), max(ratios)) if ratios else None


def _curve(rows: Iterable[Mapping[str, Any]], metric: str, preset: str, how: str) -> Curve | None:
    points = (
        (float(r["paired"]), float(r[metric]))
        for r in rows
        if r["preset"] == preset and r.get(metric) is not None
    )
    return make_curve(points, how)


def _seed_spread(
    rows: Sequence[Mapping[str, Any]], metric: str, reference: str, candidate: str, how: str, levels: int
) -> dict[str, Any] | None:
    """How much the ratio hangs on single seeds: its min and max over the runs that leave one seed
    out (None below 3 seeds). Small-N curves can be bimodal across seeds, and a ratio read from 2 or
    3 seeds can then move by 2x when one seed changes."""
    seeds = sorted({r["seed"] for r in rows if r["preset"] in (reference, candidate) and "seed" in r})
    if len(seeds) < 3:
        return None
    ratios = []
    for left_out in seeds:
        kept = [r for r in rows if r.get("seed") != left_out]
        ref, cand = _curve(kept, metric, reference, how), _curve(kept, metric, candidate, how)
        value = efficiency_ratio(ref, cand, levels)["ratio_median"] if ref and cand else None
        if value is not None:
            ratios.append(value)
    if not ratios:
        return None
    return {"min": min(ratios), "max": max(ratios), "subsets": len(ratios)}


PAPER_LEVELS = 3
"""Loss levels of the paper's reading when none are given: a few, evenly spaced in log."""


def paper_ratio(
    reference: Iterable[tuple[float, float]],
    candidate: Iterable[tuple[float, float]],
    levels: Sequence[float] = (),
    count: int = PAPER_LEVELS,
) -> dict[str, Any]:
    """The paper's ratio N_reference(L) / N_candidate(L) from (N, loss) points, one per seed.

    Losses are averaged over seeds per N and the measured curves are read as they are. A level is
    readable on a curve between its lowest loss and its loss at the fewest pairs (above that, the
    pairs needed lie below the fewest measured). `levels` empty: `count` levels evenly spaced in log
    strictly inside both curves' readable ranges. An unreadable level gets ratio None and a note."""
    ref, cand = _mean_curve(reference), _mean_curve(candidate)
    out: dict[str, Any] = {"levels": [], "ratio_min": None, "ratio_max": None, "note": ""}
    if ref is None or cand is None:
        out["note"] = "needs at least two pair counts for both presets"
        return out
    (ref_n, ref_loss), (cand_n, cand_loss) = ref, cand
    if not levels:
        lo = max(float(ref_loss.min()), float(cand_loss.min()))
        hi = min(float(ref_loss[0]), float(cand_loss[0]))
        if not lo < hi:
            out["note"] = "the curves' readable loss ranges do not overlap; give --paper-levels"
            return out
        levels = [math.exp(math.log(lo) + (k + 0.5) / count * math.log(hi / lo)) for k in range(count)]
    for level in levels:
        n_ref, n_cand = (_pairs_at(n, loss, level) for n, loss in ((ref_n, ref_loss), (cand_n, cand_loss)))
        ratio = n_ref / n_cand if n_ref is not None and n_cand is not None else None
        row: dict[str, Any] = {
            "loss": float(level),
            "n_reference": n_ref,
            "n_candidate": n_cand,
            "ratio": ratio,
        }
        if ratio is None:
            row["note"] = (
                "outside the "
                + " and ".join(name for name, n in (("reference", n_ref), ("candidate", n_cand)) if n is None)
                + " curve's readable range"
            )
        out["levels"].append(row)
    ratios = [r["ratio"] for r in out["levels"] if r["ratio"] is not None]
    if ratios:
        out["ratio_min"], out["ratio_max"] = min(ratios), max(ratios)
    return out


def paper_protocol(
    rows: Sequence[Mapping[str, Any]],
    metric: str,
    candidate: str,
    references: Sequence[str],
    levels: Sequence[float] = (),
) -> dict[str, Any]:
    """efficiency.json's `paper_protocol`: `paper_ratio` of each reference preset to the candidate
    on `metric` (the validation minimum, mean over directions; rows without it are left out)."""
    out: dict[str, Any] = {
        "reading": "the paper's (docs/design.md §12)",
        "metric": metric,
        "aggregate_over_seeds": "mean",
        "levels_from": "--paper-levels"
        if levels
        else f"{PAPER_LEVELS} evenly spaced in log inside both curves' readable ranges",
        "method": (
            "per preset: the minimum over training of the validation translation loss, averaged over "
            "directions, then over seeds per pair count; the measured curves are interpolated "
            "linearly in log-log; ratio = N_reference(L) / N_candidate(L) at each loss level L"
        ),
        "comparisons": {},
    }

    def points(preset: str) -> list[tuple[float, float]]:
        return [
            (float(r["paired"]), float(r[metric]))
            for r in rows
            if r["preset"] == preset and r.get(metric) is not None
        ]

    for ref in references:
        out["comparisons"][f"{candidate}_vs_{ref}"] = paper_ratio(points(ref), points(candidate), levels)
    return out


def _mean_curve(points: Iterable[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Increasing pair counts and the mean loss over seeds at each; None below two pair counts."""
    curve = make_curve(points, "mean")
    return None if curve is None else (curve.n, curve.loss)


def _pairs_at(n: np.ndarray, loss: np.ndarray, level: float) -> float | None:
    """`first_crossing` where it interpolates: None when the fewest pairs already reach `level`
    below it (the crossing lies before the first point) or no point reaches it."""
    if level > float(loss[0]) + 1e-12:
        return None
    return first_crossing(n, loss, level)


def add_val_min_mean(rows: Sequence[dict[str, Any]]) -> None:
    """Each row gains `VAL_MIN_MEAN` where it has validation minima (None where one is missing)."""
    names = sorted(
        {k for r in rows for k in r if k.startswith(VAL_MIN_PREFIX + "translation/") and k != VAL_MIN_MEAN}
    )
    if names:
        add_combined_column(rows, VAL_MIN_MEAN, names, np.mean)


def add_combined_column(
    rows: Sequence[dict[str, Any]], column: str, names: Sequence[str], combine: Callable[[list[Any]], Any]
) -> None:
    """Each row gains `column`, `combine` of its values under `names`, so that a reading over the
    directions is one more metric; None where one of them is missing."""
    for r in rows:
        values = [r.get(n) for n in names]
        r[column] = None if None in values else float(combine(values))
