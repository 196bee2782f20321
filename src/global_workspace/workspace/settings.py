"""The settings of a workspace and of its training, with the one declaration of each default.

Kept free of torch so that the command line reads its option defaults from here without loading it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UserError


@dataclass(frozen=True)
class WorkspaceConfig:
    """Architecture of one workspace (every ensemble member shares it)."""

    domains: dict[str, int] = field(default_factory=dict)
    """Domain name -> unimodal latent size, in a fixed order."""
    workspace_dim: int = 12
    width: int = 256
    """Hidden width of every encoder and decoder: translating into `v` draws the shape only from about
    256 on (the reference's 32 × 5 gives position and size, never shape; docs/results.md)."""
    depth: int = 3
    """Linear layers per encoder and per decoder (3 trains faster than 5 at every width tried)."""
    domain_width: dict[str, int] = field(default_factory=dict)
    """Domain name -> hidden width of that domain's encoder and decoder; a domain left out has `width`."""
    domain_depth: dict[str, int] = field(default_factory=dict)
    """Domain name -> linear layers of that domain's encoder and decoder; a domain left out has `depth`."""

    def __post_init__(self) -> None:
        check_domain_sizes("domain_width", self.domain_width, list(self.domains))
        check_domain_sizes("domain_depth", self.domain_depth, list(self.domains))

    def width_of(self, domain: str) -> int:
        """Hidden width of `domain`'s encoder and decoder."""
        return self.domain_width.get(domain, self.width)

    def depth_of(self, domain: str) -> int:
        """Linear layers of `domain`'s encoder and of its decoder."""
        return self.domain_depth.get(domain, self.depth)

    def to_json(self) -> dict[str, Any]:
        """The architecture; the per-domain sizes only where set, so that runs made before they
        existed keep their identity and resume."""
        return drop_unset(asdict(self), ("domain_width", "domain_depth"))

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WorkspaceConfig:
        """Read a stored architecture; a size below 1 or not a whole number, or a domain name no
        network can be built for, is a ValueError (an edited or damaged file)."""
        unusable = [name for name in obj["domains"] if not isinstance(name, str) or not name or "." in name]
        if unusable:
            raise ValueError(f"domain names must be non-empty and hold no '.': {unusable}")
        config = cls(
            domains={str(k): _whole(f"domains.{k}", v) for k, v in obj["domains"].items()},
            workspace_dim=_whole("workspace_dim", obj["workspace_dim"]),
            width=_whole("width", obj["width"]),
            depth=_whole("depth", obj["depth"]),
            domain_width={
                str(k): _whole(f"domain_width.{k}", v) for k, v in obj.get("domain_width", {}).items()
            },
            domain_depth={
                str(k): _whole(f"domain_depth.{k}", v) for k, v in obj.get("domain_depth", {}).items()
            },
        )
        sizes = {"workspace_dim": config.workspace_dim, "width": config.width, "depth": config.depth}
        sizes.update({f"domains.{name}": dim for name, dim in config.domains.items()})
        small = [f"{name} {size}" for name, size in sizes.items() if size < 1]
        if small:
            raise ValueError(f"sizes must be at least 1: {', '.join(small)}")
        return config


def _whole(name: str, value: Any) -> int:
    """A stored count, which must be a JSON integer: "12" or 12.5 in a settings file is damage."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return value


def drop_unset(obj: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """`obj` without those of `keys` whose value is empty: a setting added after runs were made stays
    out of their stored settings while unused, so they keep their identity and resume."""
    for key in keys:
        if not obj[key]:
            obj.pop(key)
    return obj


def check_domain_sizes(what: str, sizes: Mapping[str, int], domains: Sequence[str]) -> None:
    """Refuse per-domain sizes (`what`: the option or setting that gave them) that name a domain
    not in `domains` or are below 1."""
    for name, size in sizes.items():
        if name not in domains:
            raise UserError(
                f"{what} names domain {name!r}, which is not one of the workspace's "
                f"({', '.join(domains) or 'none'}); name one of those"
            )
        if size < 1:
            raise UserError(f"{what} gives {name} size {size}; every size must be a whole number >= 1")


def parse_domain_sizes(option: str, text: str, domains: Sequence[str]) -> dict[str, int]:
    """`v=512,t=128` -> {"v": 512, "t": 128}: sizes of the named domains (each one of `domains`,
    once, a whole number >= 1); an empty text sets none."""
    sizes: dict[str, int] = {}
    for item in (i.strip() for i in text.split(",")) if text.strip() else ():
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name or not value:
            raise UserError(
                f"{option} {text!r}: write DOMAIN=SIZE,DOMAIN=SIZE (e.g. v=512,attr=64), not {item!r}"
            )
        if name in sizes:
            raise UserError(f"{option} {text!r} names {name!r} twice")
        try:
            sizes[name] = int(value)
        except ValueError:
            raise UserError(
                f"{option} {text!r}: {name}'s size must be a whole number >= 1, got {value!r}"
            ) from None
    check_domain_sizes(f"{option} {text!r}", sizes, domains)
    return sizes


def format_domain_sizes(sizes: Mapping[str, int]) -> str:
    """{"v": 512, "attr": 64} -> `v=512,attr=64` (what `parse_domain_sizes` reads)."""
    return ",".join(f"{name}={size}" for name, size in sizes.items())


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every member of an ensemble."""

    steps: int = 1000
    batch_size: int = 2056
    """Rows per group (the paired batch and each unpaired batch); clipped to the pool size."""
    lr: float = 3e-3
    """Peak learning rate of the one-cycle schedule."""
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    pct_start: float = 0.3
    """Fraction of the steps spent warming up (torch's OneCycleLR default)."""
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    log_every: int = 50
    eval_every: int = 500
    """Evaluate on val (and write a checkpoint) every this many steps and at the end; 0: end only."""
    cuda_graph: bool = True
    """On CUDA, capture the whole step in a CUDA graph (no effect on the CPU)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(obj) - known
        if unknown:
            raise UserError(f"unknown training settings {sorted(unknown)}")
        values = dict(obj)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        config = cls(**values)
        config.check_stored()
        return config

    def check_stored(self) -> None:
        """Refuse stored settings of the wrong kind or out of range (a ValueError: an edited file)."""
        for name in ("steps", "batch_size", "log_every", "eval_every"):
            _whole(name, getattr(self, name))
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, not {list(self.betas)}")
        scalars = ("lr", "weight_decay", "eps", "pct_start", "div_factor", "final_div_factor")
        numbers = {name: getattr(self, name) for name in scalars}
        for name, value in [*numbers.items(), ("betas", self.betas[0]), ("betas", self.betas[1])]:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        low = {"steps": self.steps < 1, "batch_size": self.batch_size < 1, "eval_every": self.eval_every < 0}
        if any(low.values()):
            raise ValueError(f"out of range: {[name for name, bad in low.items() if bad]}")
