"""`load_workspace`: a trained run used from Python, raw data in and raw data out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from workspace_fixtures import one_thread  # noqa: F401

import global_workspace
from global_workspace.cli import main
from global_workspace.data.format import load_dataset
from global_workspace.domains.attr import Attributes
from global_workspace.domains.pretrain import PretrainConfig, pretrain
from global_workspace.errors import UserError
from global_workspace.experiments.semi_supervised.results_io import read_results_csv
from global_workspace.workspace.checkpoint import load_model, read_config
from global_workspace.workspace.data import load_latent_data
from global_workspace.workspace.evaluate import latent_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tiny_shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two members of `full` on the tiny dataset's images and attributes (specialists barely trained)."""
    root = tmp_path_factory.mktemp("trained")
    data = root / "data"
    shutil.copytree(tiny_shapes, data)
    steps = {"v": 10, "probe": 10, "blur": 5}
    pretrain(data, PretrainConfig(domains=("v", "attr"), steps=steps, progress=False))
    out = root / "run"
    args = ["train", str(data), "--domains", "v,attr", "--preset", "full", "--paired", "64",
            "--steps", "30", "--batch-size", "32", "--ensemble-seeds", "2", "--device", "cpu", "--quiet",
            "--out", str(out)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None)
    return out


def data_of(run: Path) -> Path:
    return Path(read_config(run).data)


def test_a_member_translates_raw_data_as_the_ensemble_does(run: Path) -> None:
    ws = global_workspace.load_workspace(run, member=1)
    assert ws.member.seed == 1 and ws.step == 30
    _, ensemble, _ = load_model(run, torch.device("cpu"))
    test = load_dataset(data_of(run)).split("test")
    images, labels = test.images[:5], test.labels[:5]

    latents = ws.latent("attr", labels)
    assert torch.allclose(ws.state("attr", labels), ensemble.state("attr", latents)[1], atol=1e-6)

    pictures = ws.translate("attr", "v", labels)
    assert isinstance(pictures, np.ndarray) and pictures.shape == (5, *images.shape[1:])
    assert pictures.dtype == np.uint8
    read = ws.translate("v", "attr", images)
    assert isinstance(read, Attributes) and len(read) == 5
    assert read.columns == tuple(load_dataset(data_of(run)).info.label_columns)
    assert np.array_equal(ws.decode("attr", ws.state("v", images)).values, read.values)
    # One domain entering alone is its own state; weights only need to be proportions.
    assert torch.allclose(ws.fused_state({"v": images}), ws.state("v", images), atol=1e-6)
    both = ws.fused_state({"v": images, "attr": labels}, {"v": 2.0, "attr": 2.0})
    assert torch.allclose(both, ws.fused_state({"v": images, "attr": labels}), atol=1e-6)


def test_an_experiment_member_is_the_one_the_experiment_scored(run: Path, tmp_path: Path) -> None:
    """Loaded from EXP by its results.csv label, a member reproduces its test translation error."""
    exp = tmp_path / "exp"
    args = ["experiment", "semi-supervised", str(data_of(run)), "--domains", "v,attr", "--paired", "64",
            "--presets", "tr,full", "--seeds", "2", "--steps", "20", "--batch-size", "32",
            "--eval-every", "10", "--labelled", "50", "--device", "cpu", "--quiet",
            "--out", str(exp)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None)
    row = next(r for r in read_results_csv(exp / "results.csv") if r["member"] == "full/paired=64/seed=1")
    ws = global_workspace.load_workspace(exp, member="full/paired=64/seed=1")
    assert ws.member.seed == 1 and ws.member.preset == "full"
    assert ws.step == row["kept_step"] and ws.step in (10, 20)  # the validation check it kept
    test = load_dataset(data_of(run)).split("test")
    truth = ws.latent("v", test.images)
    error = (ws.model.translate("attr", "v", ws.latent("attr", test.labels))[0] - truth).pow(2).mean()
    assert float(error) == pytest.approx(float(row["translation/attr_to_v/latent_mse"]), rel=1e-4)
    with pytest.raises(UserError, match=r"member column of results\.csv"):
        global_workspace.load_workspace(exp, member="full/paired=64/seed=7")
    with pytest.raises(UserError, match=r"is an experiment: name its member by label.*e\.g\. full/paired="):
        global_workspace.load_workspace(exp)  # the default member 0 is a run's
    with pytest.raises(UserError, match="pass its folder as --data, or data= from Python"):
        global_workspace.load_workspace(exp, member="full/paired=64/seed=1", data=tmp_path / "nowhere")
    by_label = global_workspace.load_workspace(run, member="full/paired=64/seed=1")
    assert by_label.member.seed == 1


