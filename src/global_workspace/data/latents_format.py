"""Your own latents (a public interface): one collection per domain and a list of pairs across them.

DATA/latents.json                        {"format": "gw-latents", "format_version": 1,
                                          "domains": {name: latent_dim},
                                          "splits": {split: {"rows": {name: N}, "pairs": P}}}
DATA/domains/{name}/latents/{split}.npy  float32 (N, latent_dim): each domain has its own length
DATA/domains/{name}/config.json          kind "latents": what the workspace reads of a domain
DATA/pairs/{split}.npy                   int64 (P, n_domains): one row per paired example, one column
                                         per domain in latents.json order holding its row in that
                                         domain's split, -1 where absent; two domains or more per
                                         row, no row twice

Row-aligned datasets (`gw pretrain` on `gw data simple-shapes`) are the case where the pairs are
the identity (`identity_pairs`); they keep their own layout, sampler and bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..domains.latents import domain_folder
from ..errors import UserError
from ..fileio import read_json, read_npy
from ..finite import require_finite_rows

LATENTS_FORMAT = "gw-latents"
LATENTS_FORMAT_VERSION = 1
INFO_FILE = "latents.json"
REBUILD = "rebuild the folder with `gw data latents`"


@dataclass(frozen=True)
class LatentsInfo:
    """What latents.json records: the domains in column order, and every split's sizes."""

    domains: dict[str, int]
    """name -> latent_dim, in the order of the pair columns."""
    rows: dict[str, dict[str, int]]
    """split -> domain -> number of latents."""
    pairs: dict[str, int]
    """split -> number of pair rows."""

    @property
    def splits(self) -> list[str]:
        return list(self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LATENTS_FORMAT,
            "format_version": LATENTS_FORMAT_VERSION,
            "domains": dict(self.domains),
            "splits": {s: {"rows": dict(self.rows[s]), "pairs": self.pairs[s]} for s in self.rows},
        }

    @classmethod
    def from_json(cls, obj: Any, where: Path) -> LatentsInfo:
        if not isinstance(obj, dict) or obj.get("format") != LATENTS_FORMAT:
            raise UserError(f"{where} does not describe {LATENTS_FORMAT!r} latents; {REBUILD}")
        if obj.get("format_version") != LATENTS_FORMAT_VERSION:
            raise UserError(
                f"{where} has format_version {obj.get('format_version')}, this version of gw reads "
                f"{LATENTS_FORMAT_VERSION}; {REBUILD}"
            )
        try:
            domains = {str(k): int(v) for k, v in obj["domains"].items()}
            splits = obj["splits"]
            rows = {str(s): {str(d): int(n) for d, n in v["rows"].items()} for s, v in splits.items()}
            pairs = {str(s): int(v["pairs"]) for s, v in splits.items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{where} is not a valid {INFO_FILE} ({exc!r}); {REBUILD}") from exc
        if any(dim < 1 for dim in domains.values()) or any(list(r) != list(domains) for r in rows.values()):
            raise UserError(f"{where} gives a domain no latent size or a split other domains; {REBUILD}")
        return cls(domains=domains, rows=rows, pairs=pairs)


def is_own_latents(data: Path | str) -> bool:
    """Whether DATA holds latents in this format (rather than a row-aligned dataset)."""
    return (Path(data) / INFO_FILE).is_file()


def read_info(data: Path | str) -> LatentsInfo:
    file = Path(data) / INFO_FILE
    return LatentsInfo.from_json(read_json(file, "latents description"), file)


def check_latents(array: np.ndarray, dim: int, what: str, fix: str) -> None:
    """Refuse latents that are not a non-empty float32 (N, dim) array of finite values, dim >= 1."""
    if array.ndim == 2 and array.shape[1] == 0:
        raise UserError(
            f"{what} holds latents of width 0 {array.shape}; a latent needs at least one number; {fix}"
        )
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[1] != dim:
        want = dim if dim > 0 else "dim"
        raise UserError(f"{what} holds {array.dtype} {array.shape}, expected float32 (N, {want}); {fix}")
    if array.shape[0] == 0:
        raise UserError(f"{what} is empty; every split needs at least one example; {fix}")
    require_finite_rows(array, what, fix)


def check_pairs(pairs: np.ndarray, rows: Mapping[str, int], what: str, fix: str) -> None:
    """Refuse pairs that are not int64 (P, n_domains) rows of in-range indices (-1: absent) pairing
    at least two domains, each row once; `rows` gives each domain's length in column order."""
    names, sizes = list(rows), np.array(list(rows.values()), dtype=np.int64)
    if pairs.dtype != np.int64 or pairs.ndim != 2 or pairs.shape[1] != len(names):
        raise UserError(
            f"{what} holds {pairs.dtype} {pairs.shape}, expected int64 (P, {len(names)}): one column per "
            f"domain ({', '.join(names)}); {fix}"
        )
    bad = (pairs < -1) | (pairs >= sizes)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise UserError(
            f"{what} row {row} gives {names[col]!r} index {int(pairs[row, col])}, outside -1 (absent) to "
            f"{int(sizes[col]) - 1}; {fix}"
        )
    lonely = (pairs >= 0).sum(axis=1) < 2
    if lonely.any():
        raise UserError(
            f"{what} row {int(np.argmax(lonely))} pairs fewer than two domains; a pair needs two; {fix}"
        )
    if len(pairs):
        _, first, counts = np.unique(pairs, axis=0, return_index=True, return_counts=True)
        if (counts > 1).any():
            row = int(first[counts > 1].min())
            raise UserError(f"{what} holds row {row} ({pairs[row].tolist()}) more than once; {fix}")


def identity_pairs(n: int, n_domains: int) -> np.ndarray:
    """The pairs of a row-aligned split of n examples: row i pairs example i of every domain."""
    return np.repeat(np.arange(n, dtype=np.int64)[:, None], n_domains, axis=1)


def load_npy(
    file: Path, what: str, missing: str = f"is missing; {REBUILD}", fix: str = REBUILD
) -> np.ndarray:
    """An .npy array (never a pickle); a missing or unreadable file is a UserError."""
    return read_npy(file, f"{what} {file} {missing}", f"{what} {file} is corrupted or not an .npy array", fix)


def load_domain_latents(data: Path, info: LatentsInfo, name: str, split: str) -> np.ndarray:
    """One domain's latents of a split, checked against latents.json."""
    file = domain_folder(data, name) / "latents" / f"{split}.npy"  # a plain name, never a path
    array = load_npy(file, "latents")
    check_latents(array, info.domains[name], f"latents {file}", REBUILD)
    if array.shape[0] != info.rows[split][name]:
        raise UserError(
            f"latents {file} have {array.shape[0]} rows, {INFO_FILE} says {info.rows[split][name]}; {REBUILD}"
        )
    return array


def load_pairs(data: Path, info: LatentsInfo, split: str) -> np.ndarray:
    """The pairs of a split, checked against latents.json and the domains' lengths."""
    file = Path(data) / "pairs" / f"{split}.npy"
    pairs = load_npy(file, "pairs")
    check_pairs(pairs, info.rows[split], f"pairs {file}", REBUILD)
    if pairs.shape[0] != info.pairs[split]:
        raise UserError(
            f"pairs {file} have {pairs.shape[0]} rows, {INFO_FILE} says {info.pairs[split]}; {REBUILD}"
        )
    return pairs


def select_pairs(pairs: np.ndarray, info: LatentsInfo, domains: list[str]) -> np.ndarray:
    """The pair columns of `domains` (in that order), keeping the rows that still pair two of them."""
    order = list(info.domains)
    chosen = pairs[:, [order.index(d) for d in domains]]
    return chosen[(chosen >= 0).sum(axis=1) >= 2]


def validate_folder(data: Path | str) -> LatentsInfo:
    """Open DATA's latents.json and check every latent and pair file it names."""
    data = Path(data)
    info = read_info(data)
    for split in info.splits:
        for name in info.domains:
            load_domain_latents(data, info, name, split)
        load_pairs(data, info, split)
    return info
