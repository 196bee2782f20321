"""A domain name is a plain name, never a path: checked before any folder is read or written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_domains_custom import MeanColour
from workspace_fixtures import gw_error, linear_pair, one_thread  # noqa: F401

from global_workspace.domains import registry
from global_workspace.domains.latents import domain_folder
from global_workspace.domains.registry import register_domain
from global_workspace.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ["--steps", "4", "--batch-size", "16", "--width", "8", "--depth", "2", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize(
    "name", ["../x", "/abs/domains/b", "a/b", ".", "..", "", "v+t", "a,b", "1st", "-x", "a b"]
)
def test_a_name_that_is_not_plain_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="is not a plain name"):
        domain_folder(tmp_path, name)


@pytest.mark.parametrize("name", ["v", "attr", "t", "mean-colour", "_x1", "Brightness"])
def test_plain_names_are_folders_of_data_domains(tmp_path: Path, name: str) -> None:
    assert domain_folder(tmp_path, name) == tmp_path / "domains" / name


def test_train_refuses_a_domain_given_as_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = linear_pair(tmp_path / "data", n=100)
    other = linear_pair(tmp_path / "other", n=100, seed=1)
    run = tmp_path / "run"
    base = ["train", data, "--preset", "tr", "--paired", 20, "--out", run, *SMALL]
    for domains in (f"a,{other / 'domains' / 'b'}", "a,../../other/domains/b", "a,../../x"):
        assert "is not a plain name" in gw_error(capsys, *base, "--domains", domains)
        assert not run.exists()


def test_a_plugin_domain_named_as_a_path_writes_nothing(
    tiny_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Escape(MeanColour):
        kind = "../../escape"

    monkeypatch.setattr(registry, "DOMAINS", dict(registry.DOMAINS))
    with pytest.raises(UserError, match=r"'\.\./\.\./escape' is not a plain name.*Escape"):
        register_domain(Escape)
    assert Escape.kind not in registry.DOMAINS
    # Registered around the decorator, it still cannot lead pretrain out of DATA/domains.
    registry.DOMAINS[Escape.kind] = Escape
    data = tmp_path / "in" / "shapes"
    shutil.copytree(tiny_shapes, data)
    assert "is not a plain name" in gw_error(capsys, "pretrain", data, "--domains", Escape.kind, "--quiet")
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["shapes"]
    assert not (data / "domains").exists()
