"""`gw pretrain`: train each requested specialist alone, freeze it, and store its mean latents.

For every domain, in the order asked: reuse DATA/domains/{name}/ when it exists and is sound
(unless `force`), else fit, save and encode every split inside a temporary folder that replaces
the old one only when everything succeeded. Nothing here names a domain: each one's `fit` knows
what it trains.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.format import Dataset, load_dataset
from ..device import resolve_device
from ..errors import UserError
from ..fileio import atomic_directory, atomic_save_npy, atomic_write_json, read_json
from .base import Domain
from .latents import domain_folder, load_latents, read_spec
from .registry import domain_class
from .store import dataset_fingerprint, move_to, write_config
from .training import FitSettings

DEFAULT_DOMAINS = ("v", "attr", "t")
STEP_KEYS = ("v", "probe", "t", "caption")
"""Models whose step count --steps sets: the visual VAE, the image probe, the text VAE and the
caption decoder."""


@dataclass(frozen=True)
class PretrainConfig:
    """Options of `gw pretrain`."""

    domains: tuple[str, ...] = DEFAULT_DOMAINS
    steps: dict[str, int] = field(default_factory=dict)
    """Steps per model (keys STEP_KEYS); missing keys use each model's default."""
    batch_size: int = 128
    device: str = "auto"
    seed: int = 0
    force: bool = False
    progress: bool = True


def parse_steps(text: str | None) -> dict[str, int]:
    """ "2000" (every model) or "v=3000,probe=1500,t=2000,caption=3000" -> {model: steps}."""
    if text is None or not text.strip():
        return {}
    try:
        if "=" not in text:
            return dict.fromkeys(STEP_KEYS, int(text))
        out = {}
        for item in text.split(","):
            key, value = item.split("=")
            if key.strip() not in STEP_KEYS:
                raise UserError(f"--steps names unknown model {key.strip()!r}; use {', '.join(STEP_KEYS)}")
            out[key.strip()] = int(value)
    except ValueError as exc:
        raise UserError(f"cannot read --steps {text!r}: give N or v=N,probe=N,t=N,caption=N") from exc
    if any(v < 1 for v in out.values()):
        raise UserError(f"--steps {text!r}: every step count must be at least 1")
    return out


def parse_domains(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UserError("--domains is empty; name at least one of " + ", ".join(DEFAULT_DOMAINS))
    for name in names:
        domain_class(name)  # unknown names fail before any work
    return names


def check_existing(data: Path, name: str, dataset: Dataset) -> None:
    """A reusable domain folder: same format version, same dataset, latents of every split."""
    read_spec(data, name)
    config = read_json(domain_folder(data, name) / "config.json", f"domain {name!r} config")
    if config.get("dataset") != dataset_fingerprint(dataset):
        raise UserError(
            f"domain {name!r} in {domain_folder(data, name)} was trained on another dataset; "
            f"rerun `gw pretrain {data} --domains {name} --force`"
        )
    for split in dataset.info.splits:
        load_latents(data, name, split, dataset)


def pretrain(data: Path, config: PretrainConfig) -> dict[str, dict[str, Any]]:
    """Train and store every domain of `config.domains`; returns each domain's metrics."""
    data = Path(data)
    dataset = load_dataset(data)
    device = resolve_device(config.device)
    classes = {name: domain_class(name) for name in config.domains}
    results: dict[str, dict[str, Any]] = {}
    for name, cls in classes.items():
        folder = domain_folder(data, name)
        if folder.exists() and not config.force:
            check_existing(data, name, dataset)
            _say(f"{name}: reusing {folder} (pass --force to retrain)")
            results[name] = read_json(folder / "metrics.json", f"domain {name!r} metrics")
            continue
        _say(f"{name}: training on {device}")
        with atomic_directory(folder, force=True, what=f"domain {name!r}") as tmp:
            results[name] = _build(cls(name=name), dataset, config, str(device), tmp)
        _say(f"{name}: wrote {folder}")
    return results


def _build(
    domain: Domain, dataset: Dataset, config: PretrainConfig, device: str, out: Path
) -> dict[str, Any]:
    """Fit, save, encode every split and write config.json / metrics.json into `out`."""
    settings = FitSettings(
        folder=out,
        steps=dict(config.steps),
        batch_size=config.batch_size,
        device=device,
        seed=config.seed,
        progress=config.progress,
    )
    start = time.perf_counter()
    move_to(domain, device)
    metrics: dict[str, Any] = dict(domain.fit(dataset, settings))
    domain.save(out)
    encode_start = time.perf_counter()
    for split in dataset.info.splits:
        latents = domain.encode(domain.raw(dataset.split(split))).detach().cpu().numpy().astype(np.float32)
        expected = (dataset.info.splits[split], domain.latent_dim)
        if latents.shape != expected:
            raise RuntimeError(
                f"domain {domain.name!r} encoded split {split} to {latents.shape}, not {expected}"
            )
        atomic_save_npy(out / "latents" / f"{split}.npy", latents)
    metrics["encode_seconds"] = time.perf_counter() - encode_start
    metrics["total_seconds"] = time.perf_counter() - start
    metrics["device"] = device
    run = {k: v for k, v in asdict(config).items() if k not in ("force", "progress")}
    write_config(out, domain, dataset, {"pretrain": {**run, "device": device, "command": sys.argv}})
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _say(text: str) -> None:
    print(f"gw pretrain: {text}", file=sys.stderr, flush=True)
