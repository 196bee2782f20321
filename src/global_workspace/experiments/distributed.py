"""Sharding an experiment over processes: `torchrun --nproc-per-node N gw experiment ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; every process runs the same command.
Rank 0 prepares the output folder and tells the others whether that worked; the ensembles are
shared out by estimated cost (`semi_supervised.planning.assign_chunks`); each rank writes the
chunks it trained and sends its result rows to rank 0, which writes results, figures and report.
The backend is gloo on the CPU and nccl when every process has its own GPU (cuda:LOCAL_RANK).

Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op for a single process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ..errors import UserError

T = TypeVar("T")


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_kind: str) -> torch.device | None:
    """Join the process group when started by torchrun; returns this rank's device (None alone)."""
    if not launched() or dist.is_initialized():
        return None
    use_cuda = device_kind != "cpu" and torch.cuda.is_available()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return torch.device("cuda", local)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _objects_group() -> Any:
    """Object collectives go through gloo (CPU) even when training uses nccl."""
    if dist.get_backend() == "gloo":
        return None
    global _GLOO
    if _GLOO is None:
        _GLOO = dist.new_group(backend="gloo")
    return _GLOO


_GLOO: Any = None


def run_on_rank0_then_share(fn: Callable[[], T]) -> T:
    """Run `fn` on rank 0 only; every rank returns its result, or raises its UserError."""
    if not dist.is_initialized():
        return fn()
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", fn())
        except UserError as exc:
            box[0] = ("error", str(exc))
    dist.broadcast_object_list(box, src=0, group=_objects_group())
    status, value = box[0]
    if status == "error":
        raise UserError(value)
    return value


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Every rank's rows, concatenated in rank order, on rank 0; None on the other ranks.

    Returns only once rank 0 holds every row: a rank that tore its process group down while its
    rows were still on the way aborted the run (gloo, seen once in `gw demo` with 60 rows a rank).
    """
    if not dist.is_initialized():
        return list(rows)
    rank, world = dist.get_rank(), dist.get_world_size()
    out: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(rows, out, dst=0, group=_objects_group())
    dist.barrier(group=_objects_group())
    if rank != 0:
        return None
    assert out is not None
    return [r for part in out for r in part]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier(group=_objects_group())
