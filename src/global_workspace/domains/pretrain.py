"""`gw pretrain`: train each requested specialist alone, freeze it, and store its mean latents.

For every domain, in the order asked: reuse DATA/domains/{name}/ when it exists and is sound
(unless `force`), else fit, save and encode every split inside a temporary folder that replaces
the old one only when everything succeeded. Nothing here names a domain: each one's `fit` knows
what it trains.
"""

from __future__ import annotations

import functools
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ..data.format import Dataset, load_dataset
from ..device import resolve_device
from ..errors import UserError, require_at_least
from ..fileio import atomic_directory, atomic_save_npy, atomic_write_json, read_json, refuse_overlap
from ..finite import require_finite_rows
from ..locking import exclusive_output, shared_input
from ..say import say
from .base import Domain
from .latents import domain_folder, load_latents, read_spec
from .nets import TorchDomain
from .optimise import FitSettings
from .raw_files import RawFiles, check_raw_files, check_raw_length
from .registry import domain_class
from .resume import check_identity
from .shipped import ShippedSet, find_shipped, sha256_of
from .store import dataset_fingerprint, domain_from_folder, move_to, write_config

DEFAULT_DOMAINS = ("v", "attr", "t")
DEFAULT_BATCH_SIZE = 128
DEFAULT_SEED = 0
STEP_KEYS = ("v", "probe", "blur", "t", "caption")
"""Models (or stages) whose step count --steps sets: the visual VAE, the image probe, the probe's
training on under blur, the text VAE and the caption decoder."""
KEEPS = ("v",)
"""Models that `--steps MODEL=0` may leave untrained, keeping the weights of `--init`: the visual VAE
(to train only its image probe)."""
SKIPPABLE = ("blur",)
"""Stages that `--steps STAGE=0` leaves out."""


@dataclass(frozen=True)
class PretrainConfig:
    """Options of `gw pretrain`."""

    domains: tuple[str, ...] = DEFAULT_DOMAINS
    steps: dict[str, int] = field(default_factory=dict)
    """Steps per model (keys STEP_KEYS); missing keys use each model's default."""
    batch_size: int | None = None
    """None: DEFAULT_BATCH_SIZE. A value given must match an existing domain's to reuse it."""
    device: str = "auto"
    seed: int | None = None
    """None: DEFAULT_SEED. A value given must match an existing domain's to reuse it."""
    force: bool = False
    progress: bool = True
    from_scratch: bool = False
    """Train even where a shipped specialist fits the dataset (shipped.py)."""
    raw: RawFiles = field(default_factory=dict)
    """domain -> split -> file: what the domain encodes for that split instead of `raw(split)`."""
    init: dict[str, Path] = field(default_factory=dict)
    """domain -> a folder holding a specialist of its kind (DATA/domains/{name} of another run, or a
    shipped one) whose weights it trains on from, instead of a fresh initialisation."""
    lr: dict[str, float] = field(default_factory=dict)
    """Peak learning rate per model (keys STEP_KEYS); missing keys use each model's own."""

    @property
    def train_batch_size(self) -> int:
        return DEFAULT_BATCH_SIZE if self.batch_size is None else self.batch_size

    @property
    def train_seed(self) -> int:
        return DEFAULT_SEED if self.seed is None else self.seed

    @property
    def trains(self) -> str:
        """Why shipped specialists are not used ("" when they are): training was asked for."""
        if self.from_scratch:
            return "--from-scratch"
        given = [
            option
            for option, value in (
                ("--steps", self.steps),
                ("--batch-size", self.batch_size),
                ("--seed", self.seed),
                ("--init", self.init),
                ("--lr", self.lr),
            )
            if value not in (None, {})
        ]
        return " and ".join(given) + " given" if given else ""


