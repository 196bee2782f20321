"""Building an own-latents folder (latents_format.py) from a user's arrays: `gw data latents`.

Everything is checked before anything is written, and the folder appears whole or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..domains.given import GivenLatents
from ..domains.latent_loss import LatentLoss
from ..domains.latents import check_domain_name
from ..domains.raw_files import parse_split_files
from ..domains.store import write_config
from ..errors import UserError
from ..fileio import atomic_write_json, refuse_overlap
from ..locking import locked_atomic_directory
from .latents_format import INFO_FILE, LatentsInfo, check_latents, check_pairs, load_npy

"""The splits of `--domain NAME=TRAIN[,VAL,TEST]`, in the order its files are given."""


def build_latents(
    out: Path | str,
    domains: Mapping[str, Mapping[str, np.ndarray]],
    pairs: Mapping[str, np.ndarray],
    force: bool = False,
    losses: Mapping[str, LatentLoss] | None = None,
) -> LatentsInfo:
    """Write OUT from domains {name: {split: float32 (N, dim)}} (the pair columns in this order)
    and pairs {split: int64 (P, n_domains)}; a split without pairs gets an empty list. Refuses,
    with a UserError naming the fix, anything the format does not allow. `losses` keeps a domain's
    latent loss (a one-hot block scored by cross-entropy); the others are plain MSE."""
    info = _check(domains, pairs)
    losses = losses or {}
    names = list(info.domains)
    with locked_atomic_directory(Path(out), force, "latents folder", marker=INFO_FILE) as tmp:
        for name in names:
            folder = tmp / "domains" / name
            (folder / "latents").mkdir(parents=True)
            for split, array in domains[name].items():
                np.save(folder / "latents" / f"{split}.npy", array)
            domain = GivenLatents(name, info.domains[name])
            domain.loss = losses.get(name, LatentLoss())
            write_config(folder, domain)
        (tmp / "pairs").mkdir()
        for split in info.splits:
            rows = pairs.get(split, np.zeros((0, len(names)), dtype=np.int64))
            np.save(tmp / "pairs" / f"{split}.npy", rows)
        atomic_write_json(tmp / INFO_FILE, info.to_json())
    return info


def _check(domains: Mapping[str, Mapping[str, np.ndarray]], pairs: Mapping[str, np.ndarray]) -> LatentsInfo:
    fix = "give float32 (N, dim) arrays of finite values, at least one row per split"
    if len(domains) < 2:
        raise UserError(f"a latents folder needs at least two domains, got {len(domains)}; add --domain")
    names = [check_domain_name(n, "name each --domain with a plain name") for n in domains]
    splits = list(next(iter(domains.values())))
    dims: dict[str, int] = {}
    for name in names:
        given = domains[name]
        if list(given) != splits:
            raise UserError(
                f"domain {name!r} has splits {', '.join(given)}, {names[0]!r} has {', '.join(splits)}; "
                "give every domain the same splits"
            )
        first = next(iter(given.values()))
        dims[name] = int(first.shape[1]) if first.ndim == 2 else 0
        for split, array in given.items():
            check_latents(array, dims[name], f"domain {name!r} split {split!r}", fix)
    unknown = sorted(set(pairs) - set(splits))
    if unknown:
        raise UserError(
            f"pairs are given for split {unknown[0]!r}, which no domain has; use {', '.join(splits)}"
        )
    rows = {s: {n: int(domains[n][s].shape[0]) for n in names} for s in splits}
    for split, array in pairs.items():
        what = f"pairs of split {split!r}"
        check_pairs(array, rows[split], what, "give one column per domain in --domain order, -1 where absent")
        if array.shape[0] == 0:
            raise UserError(f"{what} are empty; leave the split's --pairs out instead")
    counts = {s: int(pairs[s].shape[0]) if s in pairs else 0 for s in splits}
    return LatentsInfo(domains=dims, rows=rows, pairs=counts)


def parse_pairs_option(text: str) -> tuple[str, Path]:
    """`SPLIT=FILE(.npy|.csv)` -> (split, file)."""
    split, sep, file = text.partition("=")
    if not sep or not split.strip() or Path(file.strip()).suffix.lower() not in (".npy", ".csv"):
        raise UserError(f"--pairs {text!r}: write SPLIT=FILE.npy or SPLIT=FILE.csv, e.g. train=pairs.csv")
    return split.strip(), Path(file.strip())


def read_npy(file: Path, what: str) -> np.ndarray:
    return load_npy(file, what, "does not exist; name an existing .npy file", "save it with numpy.save")


MAX_INDEX = 2**62
"""Larger than any split; a larger CSV index would not fit the pairs' int64 array."""


