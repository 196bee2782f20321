"""`gw demo`: the cheap checks (the full run is `make demo`, minutes long)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import folder_of_other_files, one_line_error

from global_workspace.cli import main
from global_workspace.errors import UserError


def test_demo_refuses_an_existing_folder_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    # --force would not replace it either (it is not a demo folder), so the error does not suggest it.
    assert "not a demo folder" in err and "pass --force" not in err
    assert (out / "mine.txt").read_text() == "keep"


def test_force_replaces_only_a_demo_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of other files is refused even with --force, and they stay; a demo folder (one
    with demo.json) starts afresh, up to the first stage."""
    from global_workspace.data import simple_shapes

    class Started(Exception):
        pass

    def started(*args: object, **kwargs: object) -> None:
        raise Started

    monkeypatch.setattr(simple_shapes, "generate_simple_shapes", started)
    out = folder_of_other_files(tmp_path / "mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(out), "--force", "--quiet"])
    assert exit_info.value.code == 2
    assert "not a demo folder" in one_line_error(capsys)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"] and (out / "thesis.tex").read_text() == "keep"
    (out / "demo.json").write_text("{}")
    with pytest.raises(Started):
        main(["demo", str(out), "--force", "--quiet"])
    assert [p.name for p in out.iterdir()] == ["demo.json"]


def test_demo_rejects_bad_step_counts_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(tmp_path / "demo"), "--pretrain-steps", "v=lots"])
    assert exit_info.value.code == 2
    assert "cannot read --pretrain-steps 'v=lots'" in capsys.readouterr().err  # the demo's own option
    assert not (tmp_path / "demo").exists()


def test_an_interrupted_demo_continues_without_redoing_finished_stages(tmp_path: Path) -> None:
    import dataclasses
    import json

    from global_workspace.experiments.demo import demo_options, run_demo

    options = demo_options(
        "demo",
        tmp_path / "demo",
        train=300,
        paired="20,ALL",
        presets="tr,full",
        seeds=1,
        steps=20,
        pretrain_steps={"v": 10, "probe": 10, "blur": 5},
        progress=False,
    )
    options = dataclasses.replace(options, val=64, test=64, eval_every=10, processes=2)
    report = run_demo(options)[0]
    assert report.is_file()
    out = tmp_path / "demo"
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) == {"dataset", "pretrain", "experiment_v_attr"}
    # Interrupt the experiment: it never finished, so a rerun must redo it and only it.
    latents = out / "data" / "domains" / "v" / "latents" / "train.npy"
    stamp = latents.stat().st_mtime_ns
    (out / "experiment_v_attr" / "results.csv").unlink()
    del timings["experiment_v_attr"]
    (out / "timings.json").write_text(json.dumps(timings))
    run_demo(options)
    assert latents.stat().st_mtime_ns == stamp
    assert (out / "experiment_v_attr" / "results.csv").is_file()
    assert "experiment_v_attr" in json.loads((out / "timings.json").read_text())
    # Stopped after the experiment finished but before its time was recorded: nothing is redone.
    results = out / "experiment_v_attr" / "results.csv"
    stamp = results.stat().st_mtime_ns
    (out / "timings.json").write_text(json.dumps(timings))
    run_demo(options)
    assert results.stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="other options"):
        run_demo(dataclasses.replace(options, steps=21))
    # The experiment's ensembles shared out over 2 or 3 worker processes: the same results.
    from global_workspace.experiments.demo import run_sharded
    from global_workspace.experiments.runner import SemiSupervisedOptions

    again = tmp_path / "three"
    run_sharded(
        SemiSupervisedOptions(
            data=out / "data", domains="v,attr", paired="20,ALL", presets="tr,full", seeds=1, steps=20,
            batch_size=options.batch_size, lr=options.lr, eval_every=10, out=again, device="cpu",
            progress=False, threads=1,
        ),
        processes=3,
    )  # fmt: skip
    assert (again / "results.csv").read_bytes() == results.read_bytes()


def test_unknown_scale_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(tmp_path / "demo"), "--scale", "huge"])
    assert exit_info.value.code == 2
    assert "unknown scale 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--paired", "abc"], "neither a whole number nor ALL"),
        (["--paired", "301"], "more than the train split's 300 pairs"),
        (["--paired", "60,60"], "names 60 twice"),
        (["--presets", "tr,nope"], "nope"),
        (["--train", "-3"], "--train must be at least 1"),
        (["--seeds", "0"], "--seeds"),
        (["--steps", "0"], "--steps"),
        (["--batch-size", "0"], "--batch-size"),
        (["--threads", "-1"], "--threads"),
        (["--pretrain-steps", "0"], "at least 1"),
        (["--pretrain-steps", "v=0"], "at least 1"),
        (["--pretrain-steps", "v=-1"], "--pretrain-steps v=-1: every step count must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    out = tmp_path / "demo"
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(out), "--train", "300", "--quiet", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gw: error:") and words in err[0], err
    assert not out.exists()


def test_the_paper_scale_is_sized_for_two_cpu_cores_and_the_paper_gpu_scale_is_the_paper_grid(
    tmp_path: Path,
) -> None:
    """`--scale paper` must run on a laptop-class CPU in an hour or two; the GPU grid keeps its own name."""
    from global_workspace.experiments.demo import check_options, demo_options
    from global_workspace.experiments.semi_supervised.parsing import parse_paired, parse_presets

    def member_samples(scale: str) -> int:
        """Training rows drawn by the whole experiment on one domain pair (members × steps × batch)."""
        options = demo_options(scale, tmp_path / scale)
        check_options(options)
        members = len(parse_presets(options.presets, {})) * len(parse_paired(options.paired, options.train))
        return members * options.seeds * options.steps * options.batch_size

    paper = demo_options("paper", tmp_path / "paper")
    assert paper.train == 500_000 and paper.text and paper.threads == 1
    assert paper.processes == demo_options("demo", tmp_path / "demo").processes
    assert member_samples("paper") <= 6 * member_samples("demo")
    gpu = demo_options("paper-gpu", tmp_path / "paper-gpu")
    assert gpu.train == 500_000 and gpu.processes == 1 and gpu.batch_size == 2056
    assert member_samples("paper-gpu") > 20 * member_samples("paper")
