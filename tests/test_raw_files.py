"""Plugin domains encoding raw data from files a user names: `gw pretrain --raw NAME=TRAIN[,VAL,TEST]`."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import BRIGHTNESS_PLUGIN, TINY_COUNTS, one_line_error, run_cli

from global_workspace.domains.latents import load_latents
from global_workspace.domains.raw_files import read_raw_file
from global_workspace.domains.registry import DOMAINS
from global_workspace.errors import UserError


@pytest.fixture
def data(tiny_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "my_domains.py").write_text(BRIGHTNESS_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    shutil.copytree(tiny_shapes, tmp_path / "shapes")
    yield tmp_path / "shapes"
    DOMAINS.pop("brightness", None)
    sys.modules.pop("my_domains", None)


def grey(file: Path, n: int, level: int) -> str:
    """Uniformly grey images of brightness level/255, saved where a user keeps them."""
    np.save(file, np.full((n, 4, 4, 3), level, dtype=np.uint8))
    return str(file)


def pretrain(data: Path, *options: str) -> int:
    return run_cli(
        ["--plugin", "my_domains", "pretrain", str(data), "--domains", "brightness", *options, "--quiet"]
    )


def test_a_plugin_encodes_the_files_named_with_raw(data: Path, tmp_path: Path) -> None:
    train = grey(tmp_path / "mine_train.npy", TINY_COUNTS["train"], 51)
    val = grey(tmp_path / "mine_val.npy", TINY_COUNTS["val"], 102)
    assert pretrain(data, "--raw", f"brightness={train},{val}") == 0
    np.testing.assert_allclose(load_latents(data, "brightness", "train"), 0.2, rtol=1e-6)
    np.testing.assert_allclose(load_latents(data, "brightness", "val"), 0.4, rtol=1e-6)
    images = np.load(data / "test" / "images.npy").astype(np.float32) / 255.0  # no file: DATA's own
    np.testing.assert_allclose(
        load_latents(data, "brightness", "test")[:, 0], images.mean(axis=(1, 2, 3)), rtol=1e-5
    )
    record = json.loads((data / "domains" / "brightness" / "config.json").read_text())["pretrain"]
    assert record["raw"] == {"train": train, "val": val}
    assert pretrain(data, "--raw", f"brightness={train},{val}") == 0  # the same files: reused


def test_a_skipped_split_keeps_the_next_file_in_its_place(data: Path, tmp_path: Path) -> None:
    train = grey(tmp_path / "mine_train.npy", TINY_COUNTS["train"], 51)
    test = grey(tmp_path / "mine_test.npy", TINY_COUNTS["test"], 153)
    assert pretrain(data, "--raw", f"brightness={train},,{test}") == 0
    np.testing.assert_allclose(load_latents(data, "brightness", "test"), 0.6, rtol=1e-6)
    images = np.load(data / "val" / "images.npy").astype(np.float32) / 255.0  # no val file: DATA's own
    np.testing.assert_allclose(
        load_latents(data, "brightness", "val")[:, 0], images.mean(axis=(1, 2, 3)), rtol=1e-5
    )


def test_raw_files_that_do_not_fit_are_refused_in_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = grey(tmp_path / "short.npy", 10, 51)
    assert pretrain(data, "--raw", f"brightness={short}") == 2
    said, refusal = capsys.readouterr().err.strip().split("\n")  # found when encoding, after fit
    assert said.endswith("training on cpu") and refusal.startswith("gw: error: raw data file")
    assert "holds 10 examples, split 'train' has 256" in refusal
    assert pretrain(data, "--raw", f"v={short}") == 2
    assert "--raw names domain 'v', which --domains (brightness) does not list" in one_line_error(capsys)
    for malformed in ("brightness", f"brightness=,{short}", f"brightness={short},{short},{short},{short}"):
        assert pretrain(data, "--raw", malformed) == 2
        assert "write NAME=TRAIN[,VAL,TEST]" in one_line_error(capsys)
    assert pretrain(data, "--raw", f"brightness={tmp_path / 'none.npy'}") == 2
    assert "does not exist" in one_line_error(capsys)
    assert not (data / "domains" / "brightness").exists()
    assert pretrain(data) == 0
    capsys.readouterr()
    assert pretrain(data, "--raw", f"brightness={grey(tmp_path / 'other.npy', 256, 51)}") == 2
    assert "encodes other raw data than --raw names; pass --force" in one_line_error(capsys)


def test_force_never_replaces_a_domain_folder_holding_the_files_it_reads(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pretrain(data) == 0
    capsys.readouterr()
    folder = data / "domains" / "brightness"
    train = grey(folder / "mine_train.npy", TINY_COUNTS["train"], 51)
    assert pretrain(data, "--force", "--raw", f"brightness={train}") == 2
    assert (
        "domain 'brightness' folder" in (err := one_line_error(capsys))
        and "holds the --raw brightness" in err
    )
    assert Path(train).is_file()


def test_nan_in_a_raw_file_is_refused_naming_the_file_and_row(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = np.full((TINY_COUNTS["train"], 4, 4, 3), 0.5, dtype=np.float32)
    images[7, 1, 2, 0] = np.nan
    np.save(tmp_path / "nan.npy", images)
    assert pretrain(data, "--raw", f"brightness={tmp_path / 'nan.npy'}") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gw: error:") and f"--raw file {tmp_path / 'nan.npy'}" in err and "row 7" in err
    assert not (data / "domains" / "brightness").exists()


def test_the_default_reader_takes_npy_arrays_and_text_lines(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a red egg\nä blue diamond\n", encoding="utf-8")
    assert read_raw_file(tmp_path / "notes.txt") == ["a red egg", "ä blue diamond"]
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    for name, message in (("objects.npy", "cannot be read"), ("clip.wav", "override the domain's read_raw")):
        with pytest.raises(UserError, match=message):
            read_raw_file(tmp_path / name)
