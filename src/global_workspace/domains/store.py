"""Saving and loading pretrained specialists: DATA/domains/{name}/.

config.json          name, kind, latent_dim, loss, format_version, settings (constructor
                     arguments), dataset (fingerprint of the dataset it was trained on)
weights.safetensors  the specialist's weights (no pickle; absent for `attr`)
metrics.json         what `fit` measured, plus timings
latents/{split}.npy  float32 (N, latent_dim) mean latents of every split
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..data.format import Dataset
from ..errors import UserError
from ..fileio import atomic_write_json, read_json
from .base import Domain
from .latents import DOMAIN_FORMAT_VERSION, domain_folder, read_spec
from .nets import TorchDomain
from .registry import domain_class


def dataset_fingerprint(dataset: Dataset) -> str:
    """A short hash of dataset.json: which dataset (name, seed, sizes, generator) a domain saw."""
    text = json.dumps(dataset.info.to_json(), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_config(
    folder: Path, domain: Domain, dataset: Dataset | None = None, extra: dict[str, Any] | None = None
) -> None:
    """The one writer of a domain's config.json; latents a user brought come from no dataset."""
    config: dict[str, Any] = {
        "name": domain.name,
        "kind": domain.kind,
        "latent_dim": domain.latent_dim,
        "loss": domain.loss.to_json(),
        "format_version": DOMAIN_FORMAT_VERSION,
        "settings": domain.config(),
    }
    if dataset is not None:
        config["dataset"] = dataset_fingerprint(dataset)
    atomic_write_json(folder / "config.json", {**config, **(extra or {})})


def move_to(domain: Domain, device: torch.device | str) -> Domain:
    """Put a domain's networks on `device` (domains without networks stay as they are)."""
    if isinstance(domain, TorchDomain):
        domain.to(device)
    return domain


def domain_from_folder(folder: Path, name: str, fix: str) -> Domain:
    """The frozen specialist a folder's config.json and weights describe, as domain `name`; a
    config this version cannot build is refused with `fix`, and weights as `load` refuses them."""
    config = read_json(folder / "config.json", f"domain {name!r} config")
    cls = domain_class(str(config.get("kind")))
    try:
        domain = cls(name=name, **config.get("settings", {}))
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"{folder / 'config.json'} does not describe a {cls.kind!r} domain of this version ({exc}); {fix}"
        ) from exc
    domain.load(folder)
    return domain


def load_domain(data: Path, name: str, device: torch.device | str = "cpu") -> Domain:
    """Rebuild a pretrained domain from config.json and its weights, frozen, on `device`.

    Refuses, with a UserError, a folder written by another format version, an unknown kind,
    settings the class does not take, and weights that are missing, corrupted or mismatched.
    """
    data = Path(data)
    spec = read_spec(data, name)
    folder = domain_folder(data, name)
    fix = f"rerun `gw pretrain {data} --domains {name} --force`"
    domain = domain_from_folder(folder, name, fix)
    if domain.latent_dim != spec.latent_dim:
        raise UserError(
            f"{folder / 'config.json'} says latent_dim {spec.latent_dim} but its settings build "
            f"{domain.latent_dim}; {fix}"
        )
    if isinstance(domain, TorchDomain):
        domain.attach(data)
    return move_to(domain, device)
