"""A user's own domain: one small class, registered, pretrained and reloaded like the built-ins."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from global_workspace.cli import main
from global_workspace.data.format import Split
from global_workspace.domains.base import Domain
from global_workspace.domains.latents import load_latents, read_spec
from global_workspace.domains.registry import DOMAINS, register_domain
from global_workspace.domains.store import load_domain
from global_workspace.errors import UserError


class MeanColour(Domain):
    """The mean RGB of an image in [0, 1]: a frozen "encoder" with nothing to train."""

    kind = "mean-colour"
    latent_dim = 3

    def raw(self, split: Split) -> np.ndarray:
        return split.images

    def encode(self, raw: Any) -> torch.Tensor:
        images = np.asarray(raw, dtype=np.float32) / 255.0
        return torch.from_numpy(images.reshape(len(images), -1, 3).mean(axis=1))

    def decode(self, latent: torch.Tensor) -> np.ndarray:
        return latent.numpy()


def test_custom_domain_goes_through_pretrain(tiny_shapes: Path, tmp_path: Path) -> None:
    register_domain(MeanColour)
    try:
        data = tmp_path / "shapes"
        shutil.copytree(tiny_shapes, data)
        with pytest.raises(SystemExit) as done:
            main(["pretrain", str(data), "--domains", "mean-colour", "--quiet"])
        assert done.value.code in (0, None)
        assert read_spec(data, "mean-colour").latent_dim == 3
        latents = load_latents(data, "mean-colour", "val")
        assert latents.shape == (64, 3) and latents.dtype == np.float32
        domain = load_domain(data, "mean-colour")
        assert isinstance(domain, MeanColour)
        np.testing.assert_array_equal(domain.encode(np.load(data / "val" / "images.npy")).numpy(), latents)
    finally:
        DOMAINS.pop("mean-colour", None)


def test_a_kind_already_registered_by_another_class_is_refused() -> None:
    """A plugin of kind `v` replaced the image specialist, whose folders it then failed to read."""

    class Clash(MeanColour):
        kind = "v"

    with pytest.raises(UserError, match=r"kind 'v' of .*Clash is already registered by .*VisualDomain"):
        register_domain(Clash)
    assert DOMAINS["v"].__name__ == "VisualDomain"
    register_domain(MeanColour)
    try:
        assert register_domain(MeanColour) is MeanColour  # the same class again is no clash
    finally:
        DOMAINS.pop("mean-colour", None)


class ShortEncode(MeanColour):
    kind = "short-encode"

    def encode(self, raw: Any) -> torch.Tensor:
        return super().encode(raw)[:-1]


class NumpyEncode(MeanColour):
    kind = "numpy-encode"

    def encode(self, raw: Any) -> Any:
        return super().encode(raw).numpy()


class NoWidth(MeanColour):
    kind = "no-width"
    latent_dim = 0


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (ShortEncode, r"ShortEncode\) encoded split \w+ to \(\d+, 3\), not \(\d+, 3\); fix its encode"),
        (NoWidth, "NoWidth\\) has latent_dim 0; set it to the whole number"),
        (NumpyEncode, None),  # a numpy array is as good as a tensor
    ],
)
def test_a_plugin_that_encodes_badly_is_one_line(
    cls: type[Domain],
    message: str | None,
    tiny_shapes: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each was a traceback (RuntimeError, AttributeError); latent_dim 0 wrote latents no run could read."""
    register_domain(cls)
    try:
        shutil.copytree(tiny_shapes, tmp_path / "shapes")
        with pytest.raises(SystemExit) as done:
            main(["pretrain", str(tmp_path / "shapes"), "--domains", cls.kind, "--quiet"])
        if message is None:
            assert done.value.code in (0, None)
            assert load_latents(tmp_path / "shapes", cls.kind, "val").shape == (64, 3)
        else:
            err = capsys.readouterr().err.strip().splitlines()[-1]  # after "training on cpu"
            assert done.value.code == 2 and err.startswith("gw: error:")
            assert re.search(message, err), err
            assert not (tmp_path / "shapes" / "domains" / cls.kind).exists()
    finally:
        DOMAINS.pop(cls.kind, None)
