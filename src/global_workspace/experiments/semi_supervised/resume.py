"""The EXP folder: created afresh, or resumed with the members its finished chunks hold."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ...data.format import SPLITS
from ...domains.latents import read_spec
from ...errors import UserError
from ...fileio import atomic_write_json, read_json, refuse_foreign, remove_output
from ...locking import exclusive_output
from ...memory import latent_bytes, require_fits, training_bytes
from ...workspace.data import check_same_latents, train_fingerprint
from ...workspace.families import FAMILIES, Family, family_of
from ...workspace.presets import MemberSpec
from .config import ExperimentConfig
from .planning import chunk_workspace, plan_chunks
from .results_io import VALIDATION_CSV, chunk_members, read_chunk_rows, read_chunk_validation


def read_experiment(exp: Path) -> ExperimentConfig:
    """The settings of experiment folder `exp`, read the same way by every command that uses one:
    a folder that is no experiment, or a damaged experiment.json, is one line naming it."""
    meta = exp / "experiment.json"
    if not meta.is_file():
        raise UserError(
            f"{exp} is not an experiment folder (it has no {meta.name}); name the --out folder of "
            "`gw experiment semi-supervised`"
        )
    stored = read_json(meta, "experiment settings")  # a damaged file is its own one-line error
    try:
        return ExperimentConfig.from_json(stored["config"])
    except UserError as exc:
        raise UserError(f"{meta} holds settings this version refuses: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{meta} does not hold an experiment's settings ({exc!r})") from exc


def check_experiment_data(exp: Path, config: ExperimentConfig, data: Path, option: str) -> None:
    """Refuse a dataset folder without the train latents experiment `exp` learnt from, or with
    others; `option` is how the caller is told another folder (`--data`, `data=`)."""
    try:
        now = train_fingerprint(data, config.domains)
    except OSError:
        raise UserError(
            f"{data} holds no train latents of {', '.join(config.domains)}; if the dataset moved, pass "
            f"its folder as {option}"
        ) from None
    check_same_latents(
        config.data_fingerprint, now, f"experiment {exp}", str(data), f"pass the folder of those as {option}"
    )


def finished_members(exp: Path) -> dict[str, tuple[Path, int]]:
    """member id -> (chunk folder, position in it) for every chunk written completely."""
    done: dict[str, tuple[Path, int]] = {}
    root = exp / "chunks"
    if not root.is_dir():
        return done
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for i, spec in enumerate(chunk_members(folder)):
            done[spec.label()] = (folder, i)
    return done


def chunk_weights(chunk: Path) -> dict[str, torch.Tensor]:
    """The trained ensemble of a chunk: every member's kept weights, stacked on the first dimension."""
    try:
        return load_file(str(chunk / "model.safetensors"))
    except Exception as exc:  # safetensors raises its own error types
        raise UserError(f"{chunk / 'model.safetensors'} is missing or corrupted ({exc})") from exc


def chunk_family(chunk: Path, members: list[MemberSpec]) -> Family:
    """The model family a chunk trained; chunks written before members carried theirs name it in
    metrics.json (their members.json named a defined preset's wrongly)."""
    name = read_json(chunk / "metrics.json", "chunk metrics").get("family", family_of(members).name)
    if name not in FAMILIES:
        raise UserError(f"{chunk / 'metrics.json'} names an unknown model family {name!r}")
    return FAMILIES[name]


def stored_validation(exp: Path, members: Sequence[str]) -> list[dict[str, Any]]:
    """The validation curves of `members` (results_io.validation_rows), member by member in their
    order, for the chunks that kept them."""
    where = finished_members(exp)
    chunks = {
        folder: read_chunk_rows(folder) for folder in sorted({where[m][0] for m in members if m in where})
    }
    _refuse_a_lost_curve_file(exp, chunks)
    order = {m: i for i, m in enumerate(members)}
    rows = [r for f, rows in chunks.items() for r in read_chunk_validation(f, rows) if r["member"] in order]
    return sorted(rows, key=lambda r: (order[r["member"]], r["step"]))


def _refuse_a_lost_curve_file(exp: Path, chunks: Mapping[Path, Sequence[dict[str, Any]]]) -> None:
    """Chunks written before curves were kept have none; but where the other chunks of `exp` that
    scored on validation have their curves, one without is a file lost, not an older chunk."""
    scored = [f for f, rows in chunks.items() if any(k.startswith("val_min/") for r in rows for k in r)]
    lost = [f for f in scored if not (f / VALIDATION_CSV).is_file()]
    if lost and len(lost) < len(scored):
        raise UserError(
            f"{lost[0]} has no {VALIDATION_CSV} while the other chunks of {exp} have theirs: the file "
            f"was lost; delete {lost[0]} and rerun the experiment to retrain its members"
        )


def stored_rows(exp: Path) -> dict[str, dict[str, Any]]:
    """member id -> its row (results_io.read_chunk_rows), for every chunk written completely."""
    folders = sorted({folder for folder, _ in finished_members(exp).values()})
    return {r["member"]: r for folder in folders for r in read_chunk_rows(folder)}


def claim_folder(
    exp: Path, config: ExperimentConfig, device: torch.device, world: int, held: contextlib.ExitStack
) -> None:
    """Before anything is loaded: refuse an experiment whose largest ensemble cannot fit on
    `device`, then lock EXP for the rest of `held` (refused while another process writes it)."""
    chunks = plan_chunks(config.members(), config, parts=world)
    dims = {d: read_spec(Path(config.data), d).latent_dim for d in config.domains}

    sizes = [(chunk_workspace(c, config, dims), len(c)) for c in chunks]
    need, workspace, members = max(
        ((training_bytes(w, k, config.train.batch_size), w, k) for w, k in sizes), key=lambda t: t[0]
    )
    require_fits(
        need + latent_bytes(config.data, config.domains, SPLITS),
        device,
        f"training ensembles of {members} members of width {workspace.width}",
        "lower --max-members, or use a smaller --width (--grid-width) or --batch-size",
    )
    held.enter_context(exclusive_output(exp))


def prepare_folder(exp: Path, config: ExperimentConfig, force: bool) -> list[str]:
    """Create EXP, or resume an unfinished EXP of the same experiment; returns the ids of the
    members already done (read once, on rank 0, so every rank plans from the same list).

    An EXP that holds a finished experiment or another experiment is refused unless `force`, which
    starts afresh; one that holds something else is refused even then.
    """
    meta = exp / "experiment.json"
    refuse_foreign(exp, meta.name, "experiment folder")
    if exp.exists() and not force:
        if not meta.is_file():
            raise UserError(
                f"{exp} already exists and is not an experiment folder; pass --force to overwrite it"
            )
        stored = read_json(meta, "experiment settings")
        old, new = dict(stored.get("identity") or {}), config.identity()
        check_same_latents(
            old.pop("data_fingerprint", None),
            new.pop("data_fingerprint"),
            str(exp),
            config.data,
            "resume it with its own data, or pass --force to start over",
        )
        if old != new:
            differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            stored = [f"{k} {old[k]}" if isinstance(old.get(k), int | float | str) else k for k in differ]
            raise UserError(
                f"{exp} holds an experiment with other settings (it stored {', '.join(stored)}); use "
                "the same settings to resume it, or pass --force to overwrite it"
            )
        if (exp / "results.csv").is_file():
            raise UserError(f"{exp} already holds a finished experiment; pass --force to overwrite it")
        return sorted(finished_members(exp))
    remove_output(exp)
    exp.mkdir(parents=True)
    atomic_write_json(meta, {"config": config.to_json(), "identity": config.identity(), "command": sys.argv})
    return []
