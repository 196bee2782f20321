"""The on-disk dataset format (a public interface) and its validating loader.

OUT/dataset.json          name, format_version, seed, image_size, splits {name: count},
                          label_columns, generator {parameters}
OUT/{split}/images.npy    uint8 (N, H, W, 3), memory-mappable
OUT/{split}/labels.npy    float32 (N, len(label_columns))
OUT/{split}/captions.txt  UTF-8, one caption per line, line i describes example i
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..fileio import atomic_write_json, read_json, read_npy
from ..finite import require_finite_rows

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """Everything dataset.json records; enough to regenerate the dataset byte for byte."""

    name: str
    seed: int
    image_size: int
    splits: dict[str, int]
    label_columns: list[str]
    generator: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "format_version": self.format_version,
            "seed": self.seed,
            "image_size": self.image_size,
            "splits": dict(self.splits),
            "label_columns": list(self.label_columns),
            "generator": dict(self.generator),
        }

    @classmethod
    def from_json(cls, obj: Any, where: Path) -> DatasetInfo:
        try:
            info = cls(
                name=str(obj["name"]),
                seed=int(obj["seed"]),
                image_size=int(obj["image_size"]),
                splits={str(k): int(v) for k, v in obj["splits"].items()},
                label_columns=[str(c) for c in obj["label_columns"]],
                generator=dict(obj.get("generator", {})),
                format_version=int(obj["format_version"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{where} is not a valid dataset.json ({exc!r}); regenerate the dataset") from exc
        if info.format_version != FORMAT_VERSION:
            raise UserError(
                f"{where} has format_version {info.format_version}, this version of gw reads "
                f"{FORMAT_VERSION}; regenerate the dataset with this version"
            )
        return info


@dataclass(frozen=True)
class Split:
    """One split held in memory (labels, captions) and memory-mapped (images)."""

    name: str
    images: np.ndarray  # uint8 (N, H, W, 3), usually a read-only memmap
    labels: np.ndarray  # float32 (N, C)
    captions: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Dataset:
    path: Path
    info: DatasetInfo

    def split(self, name: str) -> Split:
        if name not in self.info.splits:
            raise UserError(f"dataset {self.path} has no split {name!r}; it has {sorted(self.info.splits)}")
        return _load_split(self.path, self.info, name)

    def column(self, name: str) -> int:
        """Index of a label column by name."""
        return self.info.label_columns.index(name)


def write_info(out: Path, info: DatasetInfo) -> None:
    atomic_write_json(Path(out) / "dataset.json", info.to_json())


def load_dataset(path: Path | str, expect_name: str | None = None) -> Dataset:
    """Open and validate a dataset folder; every split is checked before anything is returned."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"dataset {path} does not exist; create it with `gw data simple-shapes {path}`")
    if not (path / "dataset.json").is_file():
        raise UserError(
            f"{path} is no dataset (it has no dataset.json); name a folder made by `gw data simple-shapes`, "
            "`gw data factory` or `gw data import-reference`"
        )
    info = DatasetInfo.from_json(
        read_json(path / "dataset.json", "dataset description"), path / "dataset.json"
    )
    if expect_name is not None and info.name != expect_name:
        raise UserError(f"dataset {path} is {info.name!r}, expected {expect_name!r}")
    dataset = Dataset(path, info)
    for name in info.splits:
        _load_split(path, info, name)
    return dataset


def _load_npy(file: Path, what: str) -> np.ndarray:
    missing = f"{what} {file} is missing; the dataset is incomplete, regenerate it"
    return read_npy(
        file, missing, f"{what} {file} is corrupted or truncated", "regenerate the dataset", mmap=True
    )


def _load_split(path: Path, info: DatasetInfo, name: str) -> Split:
    count = info.splits[name]
    folder = path / name
    images = _load_npy(folder / "images.npy", "image file")
    labels = _load_npy(folder / "labels.npy", "label file")
    expected_images = (count, info.image_size, info.image_size, 3)
    if images.dtype != np.uint8 or images.shape != expected_images:
        raise UserError(
            f"{folder / 'images.npy'} holds {images.dtype} {images.shape}, dataset.json says uint8 "
            f"{expected_images}; the dataset is mismatched, regenerate it"
        )
    expected_labels = (count, len(info.label_columns))
    if labels.dtype != np.float32 or labels.shape != expected_labels:
        raise UserError(
            f"{folder / 'labels.npy'} holds {labels.dtype} {labels.shape}, dataset.json says float32 "
            f"{expected_labels}; the dataset is mismatched, regenerate it"
        )
    require_finite_rows(labels, f"label file {folder / 'labels.npy'}", "regenerate the dataset")
    captions_file = folder / "captions.txt"
    if not captions_file.is_file():
        raise UserError(f"caption file {captions_file} is missing; regenerate the dataset")
    try:
        captions = captions_file.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise UserError(f"caption file {captions_file} is not UTF-8; regenerate the dataset") from exc
    if captions and captions[-1] == "":
        captions.pop()
    if len(captions) != count:
        raise UserError(
            f"{captions_file} has {len(captions)} captions, dataset.json says {count}; "
            "the dataset is truncated, regenerate it"
        )
    return Split(name=name, images=images, labels=np.asarray(labels), captions=captions)