def parse_steps(text: str | None, option: str = "--steps", keeps: tuple[str, ...] = KEEPS) -> dict[str, int]:
    """ "2000" (every model) or "v=3000,probe=1500,blur=1500,t=2000,caption=3000" -> {model: steps};
    `keeps` are the models that may take 0 steps (with `--init`, where the command has it)."""
    if text is None or not text.strip():
        return {}
    form = "N or v=N,probe=N,blur=N,t=N,caption=N"
    if "=" in text:
        out = _per_model(text, option, int, form)
    else:
        try:
            out = dict.fromkeys(STEP_KEYS, int(text))
        except ValueError as exc:
            raise UserError(f"cannot read {option} {text!r}: give {form}") from exc
    check_steps(out, option, keeps)
    return out


def parse_lr(text: str | None) -> dict[str, float]:
    """ "v=5e-4,probe=1e-3" -> {model: peak learning rate}."""
    if text is None or not text.strip():
        return {}
    out = _per_model(text, "--lr", float, "v=LR,probe=LR,blur=LR,t=LR,caption=LR")
    for model, lr in out.items():
        _check_model(model, "--lr")
        if not lr > 0 or lr == float("inf"):
            raise UserError(f"--lr {model}={lr}: a learning rate must be a positive number")
    return out


T = TypeVar("T")


def _per_model(text: str, option: str, convert: Callable[[str], T], form: str) -> dict[str, T]:
    """ "v=A,probe=B" -> {"v": convert(A), "probe": convert(B)}; anything else is refused naming `form`."""
    try:
        pairs = [
            (key.strip(), convert(value)) for key, value in (item.split("=") for item in text.split(","))
        ]
    except ValueError as exc:
        raise UserError(f"cannot read {option} {text!r}: give {form}") from exc
    out: dict[str, T] = {}
    for key, value in pairs:
        if key in out:
            raise UserError(f"{option} {text!r} sets {key!r} twice; give each model once")
        out[key] = value
    return out


def _check_model(model: str, option: str) -> None:
    """Refuse a model that `option` cannot set (one not in STEP_KEYS)."""
    if model not in STEP_KEYS:
        raise UserError(f"{option} names unknown model {model!r}; use {', '.join(STEP_KEYS)}")


