"""Tiny synthetic latent folders for the workspace tests (no dataset or specialist needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from global_workspace.domains.latents import DOMAIN_FORMAT_VERSION


@pytest.fixture
def one_thread() -> object:
    """Tiny matrices: extra threads only add contention on a small, loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_domain(root: Path, name: str, splits: dict[str, np.ndarray], categorical: int = 0) -> None:
    """DATA/domains/{name}/config.json and latents/{split}.npy."""
    folder = root / "domains" / name
    (folder / "latents").mkdir(parents=True, exist_ok=True)
    dim = next(iter(splits.values())).shape[1]
    config = {
        "name": name,
        "kind": name,
        "latent_dim": int(dim),
        "loss": {"categorical": categorical},
        "format_version": DOMAIN_FORMAT_VERSION,
    }
    (folder / "config.json").write_text(json.dumps(config))
    for split, array in splits.items():
        np.save(folder / "latents" / f"{split}.npy", np.ascontiguousarray(array, dtype=np.float32))


def linear_pair(
    root: Path,
    sizes: dict[str, int] | None = None,
    n: int = 600,
    dims: tuple[int, int] = (6, 5),
    seed: int = 0,
) -> Path:
    """Domains `a` and `b` where b = a @ W: one is a fixed linear map of the other (W is 6 x 5, so
    b -> a loses a direction and unpaired structure is what fills it in)."""
    sizes = sizes or {"train": n, "val": 200, "test": 200}
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=dims) / np.sqrt(dims[0])
    a = {s: rng.normal(size=(k, dims[0])) for s, k in sizes.items()}
    write_domain(root, "a", a)
    write_domain(root, "b", {s: x @ weight for s, x in a.items()})
    return root
