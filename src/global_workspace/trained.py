"""A trained workspace from Python: raw data in, raw data out.

    from global_workspace import load_workspace
    ws = load_workspace("runs/full")              # member 0 of the run; member=k for another
    captions = ws.translate("v", "t", images)     # uint8 images (N, H, W, 3) -> N captions
    pictures = ws.translate("attr", "v", labels)  # label rows in the dataset's units -> images
    z = ws.state("v", images)                     # (N, workspace_dim) workspace states

Each domain's frozen specialist (`gw pretrain`) turns raw data into its latent and back; one member
of the run's workspace does the rest. The run is refused when its dataset's latents are not those
it was trained on (a re-pretrained specialist has another latent space, so its translations would
be meaningless).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .device import resolve_device
from .domains.base import Domain
from .domains.latents import LatentSpec, read_spec
from .domains.store import load_domain
from .errors import UserError
from .workspace.checkpoint import check_run_data, load_model
from .workspace.evaluate import as_latent
from .workspace.families import family_of
from .workspace.model import GlobalWorkspace
from .workspace.presets import MemberSpec


@dataclass(frozen=True)
class TrainedWorkspace:
    """One member of a trained run (a workspace with K = 1) and the frozen specialists of its domains."""

    model: GlobalWorkspace
    domains: Mapping[str, Domain]
    specs: Mapping[str, LatentSpec]
    member: MemberSpec
    step: int
    """Training steps behind the loaded weights."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _domain(self, name: str) -> Domain:
        if name not in self.domains:
            raise UserError(f"this workspace has no domain {name!r}; its domains: {', '.join(self.domains)}")
        return self.domains[name]

    @torch.no_grad()
    def latent(self, domain: str, raw: Any) -> torch.Tensor:
        """Raw data -> the specialist's latents (N, latent_dim)."""
        return self._domain(domain).encode(raw).to(self.device, torch.float32)

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
            or not all(w >= 0 for w in weights.values())
            or not sum(weights.values()) > 0
        ):
            raise UserError(
                f"fusion weights {dict(weights)} must give each of {', '.join(raws)} a weight >= 0, not all 0"
            )
        total = sum(weights.values())
        encodings = {d: self.model.encode(d, self.latent(d, raw)) for d, raw in raws.items()}
        alpha = {
            d: torch.full(e.shape[:-1], weights[d] / total, device=self.device) for d, e in encodings.items()
        }
        return self.model.fused_state(encodings, alpha)[0]

    @torch.no_grad()
    def decode(self, domain: str, state: torch.Tensor) -> Any:
        """Workspace states (N, workspace_dim) -> raw data of `domain` (images, attributes, captions)."""
        specialist = self._domain(domain)
        prediction = self.model.decode(domain, state.to(self.device, torch.float32).unsqueeze(0))[0]
        return specialist.decode(as_latent(prediction, self.specs[domain]))

    def translate(self, source: str, target: str, raw: Any) -> Any:
        """Raw data of `source` -> raw data of `target`, through the workspace."""
        return self.decode(target, self.state(source, raw))


def load_workspace(run: Path | str, member: int = 0, device: str = "cpu") -> TrainedWorkspace:
    """Member `member` of the run in folder `run`, with its specialists, on `device` (auto, cpu, cuda)."""
    run = Path(run)
    torch_device = resolve_device(device)
    config, ensemble, step = load_model(run, torch_device)
    count = len(config.members)
    if not 0 <= member < count:
        raise UserError(f"run {run} has {count} member(s); choose member= from 0 to {count - 1}")
    check_run_data(run, config)
    spec = config.members[member]
    model = family_of([spec]).build_model(config.workspace, [spec.seed]).to(torch_device)
    model.load_state_dict({k: v[member : member + 1] for k, v in ensemble.state_dict().items()})
    model.eval()
    assert isinstance(model, GlobalWorkspace)
    data = Path(config.data)
    domains = {d: load_domain(data, d, torch_device) for d in config.domains}
    specs = {d: read_spec(data, d) for d in config.domains}
    return TrainedWorkspace(model=model, domains=domains, specs=specs, member=spec, step=step)
