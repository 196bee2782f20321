"""Explicit, stable randomness: every random draw in the library starts from a named seed."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from `seed` and names; stable across runs, machines and processes."""
    text = "/".join([str(int(seed)), *(str(n) for n in names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def torch_generator(seed: int, *names: object) -> torch.Generator:
    """A CPU generator for `seed` and names (draw on CPU, then move: same numbers on any device)."""
    return torch.Generator().manual_seed(derive_seed(seed, *names))


def numpy_generator(seed: int, *names: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *names))
