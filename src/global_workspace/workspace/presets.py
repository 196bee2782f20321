"""Loss presets by name, explicit coefficients, and the spec of one ensemble member.

A loss term is named `{category}/{what}` (`translation/v_to_attr`, `cycle/v_through_attr`); its
coefficient is the coefficient of its category, the part before the first '/'. The trainer SUMS
the weighted terms of a member (the reference averages them), so a preset's coefficients are the
weights of a sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import UserError, require_at_least

TRANSLATION, CONTRASTIVE, DEMI_CYCLE, CYCLE = "translation", "contrastive", "demi_cycle", "cycle"
GW_CATEGORIES = (TRANSLATION, CONTRASTIVE, DEMI_CYCLE, CYCLE)
"""The categories of the global workspace's losses in the paper, in a fixed order."""

BACK_TRANSLATION = "back_translation"
WORKSPACE_CATEGORIES = (*GW_CATEGORIES, BACK_TRANSLATION)
"""The paper's categories and ours: a cycle whose first translation is cut from the graph
(losses.py), so that it teaches the way back without letting the way out hide its input."""

ALIASES: dict[str, str] = {
    "tr": TRANSLATION,
    "cont": CONTRASTIVE,
    "dcy": DEMI_CYCLE,
    "cy": CYCLE,
    "bt": BACK_TRANSLATION,
}
"""Short coefficient names accepted by `--coef`; the full category names work too."""
SHORT_NAMES = {category: alias for alias, category in ALIASES.items()}
"""Category -> its short name, for labels."""

DEFAULT_COEFFICIENTS: dict[str, float] = {TRANSLATION: 1.0, CONTRASTIVE: 0.1, DEMI_CYCLE: 0.1, CYCLE: 0.1}
"""A preset switches a category on with its default weight. The reference weighs demi-cycle and
cycle 1 (docs/design.md §5); 0.1 keeps the low-pair gain and reads shape better (docs/results.md,
"Figures that were in the code"). The reference's weights: --coef tr=1,cont=0.1,dcy=1,cy=1."""


@dataclass(frozen=True)
class Preset:
    """A named loss: its weights and the model family they train (families.py), carried whole from
    the command line to the members and their stored specs, so nothing looks a name up again."""

    name: str
    coefficients: Mapping[str, float]
    family: str = "workspace"

    def edited(self, text: str, categories: Iterable[str]) -> Preset:
        """This preset with the weights listed in `text` (`cy=0,bt=0.1`, names among `categories`,
        those of its family) replaced; same name and family."""
        return Preset(self.name, parse_coefficients(text, categories, base=self.coefficients), self.family)


FUSED = "fused"
GATE_TERMS = "gates"
"""The category of the terms through which only the fusion gates learn (broadcast.py): a fused
state of two or more domains, decoded into every domain, on pairs kept for the gates."""

