"""A trained workspace from Python: raw data in, raw data out.

    from global_workspace import load_workspace
    ws = load_workspace("runs/full")              # member 0 of the run; member=k for another
    ws = load_workspace("exp/va", member="full-bt/paired=60/seed=0")  # a member of an experiment
    captions = ws.translate("v", "t", images)     # uint8 images (N, H, W, 3) -> N captions
    pictures = ws.translate("attr", "v", labels)  # label rows in the dataset's units -> images
    z = ws.state("v", images)                     # (N, workspace_dim) workspace states

Each domain's frozen specialist (`gw pretrain`) turns raw data into its latent and back; one member
of the run's workspace does the rest. The run is refused when its dataset's latents are not those
it was trained on (a re-pretrained specialist has another latent space, so its translations would
be meaningless).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .domains.base import Domain
from .domains.latents import LatentSpec, read_spec
from .domains.store import load_domain
from .errors import UserError
from .experiments.semi_supervised.config import KEPT_STEP
from .experiments.semi_supervised.results_io import chunk_members
from .experiments.semi_supervised.resume import (
    check_experiment_data,
    chunk_family,
    chunk_weights,
    finished_members,
    read_experiment,
)
from .fileio import read_json
from .finite import require_finite_rows, require_finite_tensors
from .workspace.checkpoint import MOVED_DATA, check_run_data, load_model
from .workspace.evaluate import as_latent
from .workspace.families import Family, family_of
from .workspace.model import GlobalWorkspace
from .workspace.presets import MemberSpec
from .workspace.settings import WorkspaceConfig


def _rows(raw: Any) -> int | None:
    """How many examples a domain's raw input holds (an array's first dimension, a list's length);
    None where its kind does not say."""
    shape = getattr(raw, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) > 0 else None
    return len(raw) if hasattr(raw, "__len__") else None


@dataclass(frozen=True)
class TrainedWorkspace:
    """One member of a trained run (a workspace with K = 1) and the frozen specialists of its domains."""

    model: GlobalWorkspace
    domains: Mapping[str, Domain]
    specs: Mapping[str, LatentSpec]
    member: MemberSpec
    data: Path
    """The dataset folder the specialists and latents come from."""
    step: int | None
    """Training steps behind the loaded weights: a run's last checkpoint, or the step an
    experiment's member kept (its best validation check); None for experiments that predate
    recording it."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def domain(self, name: str) -> Domain:
        """The specialist of domain `name`; a UserError naming the workspace's domains otherwise."""
        if name not in self.domains:
            raise UserError(f"this workspace has no domain {name!r}; its domains: {', '.join(self.domains)}")
        return self.domains[name]

    @torch.no_grad()
    def latent(self, domain: str, raw: Any) -> torch.Tensor:
        """Raw data -> the specialist's latents (N, latent_dim); refused where NaN or infinity in the
        input (or a specialist that makes them) would become meaningless translations."""
        specialist = self.domain(domain)
        latent = torch.as_tensor(specialist.encode(raw)).to(self.device, torch.float32)
        rows, width = _rows(raw), self.specs[domain].latent_dim
        if latent.dim() != 2 or latent.shape[1] != width or rows not in (None, latent.shape[0]):
            raise UserError(
                f"the {domain} specialist ({type(specialist).__name__}) encoded {rows or 'its'} examples "
                f"to {tuple(latent.shape)}, not ({rows or 'N'}, {width}); fix its encode"
            )
        require_finite_rows(latent, f"the {domain} latents of this input", f"give finite {domain} data")
        return latent

    @torch.no_grad()
    def state(self, domain: str, raw: Any) -> torch.Tensor:
        """Raw data of one domain -> workspace states (N, workspace_dim)."""
        return self.model.state(domain, self.latent(domain, raw))[0]

    @torch.no_grad()
    def fused_state(
        self, raws: Mapping[str, Any], weights: Mapping[str, float] | None = None
    ) -> torch.Tensor:
        """Several domains of the same N examples entering at once, with weights α (equal unless
        given; normalised to sum 1); a model with fusion gates reweighs them per dimension."""
        weights = weights if weights is not None else dict.fromkeys(raws, 1.0)
        if (
            set(weights) != set(raws)
            or not all(0 <= w < math.inf for w in weights.values())
            or not max(weights.values()) > 0
        ):
            raise UserError(
                f"fusion weights {dict(weights)} must give each of {', '.join(raws)} a finite weight >= 0, "
                "not all 0"
            )
        largest = max(weights.values())  # scaled first, so that huge weights cannot overflow the sum
        weights = {d: w / largest for d, w in weights.items()}
        total = sum(weights.values())
        encodings = {d: self.model.encode(d, self.latent(d, raw)) for d, raw in raws.items()}
        lengths = {d: int(e.shape[-2]) for d, e in encodings.items()}
        if len(set(lengths.values())) > 1:
            raise UserError(f"fused inputs must hold the same examples, but their lengths differ: {lengths}")
        alpha = {
            d: torch.full(e.shape[:-1], weights[d] / total, device=self.device) for d, e in encodings.items()
        }
        return self.model.fused_state(encodings, alpha)[0]

    @torch.no_grad()
    def decode(self, domain: str, state: torch.Tensor | np.ndarray) -> Any:
        """Workspace states (N, workspace_dim) -> raw data of `domain` (images, attributes, captions)."""
        specialist = self.domain(domain)
        state = torch.as_tensor(state).to(self.device, torch.float32)
        width = self.model.config.workspace_dim
        if state.dim() != 2 or state.shape[1] != width:
            raise UserError(f"workspace states to decode must be (N, {width}), got {tuple(state.shape)}")
        require_finite_rows(state, "the workspace states to decode", "give finite states")
        prediction = self.model.decode(domain, state.unsqueeze(0))[0]
        require_finite_rows(
            prediction, f"the {domain} latents the workspace predicts", "its weights are damaged; retrain it"
        )
        decoded = specialist.decode(as_latent(prediction, self.specs[domain]))
        rows = _rows(decoded)
        if rows != len(state):
            raise UserError(
                f"the {domain} specialist ({type(specialist).__name__}) decoded {len(state)} latents to "
                f"{rows} examples; fix its decode (one example per latent)"
            )
        return decoded

    def translate(self, source: str, target: str, raw: Any) -> Any:
        """Raw data of `source` -> raw data of `target`, through the workspace."""
        return self.decode(target, self.state(source, raw))


