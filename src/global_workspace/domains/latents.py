"""Reading the precomputed latents a workspace trains on: DATA/domains/{name}/.

config.json           {"name", "kind", "latent_dim", "loss": {...}, "format_version", ...}
latents/{split}.npy   float32 (N, latent_dim), row i = example i of the dataset split
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.format import Dataset
from ..errors import UserError
from ..fileio import read_json, read_npy
from ..finite import require_finite_rows
from .latent_loss import LatentLoss

DOMAIN_FORMAT_VERSION = 1
DOMAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
"""A domain's name is one folder under DATA/domains/: never a path out of it, nor the `,` and `+`
that join names on the command line."""


@dataclass(frozen=True)
class LatentSpec:
    """What the workspace needs to know about a domain: its size and how to score it."""

    name: str
    latent_dim: int
    loss: LatentLoss


def check_domain_name(name: str, fix: str = "name a domain of DATA/domains, such as v or attr") -> str:
    """The one check of a domain's name, made before it becomes part of any path."""
    if not DOMAIN_NAME.fullmatch(name):
        raise UserError(
            f"domain name {name!r} is not a plain name (a letter or _, then letters, digits, _ or -); {fix}"
        )
    return name


def domain_folder(data: Path, name: str) -> Path:
    return Path(data) / "domains" / check_domain_name(name)


def read_spec(data: Path, name: str) -> LatentSpec:
    folder = domain_folder(data, name)
    if not folder.is_dir():
        raise UserError(
            f"domain {name!r} has not been pretrained for {data}; run `gw pretrain {data} --domains {name}`"
        )
    file = folder / "config.json"
    config = read_json(file, f"domain {name!r} config")
    fix = f"rerun `gw pretrain {data} --domains {name} --force`"
    if not isinstance(config, dict):
        raise UserError(f"domain config {file} is not a JSON object; {fix}")
    version = config.get("format_version")
    if version != DOMAIN_FORMAT_VERSION:
        raise UserError(
            f"domain {name!r} in {folder} was written by another version of gw (format {version}); {fix}"
        )
    dim, loss = config.get("latent_dim"), config.get("loss")
    if type(dim) is not int or dim < 1 or not isinstance(loss, dict):
        raise UserError(f"domain config {file} lacks a valid latent_dim and loss; {fix}")
    try:
        return LatentSpec(name=name, latent_dim=dim, loss=LatentLoss.from_json(loss))
    except (TypeError, ValueError) as exc:
        raise UserError(f"domain config {file} has an unreadable loss {loss} ({exc}); {fix}") from exc


def load_latents(data: Path, name: str, split: str, dataset: Dataset | None = None) -> np.ndarray:
    """Latents of one domain and split, checked against the domain's size and the split's length,
    and refused when they hold NaN or infinity (every metric computed from them would too)."""
    spec = read_spec(data, name)
    file = domain_folder(data, name) / "latents" / f"{split}.npy"
    latents = read_npy(
        file,
        f"latents {file} are missing; run `gw pretrain {data} --domains {name}`",
        f"latents {file} are corrupted",
        f"rerun `gw pretrain {data} --force`",
    )
    if latents.ndim != 2 or latents.shape[1] != spec.latent_dim or latents.dtype != np.float32:
        raise UserError(
            f"latents {file} have {latents.dtype} {latents.shape}, the {name!r} model has latent size "
            f"{spec.latent_dim}; rerun `gw pretrain {data} --domains {name} --force`"
        )
    if dataset is not None and latents.shape[0] != dataset.info.splits[split]:
        raise UserError(
            f"latents {file} have {latents.shape[0]} rows but split {split!r} has "
            f"{dataset.info.splits[split]} examples; rerun `gw pretrain {data} --domains {name} --force`"
        )
    require_finite_rows(latents, f"latents {file}", f"rerun `gw pretrain {data} --domains {name} --force`")
    return latents