_FUSION = {**DEFAULT_COEFFICIENTS, FUSED: DEFAULT_COEFFICIENTS[DEMI_CYCLE]}

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.name: p
        for p in (
            # The six models of the slides (docs/design.md §5); `cont` is the CLIP-like model
            # without broadcast.
            Preset("tr", {TRANSLATION: 1.0}),
            Preset("tr+cont", {TRANSLATION: 1.0, CONTRASTIVE: 0.1}),
            Preset("tr+cy", {TRANSLATION: 1.0, CYCLE: DEFAULT_COEFFICIENTS[CYCLE]}),
            Preset("tr+dcy", {TRANSLATION: 1.0, DEMI_CYCLE: DEFAULT_COEFFICIENTS[DEMI_CYCLE]}),
            Preset("cont", {CONTRASTIVE: 0.1}),
            Preset("full", dict(DEFAULT_COEFFICIENTS)),
            # `full` with back-translation cycles instead of cycles. In the paper's cycle the
            # gradient also reaches the first translation, which can then hide its input in the
            # other domain's latent for the way back to read (docs/results.md, "Why the cycles
            # add little here, and back-translation").
            Preset("full-bt", {TRANSLATION: 1.0, CONTRASTIVE: 0.1, DEMI_CYCLE: 0.1, BACK_TRANSLATION: 0.1}),
            # The no-shared-workspace ablation (direct.py): direct translators with `tr`'s and
            # `tr+cy`'s losses.
            Preset("direct-tr", {TRANSLATION: 1.0}, "direct"),
            Preset("direct-tr+cy", {TRANSLATION: 1.0, CYCLE: DEFAULT_COEFFICIENTS[CYCLE]}, "direct"),
            # The workspace with fusion (docs/design.md §7): the broadcast loss (broadcast.py) with
            # `full`'s weights. A fused term is a demi-cycle of a fused state, so it gets the
            # demi-cycle's weight; a heavier one costs translation and retrieval (docs/results.md,
            # "Figures that were in the code").
            Preset("fusion", _FUSION, "fusion"),
            # `fusion` whose workspace also learns how much each domain weighs on each workspace
            # dimension in a fused state (`GlobalWorkspace.fused_state`). The gates learn only from
            # pairs nothing else trains on (broadcast.GATE_PAIRS), where every target weighs the
            # same (`gates` 1.0), so that they do not learn to trust a domain that memorised the
            # pairs nor to serve the translations alone; `fused` 0.3 lets encoders and decoders
            # serve the fused states the gates make (docs/results.md, "Figures that were in the code").
            Preset("fusion-gated", {**_FUSION, FUSED: 0.3, GATE_TERMS: 1.0}, "fusion-gated"),
        )
    }
)
"""The built-in presets, read-only; `--define` makes others as values (families.define_preset)."""

STEP_COST: dict[str, float] = {
    TRANSLATION: 0.5,
    CONTRASTIVE: 0.25,
    DEMI_CYCLE: 1.0,
    CYCLE: 1.5,
    BACK_TRANSLATION: 1.5,
    FUSED: 1.5,
    GATE_TERMS: 1.0,
}
"""Rough cost of a training step for each switched-on loss category, on top of 1 for the step
itself (sampling, optimiser), so that ensembles can be shared out evenly over processes; fitted to
the timings in docs/results.md ("Figures that were in the code")."""


def step_cost(coefficients: Mapping[str, float]) -> float:
    """Estimated relative cost of one member's training step (STEP_COST; unknown categories 1)."""
    return 1.0 + sum(STEP_COST.get(c, 1.0) for c, w in coefficients.items() if w > 0)


def preset(name: str) -> Preset:
    """The built-in preset `name`."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def implied_family(name: str) -> str:
    """The family a preset's name says by itself (a built-in's; else the workspace): a stored member
    names its family only where it differs, as a `--define`d preset's may."""
    return PRESETS[name].family if name in PRESETS else "workspace"


def coefficient_names(known: Iterable[str]) -> list[str]:
    """The names a user may write for `known` categories: the categories and their aliases."""
    categories = set(known)
    return sorted({*(alias for alias, c in ALIASES.items() if c in categories), *categories})


def parse_coefficients(
    text: str, categories: Iterable[str] = WORKSPACE_CATEGORIES, base: Mapping[str, float] | None = None
) -> dict[str, float]:
    """`tr=1,cy=0.1` -> {"translation": 1.0, "cycle": 0.1}, over the weights of `base` if given;
    unknown names are a UserError, and so are a weight given twice and a result that switches
    every loss off."""
    known = set(categories)
    out: dict[str, float] = dict(base or {})
    given: set[str] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        category = ALIASES.get(name, name)
        if not sep or category not in known:
            names = coefficient_names(known)
            raise UserError(f"bad coefficient {item!r}: use NAME=VALUE with NAME one of {', '.join(names)}")
        try:
            weight = float(value)
        except ValueError:
            raise UserError(f"coefficient {name!r} has value {value!r}, which is not a number") from None
        require_at_least([(f"coefficient {name!r}", weight, 0)])
        if category in given:
            raise UserError(f"coefficients {text!r} weigh {category} twice; give each weight once")
        given.add(category)
        out[category] = weight
    if not any(out.values()):
        raise UserError(f"coefficients {text!r} switch every loss off; give at least one positive weight")
    return out


