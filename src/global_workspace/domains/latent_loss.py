"""How a predicted unimodal latent is compared with the true one.

A domain's latent may start with a one-hot block (the attribute vector's shape class); that block
is scored with cross-entropy on the predicted logits and the rest with mean squared error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LatentLoss:
    """Per-example loss between predicted and true latents of one domain.

    categorical: length of a leading one-hot block scored by cross-entropy (0: plain MSE).
    """

    categorical: int = 0

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: (..., D), broadcastable. Returns (...,): one loss per example."""
        pred, target = torch.broadcast_tensors(pred, target)
        c = self.categorical
        if c == 0:
            return (pred - target).pow(2).mean(dim=-1)
        logits = pred[..., :c]
        classes = target[..., :c].argmax(dim=-1)
        ce = F.cross_entropy(logits.reshape(-1, c), classes.reshape(-1), reduction="none")
        ce = ce.reshape(classes.shape)
        if pred.shape[-1] == c:
            return ce
        return ce + (pred[..., c:] - target[..., c:]).pow(2).mean(dim=-1)

    def as_latent(self, pred: torch.Tensor) -> torch.Tensor:
        """A prediction in the latent's own terms: the one-hot block's logits become probabilities.
        What a cycle re-encodes: the encoder knows one-hot rows, not unbounded logits."""
        c = self.categorical
        if c == 0:
            return pred
        return torch.cat([pred[..., :c].softmax(dim=-1), pred[..., c:]], dim=-1)

    def to_json(self) -> dict[str, Any]:
        return {"categorical": self.categorical}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LatentLoss:
        return cls(categorical=int(obj.get("categorical", 0)))
