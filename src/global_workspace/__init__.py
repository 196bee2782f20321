"""Semi-supervised multimodal representation learning through a Global Workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .loading import TrainedWorkspace, load_workspace

__all__ = ["TrainedWorkspace", "load_workspace"]


def __getattr__(name: str) -> Any:
    """`load_workspace` and `TrainedWorkspace` on first use, so that `gw --help` need not import torch."""
    if name in __all__:
        from . import loading

        return getattr(loading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