def parse_init(items: list[str]) -> dict[str, Path]:
    """["v=FOLDER", ...] -> {domain: folder}."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise UserError(f"cannot read --init {item!r}: give NAME=FOLDER, e.g. v=runs/old/domains/v")
        if name.strip() in out:
            raise UserError(f"--init {name.strip()!r} is given twice; name one folder per domain")
        out[name.strip()] = Path(folder.strip())
    return out


def check_steps(steps: dict[str, int], option: str = "--steps", keeps: tuple[str, ...] = ()) -> None:
    """Refuse a step count for a model that --steps does not set, or one below 1 (0 is allowed for
    the stages of SKIPPABLE, and for the models of `keeps`: they keep the weights they start from)."""
    for model, count in steps.items():
        _check_model(model, option)
        if count < 1 and not (count == 0 and model in (*keeps, *SKIPPABLE)):
            zeros = [f"{m}=0 skips that stage" for m in SKIPPABLE]
            zeros += [f"{' and '.join(f'{m}=0' for m in keeps)} only with --init"] if keeps else []
            allowed = "; ".join(zeros)
            raise UserError(f"{option} {model}={count}: every step count must be at least 1 ({allowed})")


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
    recorded = config.get("weights")
    for relative, digest in (recorded if isinstance(recorded, dict) else {}).items():
        file = domain_folder(data, name) / relative
        if not file.is_file() or sha256_of(file) != digest:
            raise UserError(
                f"domain {name!r}: {file} is missing or damaged (it does not match the hash in its "
                f"config.json); rerun `gw pretrain {data} --domains {name} --force`"
            )


def check_settings(data: Path, name: str, config: PretrainConfig) -> None:
    """Refuse to reuse a domain made with other settings than those `config` gives explicitly.

    The domain's config.json records them (`pretrain`); `trained` holds the steps of each model it
    trained, empty when it trains nothing (then no setting matters). A record without `trained`
    (written before it existed) is checked on its seed and batch size and the step counts it names.
    """
    record = read_json(domain_folder(data, name) / "config.json", f"domain {name!r} config").get("pretrain")
    if not isinstance(record, dict):
        return
    if "shipped" in record and config.trains:
        raise UserError(
            f"domain {name!r} in {domain_folder(data, name)} holds the shipped specialist "
            f"{record['shipped']!r}; pass --force with {config.trains.removesuffix(' given')} "
            f"to train one on {data}"
        )
    asked_raw = {s: str(f) for s, f in config.raw.get(name, {}).items()}
    if asked_raw and record.get("raw", {}) != asked_raw:
        raise UserError(
            f"domain {name!r} in {domain_folder(data, name)} encodes other raw data than --raw names; "
            "pass --force to encode those files, or leave --raw out to reuse it"
        )
    trained = record.get("trained")
    if trained == {}:
        return
    steps = trained if isinstance(trained, dict) else record.get("steps") or {}
    was: list[str] = []
    asked: list[str] = []
    for key, value in (("seed", config.seed), ("batch size", config.batch_size)):
        old = record.get(key.replace(" ", "_"))
        if value is not None and old is not None and old != value:
            was.append(f"{key} {old}")
            asked.append(f"{key} {value}")
    for model, value in config.steps.items():
        if model in steps and steps[model] != value:
            was.append(f"{model}={steps[model]} steps")
            asked.append(f"{model}={value} steps")
    if config.lr and record.get("lr", {}) != config.lr:
        was.append(f"learning rates {record.get('lr', 'of its own')}")
        asked.append(f"{config.lr}")
    if name in config.init and (record.get("init") or {}).get("weights") != _weight_hashes(config.init[name]):
        was.append("other starting weights")
        asked.append(f"those in {config.init[name]}")
    if was:
        raise UserError(
            f"domain {name!r} in {domain_folder(data, name)} was pretrained with {', '.join(was)}, not "
            f"{', '.join(asked)}; pass --force to retrain it, or leave those options out to reuse it"
        )


def pretrain(data: Path, config: PretrainConfig) -> dict[str, dict[str, Any]]:
    """Store every domain of `config.domains`, shipped or trained; returns each domain's metrics.

    Every domain to reuse is checked before any is trained."""
    data = Path(data)
    if config.batch_size is not None:
        require_at_least([("--batch-size", config.batch_size, 1)])
    dataset = load_dataset(data)
    # A call that only reuses what is there writes nothing, so it reads DATA beside other readers.
    writes = len(_reused(data, config)) < len(config.domains)
    with exclusive_output(data, fix=None) if writes else shared_input(data):
        device = resolve_device(config.device)
        classes = {name: domain_class(name) for name in config.domains}
        check_raw_files(config.raw, config.domains, dataset.info.splits)
        for name in config.init:
            if name not in classes:
                raise UserError(f"--init names domain {name!r}, which --domains does not train; add it")
        for model in KEEPS:
            if config.steps.get(model) == 0 and model not in config.init:
                raise UserError(
                    f"--steps {model}=0 keeps the weights of --init {model}=FOLDER, and no --init "
                    f"{model} is given; add one, or give {model} at least 1 step"
                )
        starts = {name: _starting_point(name, classes[name].kind, f) for name, f in config.init.items()}
        reuse = _reused(data, config)  # again under the lock: another process may have written one
        for name in reuse:
            check_existing(data, name, dataset)
            check_settings(data, name, config)
        for name in (name for name in config.domains if name not in reuse):
            folder = domain_folder(data, name)
            fix = f"copy them out of {folder} first, since pretraining {name} replaces it"
            refuse_overlap(folder, _files_read(config), f"domain {name!r} folder", fix)
        results: dict[str, dict[str, Any]] = {}
        for name, cls in classes.items():
            folder = domain_folder(data, name)
            if name in reuse:
                _say(f"{name}: reusing {folder} (pass --force to retrain)")
                results[name] = read_json(folder / "metrics.json", f"domain {name!r} metrics")
                continue
            shipped, why = find_shipped(dataset, cls.kind)
            if name in starts:
                _say(f"{name}: training on {device} from the weights in {config.init[name]}")
                results[name] = _train(starts[name], dataset, config, str(device), folder)
            elif shipped is not None and not config.trains:
                _say(f"{name}: using the {shipped.summary()}; --from-scratch trains one on {data} instead")
                domain = shipped.load(cls.kind, name)
                with atomic_directory(folder, force=True, what=f"domain {name!r}") as tmp:
                    results[name] = _install(domain, shipped, dataset, config, str(device), tmp)
            else:
                reason = config.trains if shipped is not None else why
                _say(f"{name}: training on {device}" + (f" ({reason})" if reason else ""))
                results[name] = _train(cls(name=name), dataset, config, str(device), folder)
            _say(f"{name}: wrote {folder}")
        return results


def _reused(data: Path, config: PretrainConfig) -> list[str]:
    """The domains already in DATA that this call reuses instead of training (none with --force)."""
    return [name for name in config.domains if domain_folder(data, name).exists() and not config.force]


def _files_read(config: PretrainConfig) -> dict[str, Path]:
    """What the command reads besides the dataset: no domain folder it replaces may hold one."""
    raw = {
        f"--raw {name} {split} file": f for name, files in config.raw.items() for split, f in files.items()
    }
    return {**raw, **{f"--init {name} folder": f for name, f in config.init.items()}}


def _starting_point(name: str, kind: str, folder: Path) -> Domain:
    """The specialist in `folder` as domain `name`, to train on from (`--init`); refused unless it is
    a specialist of the domain's kind that can train on from weights."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise UserError(
            f"--init {name}={folder}: no specialist there (no config.json); name a folder DATA/domains/"
            f"{name} written by gw pretrain, or a shipped one"
        )
    stored = read_json(config_file, f"--init {name} config")
    if not isinstance(stored, dict) or "kind" not in stored:
        raise UserError(
            f"--init {name}={folder}: its config.json is not a specialist's (a run's or an experiment's?); "
            f"name a folder DATA/domains/{name} written by gw pretrain, or a shipped one"
        )
    if stored.get("kind") != kind:
        raise UserError(
            f"--init {name}={folder} holds a specialist of kind {stored.get('kind')!r}, not {kind!r}; "
            f"name a folder of a {kind!r} specialist"
        )
    if not domain_class(kind).fine_tunes:
        raise UserError(
            f"domain {name!r} ({kind}) cannot train on from saved weights; leave out --init {name}"
        )
    return domain_from_folder(folder, name, f"name a folder written by this version of gw (--init {name})")


