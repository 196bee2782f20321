"""Reading attributes out of any domain's latents (true, reconstructed or translated).

- `attr`: the vector is decoded directly.
- `v`: the latents are decoded to images, which the image probe reads.
- `t`: the latents are decoded to captions, which the dataset's caption parser reads; a caption
  that does not parse is a failure (NaN attributes, wrong class, counted in `parse_rate`).

`Readout` holds the loaded models of one dataset folder on one device, so that repeated calls
(every evaluation of every workspace) load nothing twice; `read_attributes` is the one-shot form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.format import DatasetInfo
from ..errors import NoReadout, UserError
from ..fileio import read_json
from .attr import AttrDomain, Attributes, attribute_errors
from .base import Domain
from .caption_scoring import caption_attributes, caption_scores, parse_all
from .latents import domain_folder
from .probe import Probe
from .registry import DOMAINS
from .store import load_domain
from .text import TextDomain
from .visual import VisualDomain

__all__ = ["Attributes", "NoReadout", "Readout", "attribute_errors", "read_attributes"]


class Readout:
    """Loaded specialists (and the image probe) of DATA on `device`, loaded on first use."""

    def __init__(self, data: Path, device: torch.device | str = "cpu") -> None:
        self.data = Path(data)
        self.device = torch.device(device)
        self.info = DatasetInfo.from_json(
            read_json(self.data / "dataset.json", "dataset description"), self.data
        )
        self._domains: dict[str, Domain] = {}
        self._probes: dict[str, Probe] = {}

    def domain(self, name: str) -> Domain:
        if name not in self._domains:
            config = read_json(domain_folder(self.data, name) / "config.json", f"domain {name!r} config")
            kind = config.get("kind") if isinstance(config, dict) else None
            if kind is not None and kind not in DOMAINS:  # a plugin's latents, the plugin not imported
                raise NoReadout(f"domain {name!r} is of kind {kind!r}, which no imported module registers")
            self._domains[name] = load_domain(self.data, name, self.device)
        return self._domains[name]

    def probe(self, name: str = "v") -> Probe:
        """The image probe trained with visual domain `name` (DATA/domains/{name}/probe/)."""
        if name not in self._probes:
            self._probes[name] = Probe.load(domain_folder(self.data, name) / "probe", self.device)
        return self._probes[name]

    def attributes(self, name: str, latents: np.ndarray | torch.Tensor) -> Attributes:
        """Latents (N, latent_dim) of domain `name` -> attributes in the dataset's units."""
        domain = self.domain(name)
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != domain.latent_dim:
            raise UserError(
                f"domain {name!r} has latent size {domain.latent_dim}, got latents {tuple(z.shape)}"
            )
        if isinstance(domain, AttrDomain):
            return domain.decode(z)
        if isinstance(domain, VisualDomain):
            return self.probe(name).predict(domain.decode_float(z))
        if isinstance(domain, TextDomain):
            parsed = parse_all(domain.decode(z), self.info.name)
            return caption_attributes(parsed, self.info.name, self.info.label_columns)
        raise NoReadout(f"domain {name!r} (kind {domain.kind!r}) has no attribute readout")

    def errors(self, name: str, latents: np.ndarray | torch.Tensor, labels: np.ndarray) -> dict[str, float]:
        """attribute_errors of what `latents` say against the true label rows."""
        return attribute_errors(self.attributes(name, latents), labels, self.info.label_columns)

    def caption_scores(
        self, name: str, latents: np.ndarray | torch.Tensor, labels: np.ndarray
    ) -> dict[str, float]:
        """For a text domain: the categorical scores of the decoded captions (caption_scoring)."""
        domain = self.domain(name)
        if not isinstance(domain, TextDomain):
            raise UserError(f"domain {name!r} does not decode to captions")
        captions = domain.decode(torch.as_tensor(np.asarray(latents, dtype=np.float32)))
        parsed = parse_all(captions, self.info.name)
        return caption_scores(parsed, self.info.name, labels, self.info.label_columns)


def read_attributes(
    data_dir: Path,
    domain: str,
    latents: np.ndarray,
    device: torch.device | str = "cpu",
    readout: Readout | None = None,
) -> Attributes:
    """One-shot form of `Readout(data_dir, device).attributes(domain, latents)`; pass `readout` to
    reuse its loaded models across calls."""
    return (readout or Readout(data_dir, device)).attributes(domain, latents)
