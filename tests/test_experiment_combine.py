"""`gw experiment combine`: a grid trained in parts reads as the one experiment that trains it whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import folder_of_other_files, one_line_error
from test_experiment_semi_supervised import exp_data, options, read_csv  # noqa: F401
from workspace_fixtures import one_thread  # noqa: F401

from global_workspace.cli import main
from global_workspace.experiments.runner import run_semi_supervised

pytestmark = pytest.mark.usefixtures("one_thread")

VAL = "val_min/translation/mean/latent_mse"
SUM = "translation/sum/latent_mse"
TINY = dict(presets="tr,full", seeds=2, steps=20, eval_every=10)


@pytest.fixture(scope="module")
def parts(exp_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:  # noqa: F811
    """One weight-decay grid trained whole, and the same grid trained in two parts."""
    root = tmp_path_factory.mktemp("parts")
    whole, low, high = root / "whole", root / "low", root / "high"
    run_semi_supervised(options(exp_data, whole, **TINY, grid_wd="0,1"))
    run_semi_supervised(options(exp_data, low, **TINY, grid_wd="0"))
    run_semi_supervised(options(exp_data, high, **TINY, grid_wd="1"))
    return whole, low, high


def combine(*args: str | Path) -> None:
    """`gw experiment combine ARGS`, which must succeed."""
    with pytest.raises(SystemExit) as done:
        main(["experiment", "combine", *map(str, args)])
    assert done.value.code == 0


def test_a_grid_in_two_parts_reads_as_the_whole(parts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    whole, low, high = parts
    out = tmp_path / "combined"
    combine(low, high, "--out", out)

    rows = read_csv(out / "results.csv")
    assert len(rows) == len(read_csv(whole / "results.csv")) == 2 * 2 * 2 * 2  # presets × N × decays × seeds
    # Each (preset, N) keeps the decay with the lower mean validation minimum over its two seeds.
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for r in rows:
        key = (r["preset"], int(r["paired"]))
        same = [
            float(o[VAL])
            for o in rows
            if (o["preset"], int(o["paired"]), o["weight_decay"]) == (*key, r["weight_decay"])
        ]
        score = sum(same) / len(same)
        if key not in best or score < best[key][1]:
            best[key] = (float(r["weight_decay"]), score)
    selection = json.loads((out / "selection.json").read_text())
    chosen = {(s["preset"], int(s["paired"])): s["grid_point"] for s in selection["selected"]}
    assert set(chosen) == set(best)
    for key, label in chosen.items():
        source = low if best[key][0] == 0 else high
        assert label.endswith(f" in {source.resolve()}"), (key, label)

    # The ratios are those of the experiment that trained the whole grid.
    mine = json.loads((out / "efficiency.json").read_text())
    theirs = json.loads((whole / "efficiency.json").read_text())
    ratio = mine["metrics"][SUM]["full_vs_tr"]["ratio_median"]
    assert ratio == pytest.approx(theirs["metrics"][SUM]["full_vs_tr"]["ratio_median"], rel=1e-4)
    paper = [lv["ratio"] for lv in mine["paper_protocol"]["comparisons"]["full_vs_tr"]["levels"]]
    whole_paper = [lv["ratio"] for lv in theirs["paper_protocol"]["comparisons"]["full_vs_tr"]["levels"]]
    assert paper == pytest.approx(whole_paper, rel=1e-4)
    assert mine["budget"]["steps"] == 20

    swapped = tmp_path / "swapped"  # the order of the sources changes nothing read
    combine(high, low, "--out", swapped)
    assert json.loads((swapped / "efficiency.json").read_text())["metrics"] == mine["metrics"]

    record = json.loads((out / "combined.json").read_text())
    assert [s["experiment"] for s in record["sources"]] == [str(low.resolve()), str(high.resolve())]
    assert all(s["finished"] == s["planned"] == 8 for s in record["sources"])
    report = (out / "report.html").read_text()
    assert "The point kept per preset and pair count" in report and "paper&#x27;s reading" in report.lower()


def test_an_unfinished_experiment_offers_the_members_it_finished(
    parts: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, low, high = parts
    stopped = tmp_path / "stopped"
    shutil.copytree(high, stopped)
    (stopped / "results.csv").unlink()
    chunks = sorted((stopped / "chunks").iterdir())
    shutil.rmtree(chunks[0])  # an ensemble it had not finished
    out = tmp_path / "combined"
    combine(low, stopped, "--out", out)
    record = json.loads((out / "combined.json").read_text())
    counts = {s["experiment"]: (s["finished"], s["planned"]) for s in record["sources"]}
    assert counts[str(stopped.resolve())][0] < counts[str(stopped.resolve())][1] == 8
    assert len(read_csv(out / "results.csv")) == 8 + counts[str(stopped.resolve())][0]

    combine(low, high, "--out", out, "--force")  # a combined folder is replaced only with --force
    assert len(read_csv(out / "results.csv")) == 16


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("twice", "a second time; name each experiment once"),
        ("unknown-preset", "after the colon name presets it trained"),
        ("no-preset", "names no preset after the colon"),
        ("in-dataset", "lies inside the dataset"),
        ("inside", "lies inside the experiment"),
        ("not-experiment", "is not an experiment folder"),
        ("other-budget", "combine only experiments of one budget"),
        ("other-domains", "choose only among experiments of the same domains"),
        ("foreign", "--force only replaces combined folders"),
        ("exists", "pass --force to overwrite it"),
    ],
)
def test_combine_refuses_what_would_not_read_as_one(
    exp_data: Path,  # noqa: F811
    parts: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    message: str,
) -> None:
    _, low, high = parts
    out = tmp_path / "combined"
    sources: list[Path] = [low, high]
    extra: list[str] = []
    if case == "twice":
        sources = [low, Path(f"{low}:tr")]
    elif case == "unknown-preset":
        sources = [low, Path(f"{high}:tr,cont")]
    elif case == "no-preset":
        sources = [low, Path(f"{high}:,")]
    elif case == "in-dataset":
        out = exp_data / "combined"
    elif case == "inside":
        out = low / "combined"
    elif case == "not-experiment":
        sources = [low, folder_of_other_files(tmp_path / "notes")]
    elif case == "other-budget":
        longer = tmp_path / "longer"
        run_semi_supervised(options(exp_data, longer, **{**TINY, "steps": 30}, grid_wd="1"))
        sources = [low, longer]
    elif case == "other-domains":
        shutil.copytree(high, tmp_path / "one-domain")
        meta = json.loads((tmp_path / "one-domain/experiment.json").read_text())
        meta["config"]["domains"] = ["attr"]
        (tmp_path / "one-domain/experiment.json").write_text(json.dumps(meta))
        sources = [low, tmp_path / "one-domain"]
    elif case == "foreign":
        out = folder_of_other_files(out)
        extra = ["--force"]
    elif case == "exists":
        combine(low, high, "--out", out)
    capsys.readouterr()  # what setting the case up printed
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    with pytest.raises(SystemExit) as done:
        main(["experiment", "combine", *map(str, sources), "--out", str(out), *extra])
    assert done.value.code == 2
    assert message in one_line_error(capsys)
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before


def test_a_source_can_offer_only_some_presets(parts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, low, high = parts
    out = tmp_path / "combined"
    combine(f"{low}:tr", high, "--out", out)
    rows = read_csv(out / "results.csv")
    assert sorted((r["preset"], r["weight_decay"]) for r in rows) == sorted(
        [("tr", "0.0")] * 4 + [("tr", "1.0")] * 4 + [("full", "1.0")] * 4
    )
    selection = json.loads((out / "selection.json").read_text())
    full = [s for s in selection["selected"] if s["preset"] == "full"]
    assert full and all(s["grid_point"].endswith(f" in {high.resolve()}") for s in full)
    record = json.loads((out / "combined.json").read_text())
    assert [(s["presets"], s["finished"], s["planned"]) for s in record["sources"]] == [
        (["tr"], 4, 4),
        (["tr", "full"], 8, 8),
    ]


def test_a_point_with_fewer_finished_seeds_is_left_out(
    exp_data: Path,  # noqa: F811
    parts: tuple[Path, Path, Path],
    tmp_path: Path,
) -> None:
    _, low, _ = parts
    one_seed = tmp_path / "one-seed"
    run_semi_supervised(options(exp_data, one_seed, **{**TINY, "seeds": 1}, grid_wd="0.01"))
    out = tmp_path / "combined"
    combine(low, one_seed, "--out", out)
    assert {r["weight_decay"] for r in read_csv(out / "results.csv")} == {"0.0"}
    record = json.loads((out / "combined.json").read_text())
    assert len(record["incomplete_points_left_out"]) == 4  # 2 presets × 2 pair counts
    assert [s["finished"] for s in record["sources"]] == [8, 0]
