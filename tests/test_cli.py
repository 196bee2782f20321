"""The `gw` entry point: help everywhere, plugins for users' own domains, one-line errors."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BRIGHTNESS_PLUGIN, one_line_error
from workspace_fixtures import linear_pair

from global_workspace.cli import main
from global_workspace.domains.latents import load_latents
from global_workspace.domains.registry import DOMAINS
from global_workspace.errors import UserError, require_at_least, require_positive


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


def test_help_reflows_every_paragraph_to_the_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A docstring wrapped for the source must not break mid-sentence in a wide terminal."""
    monkeypatch.setenv("COLUMNS", "250")
    assert run(["experiment", "combine", "--help"]) == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    second_paragraph = next(line for line in lines if line.startswith("For a grid trained in parts"))
    assert second_paragraph.endswith("those one experiment training every member would give.")


def test_plugin_registers_a_users_domain(
    tiny_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_domains.py").write_text(BRIGHTNESS_PLUGIN)
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


def test_translate_into_a_plugin_domain_shows_the_truth_as_its_specialist_reads_it(
    tiny_shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plugin's raw data are images but its decoder gives a number: the truth is a number too;
    and it has no attribute readout, which evaluation skips."""
    (tmp_path / "my_domains.py").write_text(BRIGHTNESS_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    data, out = tmp_path / "shapes", tmp_path / "run"
    shutil.copytree(tiny_shapes, data)
    plugin = ["--plugin", "my_domains"]
    try:
        assert run([*plugin, "pretrain", str(data), "--domains", "attr,brightness", "--quiet"]) == 0
        train = ["train", str(data), "--domains", "attr,brightness", "--preset", "tr", "--paired", "64"]
        assert run([*plugin, *train, "--steps", "20", "--batch-size", "32", "--device", "cpu", "--quiet",
                    "--out", str(out)]) == 0  # fmt: skip
        capsys.readouterr()
        translate = [
            "translate",
            str(out),
            "--from",
            "attr",
            "--to",
            "brightness",
            "--n",
            "2",
            "--device",
            "cpu",
        ]
        assert run([*plugin, *translate]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert (
            len(lines) == 4 and lines[0].startswith("0: truth: [") and lines[1].strip().startswith("attr →")
        )
        truth = float(lines[0].split("[")[1].rstrip("]"))
        assert 0 < truth < 1  # the first test image's mean brightness
        # More examples than the split holds: all of them, and it says so.
        assert run([*plugin, *translate[:-4], "--n", "100000", "--device", "cpu"]) == 0
        shown = capsys.readouterr()
        assert "the test split holds" in shown.err and "showing them all" in shown.err
        assert len(shown.out.splitlines()) == 2 * int(shown.err.split("holds ")[1].split()[0]) < 200000
        # A kind with no attribute readout is left out of the attribute metrics, not an error.
        assert run([*plugin, "evaluate", str(out), "--device", "cpu"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert "no attribute readout" in metrics["skipped"]["brightness"]
    finally:
        DOMAINS.pop("brightness", None)
        sys.modules.pop("my_domains", None)


def test_missing_plugin_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--plugin", "no_such_module_here", "data", "--help"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gw: error: cannot import plugin") and "\n" not in err


def _inputs(tmp_path: Path) -> dict[str, list[str]]:
    """A command line per sub-command, good as it stands (tiny sizes); a case appends one bad option."""
    data, out = str(linear_pair(tmp_path / "data", n=60)), str(tmp_path / "out")
    few = ["--steps", "2", "--batch-size", "8", "--device", "cpu", "--quiet"]
    return {
        "train": ["train", data, "--domains", "a,b", "--paired", "8", "--out", out, *few],
        "semi-supervised": ["experiment", "semi-supervised", data, "--domains", "a,b", "--paired", "8",
                            "--presets", "tr", "--seeds", "1", "--labelled", "10", "--out", out, *few],
        "attention": ["experiment", "attention", str(tmp_path / "run"), "--out", out, "--classifier-steps",
                      "2", "--selector-steps", "2", "--test-rows", "10", "--device", "cpu", "--quiet"],
        "demo": ["demo", out, "--train", "300", "--quiet"],
        "pretrain": ["pretrain", data, "--quiet"],
        "simple-shapes": ["data", "simple-shapes", out, "--train", "10", "--val", "10", "--test", "10"],
        "factory": ["data", "factory", out, "--train", "10", "--val", "10", "--test", "10"],
        "show": ["data", "show", data, "--out", str(tmp_path / "out.png")],
        "translate": ["translate", str(tmp_path / "run"), "--from", "a", "--to", "b", "--out",
                      str(tmp_path / "out.png")],
    }  # fmt: skip


NOT_FINITE = ("inf", "-inf", "nan")
MEANINGLESS = [
    *(("train", "--lr", v) for v in ("-1", "0", *NOT_FINITE)),
    *(("train", option, "0") for option in ("--steps", "--batch-size", "--width", "--depth", "--log-every")),
    ("train", "--eval-every", "-1"),
    ("train", "--ensemble-seeds", "0"),
    *(("semi-supervised", "--lr", v) for v in ("-1", "0", *NOT_FINITE)),
    *(("semi-supervised", option, "0")
      for option in ("--steps", "--batch-size", "--width", "--seeds", "--max-members")),
    ("semi-supervised", "--eval-every", "-1"),
    ("semi-supervised", "--threads", "-1"),
    *(("attention", "--lr", v) for v in ("-1", "0", *NOT_FINITE)),
    *(("attention", option, v)
      for option in ("--scale-low", "--scale-high", "--grid-max") for v in ("-1", *NOT_FINITE)),
    *(("attention", option, "0")
      for option in ("--classifier-steps", "--selector-steps", "--batch-size", "--head-size",
                     "--grid-points")),
    ("attention", "--test-rows", "-1"),
    ("demo", "--steps", "0"),
    ("demo", "--batch-size", "-8"),
    ("pretrain", "--batch-size", "0"),
    ("pretrain", "--steps", "0"),
    ("simple-shapes", "--workers", "0"),
    ("factory", "--image-size", "0"),
    ("show", "--n", "0"),
    ("translate", "--n", "0"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "option", "value"), MEANINGLESS)
def test_meaningless_numbers_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str, value: str
) -> None:
    """Negative, zero where it means nothing, infinite or NaN: exit 2, one line naming the option,
    nothing written (these used to train on, to losses of 1e17 or NaN, and exit 0)."""
    argv = _inputs(tmp_path)[command]
    before = sorted(tmp_path.rglob("*"))
    assert run([*argv, option, value]) == 2
    assert option in one_line_error(capsys)
    assert sorted(tmp_path.rglob("*")) == before


def test_the_validators_refuse_what_is_not_a_finite_number() -> None:
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(UserError, match="must be a finite number at least 0"):
            require_at_least([("--grid-max", value, 0)])
        with pytest.raises(UserError, match="must be a finite number above 0"):
            require_positive([("--lr", value)])
    with pytest.raises(UserError, match=r"--lr must be above 0, got 0\.0"):
        require_positive([("--lr", 0.0)])
    require_at_least([("--steps", 10**400, 1)])  # a whole number is finite, however large
    require_positive([("--lr", 1e-300)])


@pytest.mark.parametrize(("command", "option"), sorted({(c, o) for c, o, _ in MEANINGLESS}))
def test_words_where_numbers_belong_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str
) -> None:
    """Typer's own refusal, drawn as a five-line box before, is one line like the rest."""
    assert run([*_inputs(tmp_path)[command], option, "many"]) == 2
    assert option in one_line_error(capsys)


BAD_PATHS = {
    "under a plain file": lambda tmp: tmp / "notes.txt" / "out",
    "too long": lambda tmp: tmp / ("x" * 300),
    "missing parent made": lambda tmp: tmp / "new" / "deeper" / "out",
}


@pytest.mark.parametrize("command", sorted(_inputs(Path("/unused"))))
@pytest.mark.parametrize("where", sorted(BAD_PATHS))
def test_unusable_paths_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, where: str
) -> None:
    """Every path a command reads or writes replaced by one the system refuses: exit 2, one line
    (or, for a folder that can be made, success)."""
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    bad = str(BAD_PATHS[where](tmp_path))
    for given in (str(tmp_path / "out"), str(tmp_path / "out.png"), str(tmp_path / "data")):
        argv = _inputs(tmp_path)[command]
        if given not in argv:
            continue
        swapped = [bad + (".png" if given.endswith(".png") else "") if a == given else a for a in argv]
        capsys.readouterr()  # only this run's stderr
        code = run(swapped)
        if code != 0 or where != "missing parent made":
            assert code == 2, (swapped, code)
            one_line_error(capsys)
