"""The "fused inputs" part of a semi-supervision experiment report: two domains in at once against
the better of them alone, for every preset that fuses (workspace/fusion_eval.py's metrics).

results.csv holds, per member, fusion/{a}+{b}_to_{c}/latent_mse and .../best_single_latent_mse; the
report reads them as one table per pair count, with their ratio: below 1, the pair reconstructs or
translates better than either domain alone (target `all`: the errors summed over every domain).
For models with fusion gates it also holds fusion/{a}+{b}/dims_led_by_{a}, which the report shows
as how the gates share the workspace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .report import Report

FUSED = re.compile(r"^fusion/(?P<inputs>[^/]+)_to_(?P<target>[^/]+)/latent_mse$")
LED = re.compile(r"^fusion/(?P<inputs>[^/]+)/dims_led_by_(?P<domain>[^/]+)$")


def columns_with_values(rows: Sequence[dict[str, Any]], pattern: re.Pattern[str]) -> list[str]:
    """The columns matching `pattern` that some row has a value for, sorted."""
    return sorted({k for r in rows for k, v in r.items() if v is not None and pattern.match(k)})


def fused_table(rows: Sequence[dict[str, Any]], presets: Sequence[str], paired: int) -> list[list[Any]]:
    """Rows [preset, "a+b → c", fused, better single, median of the members' fused / single]."""
    out: list[list[Any]] = []
    for preset in presets:
        members = [r for r in rows if r["preset"] == preset and r["paired"] == paired]
        for key in columns_with_values(members, FUSED):
            single_key = key.replace("/latent_mse", "/best_single_latent_mse")
            both = [r for r in members if r.get(key) is not None and r.get(single_key) is not None]
            if not both:
                continue
            fused = np.array([float(r[key]) for r in both])
            single = np.array([float(r[single_key]) for r in both])
            match = FUSED.match(key)
            assert match is not None
            label = f"{match['inputs']} → {match['target']}"
            out.append(
                [
                    preset,
                    label,
                    float(np.median(fused)),
                    float(np.median(single)),
                    float(np.median(fused / single)),
                ]
            )
    return out


def gate_share_table(rows: Sequence[dict[str, Any]], presets: Sequence[str], paired: int) -> list[list[Any]]:
    """Rows [preset, "a+b", "a: m / b: m'"]: the median number of workspace dimensions each domain
    of the pair leads (fusion gates)."""
    out: list[list[Any]] = []
    for preset in presets:
        members = [r for r in rows if r["preset"] == preset and r["paired"] == paired]
        led: dict[str, list[str]] = {}
        for key in columns_with_values(members, LED):
            match = LED.match(key)
            assert match is not None
            median = float(np.median([float(r[key]) for r in members if r.get(key) is not None]))
            led.setdefault(match["inputs"], []).append(f"{match['domain']}: {median:g}")
        out.extend([preset, inputs, " / ".join(shares)] for inputs, shares in led.items())
    return out


def add_fused_inputs_section(
    report: Report, rows: Sequence[dict[str, Any]], presets: Sequence[str], paired: Sequence[int]
) -> None:
    """A heading and one table per pair count, when some preset was scored on fused inputs."""
    if not columns_with_values(rows, FUSED):
        return
    report.heading("Fused inputs")
    report.text(
        "Two domains enter the workspace at once (equal selection weights, reweighed per dimension by "
        "a model's fusion gates) and every domain is decoded from the fused state, against the better "
        "of the two domains alone. A ratio below 1: the pair does better than either domain alone. "
        "The target `all` sums the errors over every domain: the fused state as a whole, read by every "
        "decoder at once, against the better of the two domains' own states."
    )
    for n in paired:
        table = fused_table(rows, presets, n)
        if table:
            report.table(
                ["preset", "inputs → target", "fused", "better single", "fused / single"],
                table,
                caption=f"Test latent MSE at N = {n} (medians over seeds; the ratio is the median of "
                "each member's).",
            )
        shares = gate_share_table(rows, presets, n)
        if shares:
            report.table(
                ["preset", "inputs", "dimensions led"],
                shares,
                caption=f"How the fusion gates share the workspace at N = {n}: the dimensions on which "
                "each domain outweighs the other when both enter with equal weights (medians over seeds).",
            )