def test_an_architecture_grid_keeps_the_size_best_on_validation_and_its_members_reload(
    run: Path, tmp_path: Path
) -> None:
    """Each width × depth trains; selection.json names the best on validation; each member reloads
    at its own size and reproduces its test translation error."""
    exp = tmp_path / "exp"
    args = ["experiment", "semi-supervised", str(data_of(run)), "--domains", "v,attr", "--paired", "64",
            "--presets", "tr", "--seeds", "1", "--steps", "20", "--batch-size", "32", "--eval-every", "10",
            "--labelled", "50", "--device", "cpu", "--quiet", "--grid-width", "8,24", "--grid-depth", "2,3",
            "--out", str(exp)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None)
    rows = read_results_csv(exp / "results.csv")
    assert sorted((r["width"], r["depth"]) for r in rows) == [(8, 2), (8, 3), (24, 2), (24, 3)]
    (chosen,) = json.loads((exp / "selection.json").read_text())["selected"]
    best = min(rows, key=lambda r: r["val_min/translation/mean/latent_mse"])
    assert (chosen["width"], chosen["depth"]) == (best["width"], best["depth"])
    test = load_dataset(data_of(run)).split("test")
    for row in rows:
        ws = global_workspace.load_workspace(exp, member=row["member"])
        encoder = ws.model.encoders["attr"]
        assert len(encoder.layers) == row["depth"]  # type: ignore[arg-type]
        assert encoder.layers[0].weight.shape[-1] == row["width"]  # type: ignore[index]
        truth = ws.latent("v", test.images)
        error = (ws.model.translate("attr", "v", ws.latent("attr", test.labels))[0] - truth).pow(2).mean()
        assert float(error) == pytest.approx(float(row["translation/attr_to_v/latent_mse"]), rel=1e-4)


def test_a_grid_of_domain_widths_keeps_the_point_best_on_validation_and_its_members_reload(
    run: Path, tmp_path: Path
) -> None:
    """Each --grid-domain-width point trains apart and shows in results.csv; selection.json names
    the best on validation; each member reloads at its domains' sizes and reproduces its test error."""
    exp = tmp_path / "exp"
    args = ["experiment", "semi-supervised", str(data_of(run)), "--domains", "v,attr", "--paired", "64",
            "--presets", "tr", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--eval-every", "5",
            "--labelled", "50", "--device", "cpu", "--quiet", "--width", "8", "--depth", "2",
            "--domain-depth", "v=3", "--grid-domain-width", "attr=4/attr=12,v=16",
            "--out", str(exp)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None)
    rows = read_results_csv(exp / "results.csv")
    assert sorted(r["domain_width"] for r in rows) == ["attr=12,v=16", "attr=4"]
    assert len(list((exp / "chunks").iterdir())) == 2
    (chosen,) = json.loads((exp / "selection.json").read_text())["selected"]
    best = min(rows, key=lambda r: r["val_min/translation/mean/latent_mse"])
    assert chosen["domain_width"] == best["domain_width"]
    test = load_dataset(data_of(run)).split("test")
    for row in rows:
        ws = global_workspace.load_workspace(exp, member=row["member"])
        widths = {"v": 8, **{d: int(w) for d, w in (i.split("=") for i in row["domain_width"].split(","))}}
        for d, depth in (("v", 3), ("attr", 2)):
            for net in (ws.model.encoders[d], ws.model.decoders[d]):
                assert len(net.layers) == depth  # type: ignore[arg-type]
                assert net.layers[0].weight.shape[-1] == widths[d]  # type: ignore[index]
        truth = ws.latent("v", test.images)
        error = (ws.model.translate("attr", "v", ws.latent("attr", test.labels))[0] - truth).pow(2).mean()
        assert float(error) == pytest.approx(float(row["translation/attr_to_v/latent_mse"]), rel=1e-4)


