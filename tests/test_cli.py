"""The `gw` entry point: help everywhere, plugins for users' own domains, one-line errors."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from global_workspace.cli import main
from global_workspace.domains.latents import load_latents
from global_workspace.domains.registry import DOMAINS


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0)


@pytest.mark.parametrize(
    "command",
    [[], ["data"], ["data", "simple-shapes"], ["pretrain"], ["train"], ["experiment", "semi-supervised"]],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*command, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_plugin_registers_a_users_domain(
    tiny_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_domains.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import torch
            from global_workspace.domains.base import Domain
            from global_workspace.domains.registry import register_domain

            @register_domain
            class Brightness(Domain):
                kind = "brightness"
                latent_dim = 1

                def raw(self, split):
                    return split.images

                def encode(self, raw):
                    images = np.asarray(raw, dtype=np.float32) / 255.0
                    return torch.from_numpy(images.reshape(len(images), -1).mean(axis=1, keepdims=True))

                def decode(self, latent):
                    return latent.numpy()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "shapes"
    shutil.copytree(tiny_shapes, data)
    try:
        assert (
            run(["--plugin", "my_domains", "pretrain", str(data), "--domains", "brightness", "--quiet"]) == 0
        )
        latents = load_latents(data, "brightness", "test")
        assert latents.shape == (64, 1) and np.all(latents > 0)
    finally:
        DOMAINS.pop("brightness", None)
        sys.modules.pop("my_domains", None)


def test_missing_plugin_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--plugin", "no_such_module_here", "data", "--help"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gw: error: cannot import plugin") and "\n" not in err
