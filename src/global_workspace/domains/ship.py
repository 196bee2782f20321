"""`gw specialists export`: turn specialists trained by `gw pretrain` into a shipped set.

The set is measured as it ships (after the cast to float16, loaded through the same checks a user
goes through) on the test split of a dataset generated from a seed the training never saw.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..data.format import Dataset, load_dataset
from ..errors import UserError
from ..fileio import atomic_write_json, read_json, refuse_overlap
from ..locking import locked_atomic_directory
from .latents import DOMAIN_NAME, domain_folder
from .nets import WEIGHTS_FILE, TorchDomain
from .shipped import MANIFEST, MANIFEST_FORMAT, ShippedSet, dataset_key, sha256_of
from .store import move_to

PRECISIONS = {"float16": torch.float16, "float32": torch.float32}


def export_shipped(
    data: Path,
    fresh: Path,
    out: Path,
    kinds: tuple[str, ...],
    name: str,
    precision: str = "float16",
    force: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """Write the shipped set of DATA's specialists `kinds` to `out`; returns its manifest."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if not DOMAIN_NAME.fullmatch(name):
        raise UserError(
            f"--name {name!r}: name the set plainly (a letter or _, then letters, digits, _ or -)"
        )
    if not kinds or len(set(kinds)) < len(kinds):
        raise UserError(f"--domains {','.join(kinds)!r}: name each specialist to ship once")
    dataset, test = load_dataset(data), load_dataset(fresh)
    if dataset_key(test) != dataset_key(dataset):
        raise UserError(
            f"{fresh} is not the same kind of dataset as {data}; generate it with the same generator"
        )
    if test.info.seed == dataset.info.seed:
        raise UserError(
            f"{fresh} was generated with seed {test.info.seed}, the training data's; "
            "measure on a dataset generated from another seed"
        )
    refuse_overlap(out, {"dataset": data, "--fresh dataset": fresh}, "shipped set")
    with locked_atomic_directory(out, force, "shipped specialists", marker=MANIFEST) as tmp:
        domains = {
            kind: _copy_domain(domain_folder(data, kind), tmp / kind, PRECISIONS[precision]) for kind in kinds
        }
        files = {
            str(f.relative_to(tmp)): {"sha256": sha256_of(f), "bytes": f.stat().st_size}
            for f in sorted(tmp.rglob("*"))
            if f.is_file()
        }
        manifest: dict[str, Any] = {
            "format_version": MANIFEST_FORMAT,
            "name": name,
            "precision": precision,
            "dataset": dataset_key(dataset),
            "training": {
                "data": {"seed": dataset.info.seed, **dataset.info.splits},
                "generate": _generate_command(dataset),
                "domains": domains,
            },
            "domains": {
                kind: {"files": sorted(f for f in files if f.startswith(f"{kind}/"))} for kind in kinds
            },
            "files": files,
            "evaluation": {
                "data": {"seed": test.info.seed, "split": "test", "examples": test.info.splits["test"]},
                "generate": _generate_command(test),
                "command": ["gw", *sys.argv[1:]],
            },
        }
        manifest["quality"] = _measure(ShippedSet(tmp, manifest), test, device)
        atomic_write_json(tmp / MANIFEST, manifest)
    return manifest


def _copy_domain(source: Path, target: Path, dtype: torch.dtype) -> dict[str, Any]:
    """Copy a pretrained domain's config and weights (cast to `dtype`), without its latents;
    returns how it was trained."""
    if not (source / "config.json").is_file():
        raise UserError(f"{source} holds no pretrained domain; run `gw pretrain --from-scratch` first")
    for weights in sorted(source.rglob(WEIGHTS_FILE)):
        folder = target / weights.parent.relative_to(source)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        if (weights.parent / "config.json").is_file() and weights.parent != source:
            shutil.copy2(weights.parent / "config.json", folder / "config.json")
    config = read_json(source / "config.json", "domain config")
    atomic_write_json(target / "config.json", config)
    metrics = read_json(source / "metrics.json", "domain metrics")
    record = config.get("pretrain", {})
    return {
        "command": ["gw", *record.get("command", [])[1:]],
        "steps": record.get("trained", {}),
        "batch_size": record.get("batch_size"),
        "seed": record.get("seed"),
        "train_seconds": {k: v for k, v in metrics.items() if k.endswith("/train_seconds")},
        "total_seconds": metrics.get("total_seconds"),
        "device": metrics.get("device"),
        **{k: record[k] for k in ("lr", "init") if k in record},  # a fine-tuned domain's start
    }


def _measure(shipped: ShippedSet, test: Dataset, device: str) -> dict[str, dict[str, Any]]:
    """Each shipped specialist, loaded as a user loads it (its files hashed once, for the manifest),
    scored on `test`'s test split."""
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for kind in shipped.kinds:
            folder = Path(scratch) / kind
            shutil.copytree(shipped.folder / kind, folder)
            domain = move_to(shipped.load(kind, kind, verify=False), device)  # its manifest hashed them
            if isinstance(domain, TorchDomain):
                domain.attach(test.path)
            out[kind] = domain.quality(test, folder)
    return out


def _generate_command(dataset: Dataset) -> str:
    splits = dataset.info.splits
    return (
        f"gw data {dataset.info.name} DATA --train {splits['train']} --val {splits['val']} "
        f"--test {splits['test']} --seed {dataset.info.seed} --image-size {dataset.info.image_size}"
    )
