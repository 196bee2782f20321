"""Chunk folders and results.csv: writing and reading the members' rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ...errors import UserError
from ...fileio import atomic_directory, atomic_write_json, atomic_write_text, read_json
from ...finite import require_finite_metrics
from ...workspace.presets import MemberSpec, point_label
from ..grid import COEFFICIENT_PREFIX, DOMAIN_DEPTH, DOMAIN_WIDTH, GRID_POINT, LR, WEIGHT_DECAY, size_columns
from .planning import chunk_id


@dataclass
class ChunkResult:
    members: list[MemberSpec]
    metrics: list[dict[str, float | None]]
    """Per member; None marks a metric that does not apply to the member's model family."""
    pictures: dict[str, np.ndarray]  # "a_to_b" -> (K, P, dim_b)
    weights: dict[str, torch.Tensor]
    seconds: float
    family: str
    """The model family (families.FAMILIES) the members trained."""
    validation: list[dict[str, Any]] = field(default_factory=list)
    """Every validation check of every member (`validation_rows`); empty when none was made."""


VALIDATION_CSV = "validation.csv"
"""A chunk's (and an experiment's) validation curves: one row per member and check."""


def validation_rows(
    members: Sequence[MemberSpec], checks: Sequence[tuple[int, dict[str, torch.Tensor]]]
) -> list[dict[str, Any]]:
    """One row per member and validation check: who, the step, and each direction's loss."""
    return [
        {**_member_columns(m), "step": step, **{name: float(value[k]) for name, value in metrics.items()}}
        for step, metrics in checks
        for k, m in enumerate(members)
    ]


def write_chunk(exp: Path, result: ChunkResult) -> Path:
    folder = exp / "chunks" / chunk_id(result.members)
    with atomic_directory(folder, force=True, what="chunk") as tmp:
        atomic_write_json(
            tmp / "metrics.json",
            {"seconds": result.seconds, "family": result.family, "members": result.metrics},
        )
        buf = io.BytesIO()
        np.savez(buf, **result.pictures)  # type: ignore[arg-type]
        (tmp / "pictures.npz").write_bytes(buf.getvalue())
        save_file(result.weights, str(tmp / "model.safetensors"))
        if result.validation:
            write_results_csv(tmp / VALIDATION_CSV, result.validation)
        # members.json last: its presence marks the chunk complete (the folder is renamed anyway).
        atomic_write_json(tmp / "members.json", [m.to_json() for m in result.members])
    return folder


def chunk_members(folder: Path) -> list[MemberSpec]:
    """The members a chunk trained, in the order of its weights and metrics."""
    return [MemberSpec.from_json(o) for o in read_json(folder / "members.json", "chunk members")]


def read_chunk_rows(folder: Path) -> list[dict[str, Any]]:
    """A chunk's members' rows for results.csv; a chunk whose weights are damaged is refused with
    them, so that no report names members that can no longer be loaded."""
    specs = chunk_members(folder)
    _check_weights(folder)
    metrics = read_json(folder / "metrics.json", "chunk metrics")["members"]
    require_finite_metrics(
        metrics,
        [s.label() for s in specs],
        f"{folder / 'metrics.json'}: ",
        f"delete {folder} and rerun the experiment to retrain its members",
    )
    return [{**_member_columns(s), **m} for s, m in zip(specs, metrics, strict=True)]


def _check_weights(folder: Path) -> None:
    """Read the header of the chunk's weights, which also proves the file holds every byte it names."""
    file = folder / "model.safetensors"
    try:
        with safe_open(str(file), "pt"):
            pass
    except Exception as exc:  # safetensors raises its own error types
        raise UserError(
            f"{file} is missing or corrupted ({exc}); delete {folder} and rerun the experiment to "
            "retrain its members"
        ) from exc


def _member_columns(spec: MemberSpec) -> dict[str, Any]:
    """Who a row of results.csv or validation.csv is: member, preset, N, seed and grid point."""
    return {
        "member": spec.label(),
        "preset": spec.preset,
        "paired": spec.paired,
        "seed": spec.seed,
        **_grid_columns(spec),
    }


def _grid_columns(spec: MemberSpec) -> dict[str, Any]:
    """A gridded member's point in results.csv: its label, lr, weight decay, gridded sizes and every
    coefficient."""
    if spec.grid is None:
        return {}
    return {
        GRID_POINT: point_label(spec.grid),
        LR: spec.grid[LR],
        WEIGHT_DECAY: spec.grid[WEIGHT_DECAY],
        **size_columns(spec.grid),
        **{COEFFICIENT_PREFIX + c: w for c, w in spec.coefficients.items()},
    }


TEXT_COLUMNS = (GRID_POINT, DOMAIN_WIDTH, DOMAIN_DEPTH)
"""results.csv columns of a grid that hold text, not numbers (each only where the grid has it)."""


def read_chunk_validation(folder: Path, members: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A chunk's validation curves; none for chunks written before they were kept. Each of its
    `members` (their rows, `read_chunk_rows`) scored on validation must have a curve holding the
    check whose weights it kept, so that a file cut short at a line's end is refused too."""
    path = folder / VALIDATION_CSV
    if not path.is_file():
        return []
    retrain = f"delete {folder} and rerun the experiment to retrain its members"
    rows = read_results_csv(path, retrain)
    for member in members:
        if not any(k.startswith("val_min/") for k in member):
            continue  # a model without translations has no curve
        steps = {r["step"] for r in rows if r["member"] == member["member"]}
        kept = member.get("kept_step")
        if kept is not None and kept not in steps:
            raise UserError(
                f"{path} lacks the check at step {kept:g} that {member['member']} kept: the file was cut "
                f"short or altered; {retrain}"
            )
    return rows


def write_results_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """results.csv, or validation.csv: who each row is (member, preset, N, seed, grid point), then
    every number it holds, in name order."""
    fixed = ["member", "preset", "paired", "seed"] + [c for c in TEXT_COLUMNS if any(c in r for r in rows)]
    metrics = sorted({k for r in rows for k in r if k not in fixed})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fixed + metrics, lineterminator="\n", restval="")
    writer.writeheader()
    for r in rows:
        # A metric that does not apply to a member's model (None, or absent from its row, like the
        # downstream tasks of a model without a shared space) is an empty cell, never 0 or nan.
        writer.writerow(
            {k: ("" if v is None else repr(float(v))) if k in metrics else v for k, v in r.items()}
        )
    atomic_write_text(path, buf.getvalue())


def read_results_csv(
    path: Path, fix: str = "write it again with `gw experiment reread`"
) -> list[dict[str, Any]]:
    """The rows `write_results_csv` wrote; a row cut short, one cell too many or a word where a
    number belongs is a UserError naming the line and `fix`."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} is corrupted ({exc}); {fix}") from exc
    out = []
    for line, r in enumerate(rows, start=2):
        try:
            if None in r or None in r.values():
                raise ValueError("a row cut short or with cells beyond the header")
            row: dict[str, Any] = {"member": r["member"], "preset": r["preset"]}
            row["paired"], row["seed"] = int(r["paired"]), int(r["seed"])
            row.update({k: r[k] for k in TEXT_COLUMNS if k in r})
            row.update(
                {
                    k: None if v == "" else float(v)
                    for k, v in r.items()
                    if k not in ("member", "preset", "paired", "seed", *TEXT_COLUMNS)
                }
            )
        except (KeyError, ValueError) as exc:
            raise UserError(f"{path} line {line} is corrupted ({exc}); {fix}") from None
        out.append(row)
    return out
