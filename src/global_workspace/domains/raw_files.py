"""Raw data from files a user names (`gw pretrain --raw NAME=TRAIN[,VAL,TEST]`), in place of what
a domain's `raw(split)` reads from the dataset: a plugin's own recordings, embeddings or texts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..fileio import read_npy

SPLIT_ORDER = ("train", "val", "test")
"""The splits of `--raw NAME=TRAIN[,VAL,TEST]`, in the order its files are given."""

RawFiles = dict[str, dict[str, Path]]
"""domain name -> split -> the file its raw data of that split come from."""


def parse_split_files(text: str, option: str, example: str) -> tuple[str, dict[str, Path]]:
    """`NAME=TRAIN[,VAL,TEST]` -> (name, {split: file}); `example` shows the fix in the refusal.

    Each file keeps its position: `NAME=TRAIN,,TEST` gives no val file, never TEST as val."""
    name, sep, files = text.partition("=")
    entries = [f.strip() for f in files.split(",")]
    if not sep or not name.strip() or not entries[0] or len(entries) > len(SPLIT_ORDER):
        raise UserError(f"{option} {text!r}: write {example}")
    return name.strip(), {split: Path(f) for split, f in zip(SPLIT_ORDER, entries, strict=False) if f}


def parse_raw_options(texts: Sequence[str]) -> RawFiles:
    """Each `NAME=TRAIN[,VAL,TEST]` -> {name: {split: file}}; a name given twice is refused."""
    out: RawFiles = {}
    for text in texts:
        name, files = parse_split_files(text, "--raw", "NAME=TRAIN[,VAL,TEST], e.g. audio=train.npy,val.npy")
        if name in out:
            raise UserError(f"--raw {name!r} is given twice; name each domain once")
        out[name] = files
    return out


def read_raw_file(file: Path) -> Any:
    """What `Domain.read_raw` reads by default: an .npy array (never a pickle), or a .txt file's
    lines (UTF-8, one example per line)."""
    missing = f"raw data file {file} does not exist; name an existing file with --raw"
    if not file.is_file():
        raise UserError(missing)
    suffix = file.suffix.lower()
    damaged, fix = f"raw data file {file} cannot be read", "give an .npy array or UTF-8 text"
    if suffix == ".npy":
        return read_npy(file, missing, damaged, fix)
    if suffix == ".txt":
        try:
            return file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{damaged} ({exc}); {fix}") from exc
    raise UserError(
        f"raw data file {file} is neither .npy nor .txt; convert it, or override the domain's read_raw"
    )


def check_raw_files(files: RawFiles, domains: Sequence[str], splits: Mapping[str, int]) -> None:
    """Refuse, before any work, --raw naming a domain that is not pretrained here, a split DATA
    lacks, or a file that is not there."""
    for name, given in files.items():
        if name not in domains:
            raise UserError(
                f"--raw names domain {name!r}, which --domains ({', '.join(domains)}) does not list"
            )
        for split, file in given.items():
            if split not in splits:
                raise UserError(f"--raw {name!r} gives a {split} file, but the dataset has no {split} split")
            if not file.is_file():
                raise UserError(f"raw data file {file} does not exist; name an existing file with --raw")


def check_raw_length(raw: Any, file: Path, split: str, examples: int) -> Any:
    """The raw data of a file, refused unless it holds one example per example of the split: the
    latents of every domain stay row-aligned."""
    if len(raw) != examples:
        raise UserError(
            f"raw data file {file} holds {len(raw)} examples, split {split!r} has {examples}; "
            "give one per example, in the dataset's order"
        )
    return raw