def _train(
    domain: Domain, dataset: Dataset, config: PretrainConfig, device: str, folder: Path
) -> dict[str, Any]:
    """Fit `domain` on the dataset (resuming from its checkpoints) and store it in `folder`."""
    checkpoints = checkpoint_folder(dataset.path, domain.name)
    if check_identity(checkpoints, _identity(domain, dataset, config)):
        _say(f"{domain.name}: resuming from the checkpoints in {checkpoints}")
    with atomic_directory(folder, force=True, what=f"domain {domain.name!r}") as tmp:
        settings = FitSettings(
            folder=tmp,
            steps=dict(config.steps),
            batch_size=config.train_batch_size,
            device=device,
            seed=config.train_seed,
            progress=config.progress,
            checkpoints=checkpoints,
            lr=dict(config.lr),
            init=config.init.get(domain.name),
        )
        start = time.perf_counter()
        move_to(domain, device)
        metrics: dict[str, Any] = dict(domain.fit(dataset, settings))
        domain.save(tmp)
        record = {
            "batch_size": settings.batch_size,
            "seed": settings.seed,
            "trained": dict(settings.trained),
            **({"lr": dict(config.lr)} if config.lr else {}),
            **({"init": _init_record(settings.init)} if settings.init is not None else {}),
        }
        metrics = _store(domain, dataset, config, device, tmp, record, metrics, start)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return metrics