def test_a_member_of_a_defined_preset_loads_with_its_model_family(run: Path, tmp_path: Path) -> None:
    """A `--define`d preset's name does not say its model (here one with fusion gates); a later
    session, which has not seen the definition, must still load the member's weights."""
    exp = tmp_path / "exp"
    args = ["experiment", "semi-supervised", str(data_of(run)), "--domains", "v,attr", "--paired", "64",
            "--define", "gated-light=fusion-gated:fused=0.1", "--presets", "gated-light", "--seeds", "1",
            "--steps", "10", "--batch-size", "32", "--labelled", "50", "--device", "cpu", "--quiet",
            "--out", str(exp)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None)
    ws = global_workspace.load_workspace(exp, member="gated-light/paired=64/seed=0")
    assert ws.model.fusion_gates is not None and ws.member.coefficients["fused"] == 0.1


def test_bad_requests_are_one_line_errors(run: Path, tmp_path: Path) -> None:
    for member in (2, 0.5, None, True):  # 0.5 and None were TypeErrors
        with pytest.raises(UserError, match="has 2 member"):
            global_workspace.load_workspace(run, member=member)  # type: ignore[arg-type]
    ws = global_workspace.load_workspace(run)
    with pytest.raises(UserError, match="no domain 't'; its domains: v, attr"):
        ws.state("t", ["a caption"])
    labels = load_dataset(data_of(run)).split("test").labels[:2]
    with pytest.raises(UserError, match="fusion weights"):
        ws.fused_state({"attr": labels}, {"attr": 0.0})
    # NaN in, NaN (or a black picture) out, silently; other lengths and numpy states were tracebacks.
    spoiled = labels.copy()
    spoiled[1, 1] = np.nan
    for target in ("attr", "v"):
        with pytest.raises(UserError, match=r"attr latents of this input holds NaN .*first in row 1"):
            ws.translate("attr", target, spoiled)
    images = load_dataset(data_of(run)).split("test").images[:3]
    with pytest.raises(UserError, match="lengths differ"):
        ws.fused_state({"attr": labels, "v": images})
    # Floats in [0, 1] read as near-black images; infinite or overflowing weights gave NaN or 0 states.
    with pytest.raises(UserError, match="expects uint8 images with values 0–255, got float32"):
        ws.translate("v", "attr", images.astype(np.float32) / 255)
    for weights in ({"attr": float("inf"), "v": 1.0}, {"attr": float("nan"), "v": 1.0}):
        with pytest.raises(UserError, match="a finite weight >= 0"):
            ws.fused_state({"attr": labels, "v": images[:2]}, weights)
    huge = ws.fused_state({"attr": labels, "v": images[:2]}, {"attr": 1e308, "v": 1e308})
    torch.testing.assert_close(huge, ws.fused_state({"attr": labels, "v": images[:2]}))
    # A specialist that encodes the wrong number of rows shrank the output silently.
    specialist = ws.domains["attr"]
    encode = specialist.encode
    object.__setattr__(specialist, "encode", lambda raw: encode(raw)[:-1])
    with pytest.raises(UserError, match=r"encoded 2 examples to \(1, \d+\), not \(2, \d+\); fix its encode"):
        ws.translate("attr", "v", labels)
    object.__setattr__(specialist, "encode", encode)
    painter = ws.domains["v"]
    decode = painter.decode
    object.__setattr__(painter, "decode", lambda latent: decode(latent)[:-1])
    with pytest.raises(UserError, match="decoded 2 latents to 1 examples; fix its decode"):
        ws.translate("attr", "v", labels)
    object.__setattr__(painter, "decode", decode)
    with pytest.raises(UserError, match=r"states to decode must be \(N, \d+\), got \(2, 5\)"):
        ws.decode("attr", np.zeros((2, 5)))
    state = ws.state("attr", labels)
    assert np.array_equal(ws.decode("v", state.numpy()), ws.decode("v", state))
    with pytest.raises(UserError, match="states to decode holds NaN"):
        ws.decode("v", state * float("nan"))
    with torch.no_grad():  # finite weights that overflow: translate printed empty translations
        for weight in ws.model.parameters():
            weight.mul_(1e30)
    with pytest.raises(UserError, match="v latents the workspace predicts holds NaN or infinite"):
        ws.decode("v", state)
    with pytest.raises(UserError, match="does not exist"):
        global_workspace.load_workspace(tmp_path / "nothing")
    with pytest.raises(UserError, match="holds a specialist \\('v', written by gw pretrain\\), not a run"):
        global_workspace.load_workspace(data_of(run) / "domains" / "v")  # it said KeyError('data')