def point_label(point: Mapping[str, float]) -> str:
    """`lr=0.003,wd=1e-06,cy=1.0`: names a tuning-grid point (experiments/grid.py) in member
    labels, results.csv and selection.json."""
    short = {"weight_decay": "wd", **SHORT_NAMES}
    return ",".join(  # sizes, also a domain's own (`width/v`), are whole numbers
        f"{short.get(k, k)}={int(v) if k.partition('/')[0] in ('width', 'depth') else repr(float(v))}"
        for k, v in point.items()
    )


@dataclass(frozen=True)
class MemberSpec:
    """One ensemble member: what it trains on and with which loss weights.

    Member k of an ensemble trains like a solo run with the same spec, up to the rounding of batched
    matrix products, which may differ in the last bit between ensemble sizes.
    """

    seed: int
    """Initialisation, batch sampling and (unless pair_seed is set) the choice of pairs."""
    coefficients: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COEFFICIENTS))
    """Category -> weight; a category left out has weight 0 and its terms are not computed."""
    paired: int = 0
    """Number of paired training examples: the first `paired` of a seeded permutation of train."""
    preset: str = "custom"
    """The name of the preset the coefficients came from (labels, reports)."""
    family: str = "workspace"
    """The model family the preset trains (families.FAMILIES)."""
    pair_seed: int | None = None
    """Seed of the choice of paired examples; None: `seed`. Sets of pairs are nested in `paired`."""
    grid: dict[str, float] | None = None
    """Label only: the tuning-grid point of an experiment's member (experiments/grid.py), its lr,
    weight_decay, gridded sizes (a domain's own as `width/{domain}`) and varied coefficients; the
    experiment trains it in an ensemble of that lr, weight decay and architecture. None outside a grid."""

    @classmethod
    def from_preset(
        cls, chosen: Preset | str, seed: int, paired: int, pair_seed: int | None = None
    ) -> MemberSpec:
        """A member training `chosen` (a built-in preset may be named)."""
        p = preset(chosen) if isinstance(chosen, str) else chosen
        return cls(seed, dict(p.coefficients), paired, p.name, p.family, pair_seed)

    @property
    def pairing_seed(self) -> int:
        return self.seed if self.pair_seed is None else self.pair_seed

    def weight(self, category: str) -> float:
        return float(self.coefficients.get(category, 0.0))

    def label(self) -> str:
        """Names the member in messages, results and resumed experiments: unique within an experiment."""
        base = f"{self.preset}/paired={self.paired}/seed={self.seed}"
        return base if self.grid is None else f"{base}/grid={point_label(self.grid)}"

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "seed": self.seed,
            "coefficients": dict(self.coefficients),
            "paired": self.paired,
            "preset": self.preset,
            "pair_seed": self.pair_seed,
        }
        if self.family != implied_family(self.preset):
            obj["family"] = self.family
        if self.grid is not None:
            obj["grid"] = dict(self.grid)
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> MemberSpec:
        pair_seed, grid = obj.get("pair_seed"), obj.get("grid")
        name = str(obj.get("preset", "custom"))
        family = obj.get("family", implied_family(name))
        return cls(
            seed=int(obj["seed"]),
            coefficients={str(k): float(v) for k, v in obj["coefficients"].items()},
            paired=int(obj["paired"]),
            preset=name,
            family=str(family),
            pair_seed=None if pair_seed is None else int(pair_seed),
            grid=None if grid is None else {str(k): float(v) for k, v in grid.items()},
        )