def _install(
    domain: Domain, shipped: ShippedSet, dataset: Dataset, config: PretrainConfig, device: str, out: Path
) -> dict[str, Any]:
    """Copy a shipped specialist's files into `out`, score it on the dataset's test split, store it."""
    start = time.perf_counter()
    shutil.copytree(shipped.folder / domain.kind, out, dirs_exist_ok=True)
    move_to(domain, device)
    if isinstance(domain, TorchDomain):
        domain.attach(dataset.path, config.progress)
    metrics: dict[str, Any] = {"shipped": shipped.name, **domain.quality(dataset, out)}
    return _store(
        domain, dataset, config, device, out, {"shipped": shipped.name, "trained": {}}, metrics, start
    )


def _store(
    domain: Domain,
    dataset: Dataset,
    config: PretrainConfig,
    device: str,
    out: Path,
    record: dict[str, Any],
    metrics: dict[str, Any],
    start: float,
) -> dict[str, Any]:
    """Encode every split with `domain` and write config.json / metrics.json into `out`."""
    width = getattr(domain, "latent_dim", None)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise UserError(
            f"domain {domain.name!r} ({type(domain).__name__}) has latent_dim {width!r}; set it to the "
            "whole number of values its encode gives per example"
        )
    encode_start = time.perf_counter()
    files = config.raw.get(domain.name, {})
    for split in dataset.info.splits:
        if split in files:
            raw = domain.read_raw(files[split])
            check_raw_length(raw, files[split], split, dataset.info.splits[split])
        else:
            raw = domain.raw(dataset.split(split))
        latents = torch.as_tensor(domain.encode(raw)).detach().cpu().numpy().astype(np.float32)
        expected = (dataset.info.splits[split], domain.latent_dim)
        if latents.shape != expected:
            raise UserError(
                f"domain {domain.name!r} ({type(domain).__name__}) encoded split {split} to "
                f"{latents.shape}, not {expected}; fix its encode (one row of latent_dim numbers per example)"
            )
        source = f"--raw file {files[split]}" if split in files else f"split {split!r}"
        require_finite_rows(
            latents,
            f"domain {domain.name!r}'s encoding of {source}",
            "mend that example of the input (NaN or infinity in, NaN out), or the domain's encode",
        )
        atomic_save_npy(out / "latents" / f"{split}.npy", latents)
    metrics["encode_seconds"] = time.perf_counter() - encode_start
    metrics["total_seconds"] = time.perf_counter() - start
    metrics["device"] = device
    run = {
        "domains": list(config.domains),
        "steps": dict(config.steps),
        "device": device,
        "command": sys.argv,
        **record,
        **({"raw": {s: str(f) for s, f in files.items()}} if files else {}),
    }
    write_config(out, domain, dataset, {"pretrain": run, "weights": _weight_hashes(out)})
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def _weight_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every weights file below a domain folder, so a reuse can tell a damaged one."""
    return {f.relative_to(folder).as_posix(): sha256_of(f) for f in sorted(folder.rglob("*.safetensors"))}


def _init_record(folder: Path) -> dict[str, Any]:
    """Where a fine-tuned domain started: the folder, the hashes of its weights and how they were
    trained (its own record, so the chain back to a from-scratch run stays in the files)."""
    stored = read_json(folder / "config.json", "--init config").get("pretrain")
    return {
        "folder": str(folder),
        "weights": _weight_hashes(folder),
        **({"pretrain": stored} if isinstance(stored, dict) else {}),
    }


def checkpoint_folder(data: Path, name: str) -> Path:
    """Where a domain's models keep their resumable state until the domain is written."""
    return Path(data) / "cache" / "pretrain" / name


def _identity(domain: Domain, dataset: Dataset, config: PretrainConfig) -> dict[str, Any]:
    """What checkpoints must share with a rerun to be resumed: the same domain, data and settings."""
    return {
        "kind": domain.kind,
        "settings": domain.config(),
        "dataset": dataset_fingerprint(dataset),
        "steps": dict(sorted(config.steps.items())),
        "batch_size": config.train_batch_size,
        "seed": config.train_seed,
        **({"lr": dict(sorted(config.lr.items()))} if config.lr else {}),
        **({"init": _weight_hashes(config.init[domain.name])} if domain.name in config.init else {}),
    }


_say = functools.partial(say, "pretrain")
