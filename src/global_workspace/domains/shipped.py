"""Pretrained specialists shipped inside the package, used by `gw pretrain` where they fit.

The paper's specialists are pretrained on large unimodal data and frozen; a user should start
from such experts, not from a few CPU minutes of training on a demo dataset. A shipped set is a
folder of `global_workspace/shipped/` holding:

manifest.json                  what the set fits (dataset name, image size, generator version,
                               label columns), how it was trained and measured, and the sha256
                               of every file
{kind}/config.json             the domain's config.json as `gw pretrain` wrote it
{kind}/weights.safetensors     its weights (float16 where that loses nothing measurable)
v/probe/                       the image probe (config.json, weights.safetensors)

Every file is checked against the manifest before use: wrong weights are never used silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.format import Dataset
from ..errors import UserError
from ..fileio import read_json, update_digest
from .base import Domain
from .store import domain_from_folder

SHIPPED_ROOT = Path(__file__).resolve().parent.parent / "shipped"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
REINSTALL = "reinstall global-workspace, or pass --from-scratch to train on your dataset"


def sha256_of(file: Path) -> str:
    digest = hashlib.sha256()
    update_digest(digest, file)
    return digest.hexdigest()


def dataset_key(dataset: Dataset) -> dict[str, Any]:
    """What a shipped set must share with a dataset: same generator, version, image size, labels."""
    info = dataset.info
    return {
        "name": info.name,
        "image_size": info.image_size,
        "generator_version": info.generator.get("generator_version"),
        "label_columns": list(info.label_columns),
    }


@dataclass(frozen=True)
class ShippedSet:
    """One folder of shipped specialists and its manifest."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def kinds(self) -> list[str]:
        return list(self.manifest["domains"])

    def verify(self, kind: str) -> None:
        """Refuse, in one line, a file of `kind` that is missing, truncated or altered."""
        for relative in self.manifest["domains"][kind]["files"]:
            file = self.folder / relative
            expected = self.manifest["files"].get(relative)
            if not file.is_file():
                raise UserError(f"shipped specialist file {file} is missing; {REINSTALL}")
            if expected is None or sha256_of(file) != expected["sha256"]:
                raise UserError(
                    f"shipped specialist file {file} is corrupted or was altered (its sha256 differs "
                    f"from {self.folder / MANIFEST}); {REINSTALL}"
                )

    def load(self, kind: str, name: str, verify: bool = True) -> Domain:
        """The shipped specialist of `kind` as a frozen domain called `name`, checked first unless
        its hashes were just taken from these very files (`export_shipped`)."""
        if verify:
            self.verify(kind)
        return domain_from_folder(self.folder / kind, name, REINSTALL)

    def summary(self) -> str:
        """A few words on how the set was trained, for the line `gw pretrain` prints."""
        train = self.manifest["training"]["data"]["train"]
        return f"shipped specialist {self.name!r} (trained on {train:,} generated examples)"


def read_manifest(folder: Path) -> dict[str, Any]:
    manifest = read_json(folder / MANIFEST, "shipped specialists manifest")
    if not isinstance(manifest, dict) or manifest.get("format_version") != MANIFEST_FORMAT:
        raise UserError(f"{folder / MANIFEST} is not a manifest this version of gw reads; {REINSTALL}")
    return manifest


def shipped_sets(root: Path | None = None) -> list[ShippedSet]:
    """Every shipped set in `root` (default: the package's), in name order."""
    root = SHIPPED_ROOT if root is None else root
    if not root.is_dir():
        return []
    return [
        ShippedSet(folder, read_manifest(folder))
        for folder in sorted(root.iterdir())
        if (folder / MANIFEST).is_file()
    ]


def find_shipped(dataset: Dataset, kind: str, root: Path | None = None) -> tuple[ShippedSet | None, str]:
    """The shipped set with a specialist of `kind` that fits `dataset`, or None and why it does not
    fit ("" when no set has a specialist of `kind`: nothing to explain)."""
    candidates = [s for s in shipped_sets(root) if kind in s.kinds]
    if not candidates:
        return None, ""
    key = dataset_key(dataset)
    for candidate in candidates:
        if candidate.manifest["dataset"] == key:
            return candidate, ""
    wanted = candidates[0].manifest["dataset"]
    differs = [f"{k} {key[k]!r}, shipped {wanted[k]!r}" for k in key if key[k] != wanted.get(k)]
    return None, "the shipped specialists were trained on another dataset (" + "; ".join(differs) + ")"
