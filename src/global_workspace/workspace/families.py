"""Model families: which model, task and evaluation a preset trains, chosen by declared name.

A preset names its family (`presets.Preset.family`), and every member carries it (`MemberSpec.family`).
Everything that builds a model from a run or experiment (run.py, checkpoint.py, the experiments)
asks the family instead of assuming a `GlobalWorkspace`; members of one ensemble share a family.

  workspace   GlobalWorkspace + GWTask, the presets of docs/design.md §5
  direct      DirectTranslators + DirectTask: the no-shared-workspace ablation (direct.py)
  fusion      GlobalWorkspace + BroadcastTask: several domains enter at once (broadcast.py);
              its evaluation adds the fused-input metrics (fusion_eval.py)
  fusion-gated  the same with learned per-dimension fusion gates (`GlobalWorkspace.fused_state`)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..domains.latents import LatentSpec
from ..errors import UserError
from . import direct
from .broadcast import BROADCAST_CATEGORIES, GATE_PAIRS, GATED_CATEGORIES, BroadcastTask
from .evaluate import Metrics, latent_metrics, retrieval_metrics, with_attributes
from .fusion_eval import fusion_metrics
from .losses import GWTask
from .model import GlobalWorkspace
from .presets import PRESETS, WORKSPACE_CATEGORIES, MemberSpec, Preset, preset
from .settings import WorkspaceConfig
from .trainer import Task

Latents = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Family:
    """How to build, train and score one kind of model."""

    name: str
    categories: tuple[str, ...]
    """Loss categories its presets may weight."""
    shared_space: bool
    """Whether the model has a workspace state (`model.state(d, u)`): retrieval, probes, zero-shot
    and odd-one-out are read from it; without it they are not applicable."""
    build_model: Callable[[WorkspaceConfig, Sequence[int]], nn.Module]
    build_task: Callable[[Mapping[str, LatentSpec], Iterable[str], bool], Task]
    """(specs, active categories, learn_logit_scale) -> task."""
    latent_metrics: Callable[[nn.Module, Latents, Mapping[str, LatentSpec] | None], Metrics]
    """Latent MSE metrics (validation during training)."""
    split_metrics: Callable[[nn.Module, Latents, Mapping[str, LatentSpec]], Metrics]
    """Every metric of a split but the attribute metrics, which all families score alike."""
    not_applicable: Callable[[Sequence[str]], dict[str, str]]
    """Metric names of the workspace's evaluation that mean nothing here -> why (null, never 0)."""

    def evaluate(
        self,
        model: nn.Module,
        latents: Latents,
        specs: Mapping[str, LatentSpec],
        data: Path | None,
        split: str,
        skipped: dict[str, str],
    ) -> Metrics:
        """Every metric the family defines for a split, on the CPU, sorted by name."""
        metrics = self.split_metrics(model, latents, specs)
        return with_attributes(model, latents, metrics, data, split, skipped)  # type: ignore[arg-type]


def _workspace_metrics(model: GlobalWorkspace, latents: Latents, specs: Mapping[str, LatentSpec]) -> Metrics:
    return {**latent_metrics(model, latents, specs), **retrieval_metrics(model, latents)}


def _fusion_metrics(model: GlobalWorkspace, latents: Latents, specs: Mapping[str, LatentSpec]) -> Metrics:
    return {**_workspace_metrics(model, latents, specs), **fusion_metrics(model, latents, specs)}


def _fusion_family(name: str, gates: bool) -> Family:
    return Family(
        name=name,
        categories=GATED_CATEGORIES if gates else BROADCAST_CATEGORIES,
        shared_space=True,
        build_model=functools.partial(GlobalWorkspace, fusion_gates=gates),
        build_task=lambda specs, active, learn: BroadcastTask(
            specs, active=active, learn_logit_scale=learn, gate_pairs=GATE_PAIRS if gates else 0.0
        ),
        latent_metrics=latent_metrics,  # type: ignore[arg-type]
        split_metrics=_fusion_metrics,  # type: ignore[arg-type]
        not_applicable=lambda domains: {},
    )


FAMILIES: dict[str, Family] = {
    "workspace": Family(
        name="workspace",
        categories=WORKSPACE_CATEGORIES,
        shared_space=True,
        build_model=GlobalWorkspace,
        build_task=lambda specs, active, learn: GWTask(specs, active, learn),
        latent_metrics=latent_metrics,  # type: ignore[arg-type]
        split_metrics=_workspace_metrics,  # type: ignore[arg-type]
        not_applicable=lambda domains: {},
    ),
    "direct": Family(
        name="direct",
        categories=direct.DIRECT_CATEGORIES,
        shared_space=False,
        build_model=direct.DirectTranslators,
        build_task=lambda specs, active, learn: direct.DirectTask(specs, active),
        latent_metrics=direct.direct_latent_metrics,
        split_metrics=direct.direct_latent_metrics,
        not_applicable=direct.not_applicable,
    ),
    "fusion": _fusion_family("fusion", gates=False),
    "fusion-gated": _fusion_family("fusion-gated", gates=True),
}


def family_of(members: Sequence[MemberSpec]) -> Family:
    """The one family of an ensemble's members; a mixed ensemble is refused."""
    names = sorted({m.family for m in members})
    if len(names) != 1:
        raise UserError(f"one ensemble cannot mix model families {', '.join(names) or '(none)'}")
    if names[0] not in FAMILIES:
        raise UserError(f"unknown model family {names[0]!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[names[0]]


def edited_preset(base: Preset, coefficients: str) -> Preset:
    """`base` with the weights listed in `coefficients` (`cy=0,bt=0.1`, names of its family's
    categories) replaced."""
    return base.edited(coefficients, FAMILIES[base.family].categories)


def define_preset(text: str, defined: Mapping[str, Preset] | None = None) -> Preset:
    """`NAME=BASE:tr=1,cy=0.3` makes preset NAME: BASE's family and weights, with the listed weights
    replaced (coefficient names of BASE's family). BASE is a built-in preset or one of `defined`
    (those made before it); a built-in name is not reused."""
    name, sep, rest = text.partition("=")
    base, colon, coefs = rest.partition(":")
    name, base = name.strip(), base.strip()
    if not sep or not colon or not name or not base:
        raise UserError(f"--define {text!r}: write NAME=BASE:COEFFICIENTS, e.g. full-ref=full:dcy=1,cy=1")
    if name.lower() == "all":
        raise UserError(f"--define {text!r}: 'all' stands for the six presets in --presets; choose a name")
    if name in PRESETS:
        raise UserError(f"--define {text!r}: {name!r} is a built-in preset; choose another name")
    edited = edited_preset(defined[base] if defined and base in defined else preset(base), coefs)
    return Preset(name, edited.coefficients, edited.family)