def read_pairs_csv(file: Path, names: Sequence[str]) -> np.ndarray:
    """One pair per line, one integer column per domain, an empty cell or -1 where absent; columns
    come in `names` order, or in the order a first line of names (a header) gives."""
    if not file.is_file():
        raise UserError(f"pairs {file} does not exist; name an existing .csv file")
    try:
        lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise UserError(f"pairs {file} is not UTF-8 text ({exc}); save it as plain UTF-8 CSV") from None
    order, first_number = list(range(len(names))), 1
    if lines and not any(_is_index(c.strip()) for c in lines[0].split(",")):
        order, first_number = _header_order(file, lines[0], names), 2
        lines = lines[1:]
    rows = []
    for number, line in enumerate(lines, start=first_number):
        cells = [c.strip() for c in line.split(",")]
        if not all(_is_index(c) for c in cells):
            raise UserError(
                f"pairs {file} line {number} ({line!r}) is not whole numbers; give one index per domain "
                f"({', '.join(names)}), empty or -1 where absent"
            )
        if len(cells) != len(names):
            raise UserError(
                f"pairs {file} line {number} has {len(cells)} columns; give one per domain "
                f"({', '.join(names)})"
            )
        row = [int(cells[column]) if cells[column] else -1 for column in order]
        if any(abs(index) > MAX_INDEX for index in row):
            raise UserError(f"pairs {file} line {number} ({line!r}) holds an index beyond any split's size")
        rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(names))


def _is_index(cell: str) -> bool:
    return not cell or re.fullmatch(r"-?[0-9]+", cell) is not None


def _header_order(file: Path, line: str, names: Sequence[str]) -> list[int]:
    """The column of each domain named by a header line, which may list them in any order."""
    header = [c.strip() for c in line.split(",")]
    if sorted(header) != sorted(names):
        raise UserError(
            f"pairs {file} line 1 ({line!r}) reads as a header but does not name each domain once "
            f"({', '.join(names)}); name them, in any order, or give whole numbers"
        )
    return [header.index(name) for name in names]


def build_from_options(out: Path, domain: Sequence[str], pairs: Sequence[str], force: bool) -> LatentsInfo:
    """`gw data latents OUT --domain ... --pairs ...`: read the named files, then `build_latents`."""
    files: dict[str, dict[str, Path]] = {}
    for text in domain:
        name, given = parse_split_files(text, "--domain", "NAME=TRAIN.npy[,VAL.npy,TEST.npy]")
        if name in files:
            raise UserError(f"--domain {name!r} is given twice; name each domain once")
        files[name] = given
    pair_files: dict[str, Path] = {}
    for text in pairs:
        split, file = parse_pairs_option(text)
        if split in pair_files:
            raise UserError(f"--pairs {split!r} is given twice; give one file per split")
        pair_files[split] = file
    inputs = {f"{name} {split} file": f for name, g in files.items() for split, f in g.items()}
    refuse_overlap(out, {**inputs, **{f"{s} pairs file": f for s, f in pair_files.items()}}, "latents folder")
    arrays = {
        name: {split: read_npy(f, f"domain {name!r} {split} latents") for split, f in given.items()}
        for name, given in files.items()
    }
    pair_arrays = {
        split: read_npy(f, "pairs") if f.suffix.lower() == ".npy" else read_pairs_csv(f, list(files))
        for split, f in pair_files.items()
    }
    return build_latents(out, arrays, pair_arrays, force)
