"""The settings of a semi-supervision experiment, saved as EXP/experiment.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ...workspace.presets import MemberSpec, Preset, preset
from ...workspace.settings import TrainConfig, WorkspaceConfig, drop_unset
from ..downstream import DownstreamSettings
from ..grid import Grid, point_coefficients, point_workspace

EXPERIMENT_FORMAT_VERSION = 1
SIX_PRESETS = ("tr", "tr+cont", "tr+cy", "tr+dcy", "cont", "full")
"""The six models of the slides, in the order the report lists them."""
SELECT_ALL, SELECT_LAST = "all", "last"
"""`ExperimentConfig.select_on`: every direction's validation translation loss, or no selection."""
KEPT_STEP = "kept_step"
"""results.csv column: the training step whose weights a member kept (its best validation check,
or the last step), so that a member's figures can be read against its training curve."""
TRAINED_STEPS = "trained_steps"
"""results.csv column of an experiment with `patience`: the steps a member's ensemble trained before
every member stopped improving (the budget when one never did)."""
VARIANTS_OF_FULL = ("full-bt",)
"""Our variants of `full`: when run, efficiency.json also compares each with tr, tr+cont and full."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines a semi-supervision experiment (saved as EXP/experiment.json)."""

    data: str
    domains: list[str]
    presets: list[str]
    paired: list[int]
    """Pair counts, increasing; `ALL` on the command line resolves to the train split's size."""
    seeds: list[int]
    train: TrainConfig = field(default_factory=TrainConfig)
    workspace_dim: int = WorkspaceConfig.workspace_dim
    width: int = WorkspaceConfig.width
    depth: int = WorkspaceConfig.depth
    domain_width: dict[str, int] = field(default_factory=dict)
    """Some domains' own encoder and decoder widths (`WorkspaceConfig.domain_width`)."""
    domain_depth: dict[str, int] = field(default_factory=dict)
    """Some domains' own encoder and decoder depths (`WorkspaceConfig.domain_depth`)."""
    select_on: str = SELECT_ALL
    """Which weights a member with a translation loss keeps, checked every `train.eval_every` steps
    (small-N `tr` overfits, docs/design.md §11): `all`, those of its lowest validation translation loss
    summed over every direction; a comma-separated list of directions (`attr_to_v,v_to_attr`), summed
    over those; `last`, the last step's (`parse_select_on`)."""
    patience: int = 0
    """Stop an ensemble once none of its members' validation translation loss has improved for this
    many steps (each keeps its best weights as ever), so that a budget long enough for the slowest
    preset is not spent on members that overfit early; 0: every ensemble trains to the last step."""
    max_members: int = 64
    """Members per ensemble at most."""
    mix_presets: bool = False
    """Put different presets in one ensemble (good on a GPU; on a CPU it computes unused terms)."""
    downstream: DownstreamSettings = field(default_factory=DownstreamSettings)
    pictures: int = 6
    """Test examples whose translations the report shows."""
    coefficients: dict[str, dict[str, float]] = field(default_factory=dict)
    """Loss weights of each preset, fixed when the experiment is made: part of its identity, so a
    resume with other weights (a changed --define or library default) is refused, not mixed."""
    families: dict[str, str] = field(default_factory=dict)
    """Model family of each preset (`Preset.family`), stored whole with its weights."""
    data_fingerprint: str = ""
    """Hash of the train latents (`workspace.data.train_fingerprint`): part of the identity, so
    finished members trained on other (or re-pretrained) latents are never mixed in on resume."""
    format_version: int = EXPERIMENT_FORMAT_VERSION
    grid: Grid | None = None
    """The tuning grid (grid.py): every preset trains each of its points, and each (preset, N)
    keeps the point best on validation. None: each preset trains with its own weights."""
    paper_levels: list[float] = field(default_factory=list)
    """Loss levels of the paper's reading of the ratio (efficiency.paper_protocol); empty: a few
    inside both curves' ranges. Only the reading depends on them, not the members."""
    points: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """Preset -> pair count (as text) -> the one grid point it trains, chosen on validation by
    earlier experiments (`--points-from`, carried.py); empty: every point of `grid`, if any."""
    points_from: list[str] = field(default_factory=list)
    """The experiment folders `points` were chosen in, for the record (not part of the identity)."""

    def workspace(
        self, latent_dims: dict[str, int], grid_point: dict[str, float] | None = None
    ) -> WorkspaceConfig:
        """The architecture of a member at `grid_point` (the experiment's, with the sizes an
        architecture grid sets), given each domain's latent size."""
        base = WorkspaceConfig(
            domains=latent_dims,
            workspace_dim=self.workspace_dim,
            width=self.width,
            depth=self.depth,
            domain_width=self.domain_width,
            domain_depth=self.domain_depth,
        )
        return point_workspace(base, grid_point)

    def preset_values(self) -> dict[str, Preset]:
        """Each preset whole; one given by name only (no weights or family) is a built-in."""
        return {
            name: Preset(
                name,
                dict(self.coefficients.get(name) or preset(name).coefficients),
                self.families.get(name) or preset(name).family,
            )
            for name in self.presets
        }

    @property
    def tuned(self) -> bool:
        """Whether members carry grid points, so that each (preset, N) keeps one (selection.json)."""
        return self.grid is not None or bool(self.points)

    def points_of(self, name: str, paired: int) -> list[dict[str, float] | None]:
        """The grid points preset `name` trains with `paired` pairs: the one carried from earlier
        experiments, every point of the grid, or, without either, none."""
        if self.points:
            return [self.points[name][str(paired)]]
        if self.grid is None:
            return [None]
        return list(self.grid.points(self.preset_values()[name].coefficients))

    def members(self) -> list[MemberSpec]:
        presets = self.preset_values()
        return [
            MemberSpec(
                seed=seed,
                coefficients=point_coefficients(presets[name].coefficients, point or {}),
                paired=n,
                preset=name,
                family=presets[name].family,
                grid=point,
            )
            for name in self.presets
            for n in self.paired
            for point in self.points_of(name, n)
            for seed in self.seeds
        ]

    def to_json(self) -> dict[str, Any]:
        """The settings; a grid, carried points, paper levels, patience and domains' own sizes only
        where used, so that experiments made before they existed keep their identity and resume."""
        obj = drop_unset(asdict(self), ("domain_width", "domain_depth"))
        obj["train"] = self.train.to_json()
        if self.grid is None:
            obj.pop("grid")
        else:
            obj["grid"] = self.grid.to_json()
        if not self.paper_levels:
            obj.pop("paper_levels")
        if not self.patience:
            obj.pop("patience")
        if not self.points:
            obj.pop("points")
            obj.pop("points_from")
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ExperimentConfig:
        """The settings `to_json` stored, so that a finished experiment can be read again by newer
        code; a setting added since takes its default, and `select_on_val`, the boolean `select_on`
        replaced, reads as `all` or `last`."""
        values = dict(obj)
        if "select_on_val" in values:
            values["select_on"] = SELECT_ALL if values.pop("select_on_val") else SELECT_LAST
        values["train"] = TrainConfig.from_json(values["train"])
        values["downstream"] = DownstreamSettings(**values["downstream"])
        if values.get("grid") is not None:
            values["grid"] = Grid(**values["grid"])
        config = cls(**values)
        WorkspaceConfig.from_json({**obj, "domains": dict.fromkeys(config.domains, 1)})  # sizes >= 1
        return config

    def kept_weights(self) -> str:
        """`select_on` and `patience` in words, for the report."""
        if self.select_on == SELECT_LAST:
            return "Each member keeps its last weights."
        over = "every direction" if self.select_on == SELECT_ALL else self.select_on.replace(",", ", ")
        kept = f"Each member keeps the weights of its lowest validation translation loss summed over {over}."
        if self.patience:
            kept += (
                f" An ensemble stops once none of its members has improved for {self.patience} steps "
                f"({TRAINED_STEPS} in results.csv)."
            )
        return kept

    def identity(self) -> dict[str, Any]:
        """What a chunk's results depend on (the data folder may move; the logging may change).
        `select_on` is written as the boolean it replaced where it means the same, so experiments
        made before it existed still resume."""
        obj = self.to_json()
        obj.pop("data")
        obj.pop("paper_levels", None)
        obj.pop("points_from", None)
        obj.pop("families")  # left out so that experiments made before it was stored still resume
        if obj["select_on"] in (SELECT_ALL, SELECT_LAST):
            obj["select_on_val"] = obj.pop("select_on") == SELECT_ALL
        obj["train"].pop("log_every")
        obj["train"].pop("cuda_graph")
        return json.loads(json.dumps(obj))  # as stored: tuples become lists
