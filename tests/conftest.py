"""Shared fixtures."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from global_workspace.data.simple_shapes import generate_simple_shapes

TINY_COUNTS = {"train": 256, "val": 64, "test": 64}
TINY_SEED = 7
PRETRAIN_STEPS = "v=80,probe=40,blur=20,t=100,caption=60"
BRIGHTNESS_PLUGIN = """
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
"""The README's plugin domain, as a user's my_domains.py: the mean brightness of an image."""
PRETRAIN_ARGS = ["--steps", PRETRAIN_STEPS, "--batch-size", "64", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a small Simple Shapes dataset (train 256, val 64, test 64, seed 7), made once per session.

    Shared by many tests: read it, never modify it.
    """
    out = tmp_path_factory.mktemp("tiny") / "shapes"
    generate_simple_shapes(out, TINY_COUNTS, seed=TINY_SEED)
    return out


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access is disabled in this test")


@pytest.fixture(scope="session")
def pretrained(tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the tiny dataset with v, attr and t pretrained, made with the network cut off."""
    data = tmp_path_factory.mktemp("pretrain") / "shapes"
    shutil.copytree(tiny_shapes, data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        assert run_cli(["pretrain", str(data), *PRETRAIN_ARGS]) == 0
    yield data


def run_cli(args: list[str]) -> int:
    """`gw ARGS` in this process; returns the exit code."""
    from global_workspace.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes: equal before and after means nothing was touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """What a refused command wrote to stderr, checked to be one line `gw: error: …` (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("gw: error:") and "\n" not in err, err
    return err


def folder_of_other_files(path: Path) -> Path:
    """A folder `gw` did not write, which no --force may delete."""
    path.mkdir()
    (path / "thesis.tex").write_text("keep")
    return path