def load_workspace(
    folder: Path | str, member: int | str = 0, device: str = "cpu", data: Path | str | None = None
) -> TrainedWorkspace:
    """One member, with its specialists, on `device` (auto, cpu, cuda), of
    - a run folder (`gw train`): `member` is its index or its label `preset/paired=N/seed=S`;
    - an experiment folder (`gw experiment semi-supervised`): `member` is its label, as in the
      `member` column of results.csv.
    `data`: the dataset folder, where it moved since training (its latents must be the same)."""
    folder = Path(folder)
    torch_device = resolve_device(device)
    if (folder / "experiment.json").is_file():
        return _experiment_member(folder, member, torch_device, data)
    config, ensemble, step = load_model(folder, torch_device)
    if data is not None:
        config = dataclasses.replace(config, data=str(data))
    labels = [m.label() for m in config.members]
    if isinstance(member, str):
        if member not in labels:
            raise UserError(f"run {folder} has no member {member!r}; its members: {', '.join(labels)}")
        member = labels.index(member)
    if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < len(labels):
        raise UserError(
            f"run {folder} has {len(labels)} member(s); choose one from 0 to {len(labels) - 1} "
            "(--member, or member= from Python)"
        )
    if not Path(config.data).is_dir():
        raise UserError(f"dataset {config.data} does not exist; if it moved, pass its folder ({MOVED_DATA})")
    check_run_data(folder, config)
    weights = {k: v[member : member + 1] for k, v in ensemble.state_dict().items()}
    spec = config.members[member]
    return _assemble(
        spec, family_of([spec]), config.workspace, weights, Path(config.data), step, torch_device
    )


def _experiment_member(
    exp: Path, member: int | str, device: torch.device, data: Path | str | None
) -> TrainedWorkspace:
    """A member of an experiment, from the chunk (ensemble) that trained it."""
    config = read_experiment(exp)
    data = Path(data) if data is not None else Path(config.data)
    done = finished_members(exp)
    some = ", ".join(sorted(done)[:3]) or "none has finished yet"
    if not isinstance(member, str):
        raise UserError(
            f"{exp} is an experiment: name its member by label, as in the member column of results.csv "
            f"(--member LABEL, or member= from Python; e.g. {some})"
        )
    if member not in done:
        raise UserError(
            f"experiment {exp} has no finished member {member!r}; name one as in the member column of "
            f"results.csv (e.g. {some})"
        )
    check_experiment_data(exp, config, data, MOVED_DATA)
    chunk, index = done[member]
    spec = chunk_members(chunk)[index]
    # A member of an architecture grid has its own sizes.
    workspace = config.workspace({d: read_spec(data, d).latent_dim for d in config.domains}, spec.grid)
    weights = {k: v[index : index + 1] for k, v in chunk_weights(chunk).items()}
    require_finite_tensors(
        weights, f"{chunk / 'model.safetensors'}", f"delete {chunk} and rerun the experiment to retrain it"
    )
    kept = read_json(chunk / "metrics.json", "chunk metrics")["members"][index].get(KEPT_STEP)
    family = chunk_family(chunk, [spec])
    return _assemble(spec, family, workspace, weights, data, None if kept is None else int(kept), device)


def _assemble(
    spec: MemberSpec,
    family: Family,
    workspace: WorkspaceConfig,
    weights: Mapping[str, torch.Tensor],
    data: Path,
    step: int | None,
    device: torch.device,
) -> TrainedWorkspace:
    """A one-member workspace of `family` with `weights`, and the specialists of DATA."""
    model = family.build_model(workspace, [spec.seed])
    if not isinstance(model, GlobalWorkspace):
        raise UserError(
            f"member {spec.label()} trained direct translators (the ablation): it has no workspace to "
            "translate through; `gw evaluate` scores its translations"
        )
    try:
        model.load_state_dict(dict(weights))
    except RuntimeError as exc:
        raise UserError(f"the weights of member {spec.label()} do not fit its model ({exc})") from exc
    model.to(device).eval().requires_grad_(False)  # frozen: used, not trained
    domains = {d: load_domain(data, d, device) for d in workspace.domains}
    specs = {d: read_spec(data, d) for d in workspace.domains}
    return TrainedWorkspace(model=model, domains=domains, specs=specs, member=spec, data=data, step=step)
