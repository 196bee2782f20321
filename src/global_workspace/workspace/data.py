"""The latents a workspace trains and is evaluated on, loaded once onto the device.

In a dataset made by `gw pretrain`, row i of every domain in a split is the same example, so paired
batches are plain index gathers. Own latents (`gw data latents`) give each domain its own length
and list the pairs (own_latents.py).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.format import load_dataset
from ..data.latents_format import is_own_latents
from ..domains.latents import LatentSpec, domain_folder, load_latents, read_spec
from ..errors import UserError
from ..fileio import update_digest


@dataclass
class LatentData:
    """specs[d]: size and loss of domain d; splits[split][d]: (N_split, latent_dim) on the device."""

    path: Path
    specs: dict[str, LatentSpec]
    splits: dict[str, dict[str, torch.Tensor]]
    pairs: dict[str, torch.Tensor] | None = None
    """Own latents only: split -> (P, n_domains) long pair rows, columns in `specs` order, -1 where
    absent; None for row-aligned latents."""

    def split(self, name: str) -> dict[str, torch.Tensor]:
        if name not in self.splits:
            raise UserError(f"split {name!r} was not loaded; loaded splits: {', '.join(self.splits)}")
        return self.splits[name]

    def size(self, name: str) -> int:
        return int(next(iter(self.split(name).values())).shape[0])

    def pair_count(self, name: str) -> int:
        """Paired examples of a split: its pair rows, or every example of row-aligned latents."""
        return self.size(name) if self.pairs is None else int(self.pairs[name].shape[0])


def check_domains(data: Path, domains: Sequence[str]) -> list[str]:
    """The requested domain names, refused when repeated, fewer than two, or not pretrained (or
    when DATA itself is missing)."""
    names = [d.strip() for d in domains if d.strip()]
    if len(set(names)) != len(names):
        raise UserError(f"--domains {','.join(names)} names a domain twice")
    if len(names) < 2:
        raise UserError(f"a global workspace needs at least two domains, got {names}")
    if not Path(data).is_dir():
        raise UserError(
            f"dataset {data} does not exist; create it with `gw data simple-shapes {data}`, "
            f"then `gw pretrain {data}`"
        )
    root = Path(data) / "domains"
    available = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for name in names:
        if not domain_folder(data, name).is_dir():
            have = ", ".join(available) if available else "none"
            raise UserError(
                f"unknown domain {name!r}: {data} has no latents for it (pretrained domains: {have}); "
                f"run `gw pretrain {data} --domains {name}`"
            )
    return names


def load_latent_data(
    data: Path | str,
    domains: Sequence[str],
    device: torch.device,
    splits: Sequence[str] = ("train", "val", "test"),
) -> LatentData:
    """Read DATA/domains/{d}/latents/{split}.npy for every domain and split onto `device`."""
    data = Path(data)
    names = check_domains(data, domains)
    if is_own_latents(data):
        from .own_latents import load_own_latents  # it builds a LatentData of this module

        return load_own_latents(data, names, device, splits)
    dataset = load_dataset(data) if (data / "dataset.json").is_file() else None
    specs = {d: read_spec(data, d) for d in names}
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for split in splits:
        arrays = {d: load_latents(data, d, split, dataset) for d in names}
        lengths = {d: int(a.shape[0]) for d, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise UserError(
                f"latents of split {split!r} have different lengths {lengths}; "
                f"rerun `gw pretrain {data} --force`"
            )
        loaded[split] = {d: torch.from_numpy(a).to(device) for d, a in arrays.items()}
    return LatentData(path=data, specs=specs, splits=loaded)


def train_fingerprint(data: Path | str, domains: Sequence[str]) -> str:
    """A hash of the train latents of `domains` (and of own latents' train pairs): what a run learns
    from, wherever DATA lives."""
    files = [(name, domain_folder(Path(data), name) / "latents" / "train.npy") for name in sorted(domains)]
    if is_own_latents(data):
        files.append(("", Path(data) / "pairs" / "train.npy"))
    keyed = tuple((name, path, _identity(path)) for name, path in files)
    settled = all(time.time_ns() - max(key[3:]) > _TIMESTAMP_GRAIN_NS for _, _, key in keyed)
    return _hash_files(keyed) if settled else _hash_files.__wrapped__(keyed)


_TIMESTAMP_GRAIN_NS = 2_000_000_000
"""File times tick coarsely (in milliseconds), so a write just after a file was last written can
leave its times unchanged: such a fresh file is hashed every time, never from the memo."""


def _identity(path: Path) -> tuple[int, ...]:
    """What changes whenever a file is replaced or written to (inode, size, modification and change
    times), so that a hash keyed on it is never stale."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.lru_cache(maxsize=16)
def _hash_files(files: tuple[tuple[str, Path, tuple[int, ...]], ...]) -> str:
    """Hashed once per process for files left untouched: a run hashes its latents when it is set up
    and again once it holds the lock on them."""
    digest = hashlib.blake2b(digest_size=16)
    for name, path, _ in files:
        if name:
            digest.update(name.encode() + b"\0")
        update_digest(digest, path)
    return digest.hexdigest()


def check_unchanged_since_set_up(data: Path | str, domains: Sequence[str], recorded: str) -> None:
    """Refuse to train when DATA was replaced between hashing it into the settings and taking the lock
    that now holds writers off: the record would name latents the run never saw."""
    if recorded and recorded != train_fingerprint(data, domains):
        raise UserError(
            f"the latents under {data} were replaced while the run was being set up (a gw pretrain or "
            "gw data --force finished meanwhile); run the command again"
        )


def check_same_latents(recorded: object, current: str, what: str, data: str, fix: str) -> None:
    """Refuse `what` (a run, an experiment) made from other train latents than those under `data`
    now. A missing or empty record (made before latents were hashed) is accepted."""
    if recorded and recorded != current:
        raise UserError(
            f"{what} was trained on other latents than those under {data} (another dataset, or "
            f"re-pretrained domains); {fix}"
        )
