"""Refusing NaN and infinity before they silently become meaningless results.

Inputs (latents, labels, weights) are checked once as they are loaded, one pass over each array;
metrics are checked before they are written, so a result holds a number or nothing, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .errors import UserError


def require_finite_rows(array: np.ndarray | torch.Tensor, what: str, fix: str) -> None:
    """Refuse an (N, ...) array holding NaN or infinity, naming the first row that does (a tensor is
    checked where it lies)."""
    if isinstance(array, torch.Tensor):
        finite_t = torch.isfinite(array)
        if bool(finite_t.all()):  # also an empty tensor, which has no rows to reshape
            return
        row = int(torch.argmin(finite_t.reshape(len(array), -1).all(dim=1).int()))
    else:
        finite = np.isfinite(array)
        if finite.all():
            return
        row = int(np.argmin(finite.reshape(len(array), -1).all(axis=1)))
    raise UserError(f"{what} holds NaN or infinite values (first in row {row}); {fix}")


def require_finite_tensors(tensors: Mapping[str, torch.Tensor], what: str, fix: str) -> None:
    """Refuse weights (or optimiser state) of which any tensor holds NaN or infinity."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{what} holds NaN or infinite values in {name}; {fix}")


def require_finite_metrics(
    rows: Sequence[Mapping[str, float | None]], members: Sequence[str], where: str, fix: str
) -> None:
    """Refuse a NaN or infinite metric of any member (rows[k] is member k's, named members[k]);
    None, a metric that does not apply, passes."""
    for member, row in zip(members, rows, strict=True):
        for name, value in row.items():
            if value is not None and not math.isfinite(value):
                raise UserError(f"{where}{name} of member {member} is {value}; {fix}")