def test_a_moved_dataset_is_followed_and_changed_latents_are_refused(run: Path, tmp_path: Path) -> None:
    """Re-pretrained specialists have another latent space: translations would be meaningless."""
    data = tmp_path / "moved"
    shutil.copytree(data_of(run), data)
    assert global_workspace.load_workspace(run, data=data).step == 30  # the same latents elsewhere
    with pytest.raises(UserError, match=r"pass its folder \(--data, or data= from Python\)"):
        global_workspace.load_workspace(run, data=tmp_path / "nowhere")
    latents = data / "domains/attr/latents/train.npy"
    np.save(latents, np.load(latents)[::-1].copy())
    with pytest.raises(UserError, match="other latents"):
        global_workspace.load_workspace(run, data=data)


def test_gw_translate_shows_translations_next_to_the_truth(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def gw(*args: object) -> int:
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        return int(done.value.code or 0)

    picture = tmp_path / "attr_to_v.png"
    assert (
        gw("translate", run, "--from", "attr", "--to", "v", "--n", 3, "--out", picture, "--device", "cpu")
        == 0
    )
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert gw("translate", run, "--from", "attr", "--to", "v", "--out", picture) == 2  # no --force
    assert "already exists" in capsys.readouterr().err
    assert (
        gw("translate", run, "--from", "v", "--to", "attr", "--n", 2, "--member", "1", "--device", "cpu") == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["0", "v → attr", "1", "v → attr"]
    assert any(name in lines[1] for name in ("diamond", "egg", "triangle"))  # attributes in words
    # Fused sources: both domains enter at once; the label says so.
    assert gw("translate", run, "--from", "v+attr", "--to", "attr", "--n", 1, "--device", "cpu") == 0
    assert capsys.readouterr().out.splitlines()[1].strip().startswith("v+attr → attr:")
    assert gw("translate", run, "--from", "v+v", "--to", "attr") == 2
    assert "names a domain twice" in capsys.readouterr().err
    assert gw("translate", run, "--from", "attr", "--to", "v") == 2
    assert "give --out FILE.png" in capsys.readouterr().err
    assert gw("translate", run, "--from", "t", "--to", "v", "--out", tmp_path / "t.png") == 2
    assert "no domain 't'" in capsys.readouterr().err
    # A new picture inside the run replaces nothing the run is made of.
    assert gw("translate", run, "--from", "attr", "--to", "v", "--n", 2, "--out", run / "a_to_v.png") == 0
    (run / "a_to_v.png").unlink()
    # --force never replaces a file of the dataset the run reads (it overwrote its captions).
    captions = data_of(run) / "test" / "captions.txt"
    before = captions.read_bytes()
    assert gw("translate", run, "--from", "v", "--to", "attr", "--out", captions, "--force") == 2
    assert "--force never replaces" in capsys.readouterr().err
    assert captions.read_bytes() == before
    # Nor a record of the run itself: its command line, or a file in its folders.
    record = run / "command.txt"
    before = record.read_bytes()
    assert gw("translate", run, "--from", "v", "--to", "attr", "--out", record, "--force") == 2
    assert "is a record of" in capsys.readouterr().err
    assert record.read_bytes() == before


def run_analysis(script: str, *args: object) -> list[str]:
    """Run analysis/{script} (a reader of stored members) and return its output lines."""
    path = Path(__file__).parents[1] / "analysis" / script
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(path), *map(str, args)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_fusion_analyses_start_from_what_the_member_scores(run: Path, tmp_path: Path) -> None:
    """docs/results.md quotes these scripts: a state taken wholly from `v` must score as `v` alone."""
    gated = tmp_path / "gated"
    args = ["train", str(data_of(run)), "--domains", "v,attr", "--preset", "fusion-gated", "--paired", "64",
            "--steps", "200", "--batch-size", "32", "--device", "cpu", "--quiet",
            "--out", str(gated)]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code in (0, None)
    from_v, from_attr, *flips = run_analysis("fusion_flips.py", gated, "--pair", "v,attr")
    ws = global_workspace.load_workspace(gated)
    test = load_latent_data(ws.data, ["v", "attr"], torch.device("cpu"), splits=("test",)).split("test")
    scores = latent_metrics(ws.model, test, ws.specs)
    for line, source, target in ((from_v, "v", "attr"), (from_attr, "attr", "v")):
        printed = line.removeprefix(f"all from {source}: ").split()
        assert printed[0::2] == ["v", "attr"]
        own = {source: "demi_cycle/" + source, target: f"translation/{source}_to_{target}"}
        expected = [float(scores[f"{own[d]}/latent_mse"]) for d in ("v", "attr")]
        assert [float(x) for x in printed[1::2]] == pytest.approx(expected, abs=1e-3)
    assert [line.split(":")[0] for line in flips] == [f"dimension {i:2} to attr" for i in range(12)]

    bound = run_analysis(
        "fusion_bound.py", data_of(run), "--domains", "v,attr", "--steps", "5", "--weights", "0.5"
    )
    assert [line.split(":")[0] for line in bound] == ["v alone", "attr alone", "v+attr, weight 0.5 on v"]


def test_rescore_reads_the_members_again_through_a_new_probe(run: Path, tmp_path: Path) -> None:
    """With the dataset's specialists unchanged, re-scoring gives back the stored metrics; after the
    probe trains on (the VAE, so the latents, kept), `--rescore` reads translations into `v` through
    it, while a plain reread keeps what training read."""
    data = tmp_path / "data"
    shutil.copytree(data_of(run), data)
    exp = tmp_path / "exp"
    args = ["experiment", "semi-supervised", str(data), "--domains", "v,attr", "--paired", "64",
            "--presets", "tr", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--eval-every", "5",
            "--labelled", "50", "--device", "cpu", "--quiet", "--grid-width", "8,24",
            "--out", str(exp)]  # fmt: skip
    assert main_code(args) == 0
    trained = read_results_csv(exp / "results.csv")
    probe_read = "translation/attr_to_v/color_error"
    assert main_code(["experiment", "reread", str(exp), "--rescore"]) == 0
    again = read_results_csv(exp / "results.csv")
    for before, after in zip(trained, again, strict=True):
        assert after.keys() == before.keys()
        assert _numbers(after) == pytest.approx(_numbers(before), rel=1e-5), before["member"]

    start = tmp_path / "start"
    shutil.copytree(data / "domains" / "v", start)
    steps = ["--steps", "v=0,blur=5", "--batch-size", "32", "--device", "cpu", "--quiet", "--force"]
    assert main_code(["pretrain", str(data), "--domains", "v", "--init", f"v={start}", *steps]) == 0
    assert main_code(["experiment", "reread", str(exp)]) == 0
    assert read_results_csv(exp / "results.csv") == again  # a plain reread does not read images again
    assert main_code(["experiment", "reread", str(exp), "--rescore"]) == 0
    rescored = read_results_csv(exp / "results.csv")
    for before, after in zip(trained, rescored, strict=True):
        assert after[probe_read] != before[probe_read]  # read through the new probe
        latent = "translation/attr_to_v/latent_mse"
        assert after[latent] == pytest.approx(before[latent], rel=1e-5)  # the same translations


def main_code(args: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(args)
    return int(done.value.code or 0)


def _numbers(row: dict[str, object]) -> dict[str, float]:
    return {k: v for k, v in row.items() if isinstance(v, float)}
