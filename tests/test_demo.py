"""`gw demo`: the cheap checks (the full run is `make demo`, minutes long)."""

from __future__ import annotations

from pathlib import Path

import pytest

from global_workspace.cli import main


def test_demo_refuses_an_existing_folder_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(out)])
    assert exit_info.value.code == 2
    assert "pass --force" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep"


def test_demo_rejects_bad_step_counts_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(tmp_path / "demo"), "--pretrain-steps", "v=lots"])
    assert exit_info.value.code == 2
    assert "--steps" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
