"""`gw data latents` and `build_latents`: a folder of your own latents, and one line per refusal."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, tree_bytes
from workspace_fixtures import write_domain

from global_workspace.cli import main
from global_workspace.data.build_latents import build_latents, read_pairs_csv
from global_workspace.data.latents_format import validate_folder
from global_workspace.data.split_aligned import split_aligned
from global_workspace.domains.latents import read_spec
from global_workspace.errors import UserError


def _latents(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _files(root: Path) -> dict[str, Path]:
    """v: 6 train / 3 test rows of size 2; t: 4 / 2 of size 3; train pairs as .npy and test pairs as .csv."""
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"v_train": _latents(6, 2), "v_test": _latents(3, 2, 1), "t_train": _latents(4, 3, 2)}
    arrays["t_test"] = _latents(2, 3, 3)
    for name, array in arrays.items():
        np.save(root / f"{name}.npy", array)
    np.save(root / "train_pairs.npy", np.array([[0, 1], [5, 3]], dtype=np.int64))
    (root / "test_pairs.csv").write_text("v,t\n0,1\n2,0\n")
    return {k: root / f"{k}.npy" for k in arrays}


def _args(files: dict[str, Path], out: Path) -> list[str]:
    root = files["v_train"].parent
    return [
        "data", "latents", str(out),
        "--domain", f"v={files['v_train']},{files['v_test']}",
        "--domain", f"t={files['t_train']},{files['t_test']}",
        "--pairs", f"train={root / 'train_pairs.npy'}",
        "--pairs", f"val={root / 'test_pairs.csv'}",
    ]  # fmt: skip


def test_cli_builds_a_valid_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = _files(tmp_path / "in"), tmp_path / "data"
    with pytest.raises(SystemExit) as exc:
        main(_args(files, out))
    assert exc.value.code == 0
    assert "wrote" in capsys.readouterr().out
    info = validate_folder(out)
    assert info.domains == {"v": 2, "t": 3}
    assert info.rows == {"train": {"v": 6, "t": 4}, "val": {"v": 3, "t": 2}}
    assert info.pairs == {"train": 2, "val": 2}
    assert np.load(out / "pairs" / "val.npy").tolist() == [[0, 1], [2, 0]]
    assert np.array_equal(np.load(out / "domains" / "t" / "latents" / "train.npy"), np.load(files["t_train"]))
    assert read_spec(out, "t").latent_dim == 3


def test_an_empty_csv_cell_is_an_absent_domain(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("0,,2\n1,1,\n")
    assert read_pairs_csv(tmp_path / "p.csv", ["v", "t", "attr"]).tolist() == [[0, -1, 2], [1, 1, -1]]


def test_a_csv_header_may_name_the_domains_in_any_order(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("attr,v,t\n2,0,\n,1,1\n")
    assert read_pairs_csv(tmp_path / "p.csv", ["v", "t", "attr"]).tolist() == [[0, -1, 2], [1, 1, -1]]


@pytest.mark.parametrize("header", ["v,x", "v,v", "v", "v,t,attr"])
def test_a_csv_header_that_does_not_name_each_domain_once_is_refused(tmp_path: Path, header: str) -> None:
    (tmp_path / "p.csv").write_text(f"{header}\n0,1\n")
    with pytest.raises(UserError, match="reads as a header but does not name each domain once"):
        read_pairs_csv(tmp_path / "p.csv", ["v", "t"])


def test_a_csv_line_of_words_after_the_first_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("t,v\n0,1\nzero,one\n")
    with pytest.raises(UserError, match=r"line 3 .* is not whole numbers"):
        read_pairs_csv(tmp_path / "p.csv", ["v", "t"])


def _pairs(split: str, rows: list[list[int]], dtype: type = np.int64) -> dict[str, object]:
    return {"pairs": {split: np.array(rows, dtype=dtype)}}


def _build(tmp_path: Path, **change: object) -> None:
    domains = {"v": {"train": _latents(5, 2)}, "t": {"train": _latents(4, 3)}}
    pairs = {"train": np.array([[0, 1], [4, 3]], dtype=np.int64)}
    for key, value in change.items():
        if key == "pairs":
            pairs = value  # type: ignore[assignment]
        else:
            domains[key] = value  # type: ignore[assignment]
    build_latents(tmp_path / "data", domains, pairs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": {"train": _latents(5, 2).astype(np.float64)}}, r"holds float64 \(5, 2\), expected float32"),
        ({"v": {"train": _latents(5, 2)[:, 0]}}, r"holds float32 \(5,\), expected float32 \(N, dim\)"),
        ({"v": {"train": np.full((5, 2), np.nan, dtype=np.float32)}}, "holds NaN or infinite values"),
        ({"v": {"train": _latents(0, 2)}}, "is empty; every split needs at least one example"),
        ({"v": {"train": _latents(5, 0)}}, r"split 'train' holds latents of width 0 \(5, 0\)"),
        ({"v": {"train": _latents(5, 2), "val": _latents(5, 0)},
          "t": {"train": _latents(4, 3), "val": _latents(4, 3)}}, r"split 'val' holds latents of width 0"),
        ({"v": {"train": _latents(5, 2), "val": _latents(2, 2)}}, "give every domain the same splits"),
        (_pairs("train", [[0, 4]]), r"gives 't' index 4, outside -1 \(absent\) to 3"),
        (_pairs("train", [[0, -2]]), "gives 't' index -2"),
        (_pairs("train", [[0, 1]], np.int32), r"holds int32 \(1, 2\), expected int64"),
        (_pairs("train", [[0, 1, 1]]), r"expected int64 \(P, 2\)"),
        (_pairs("train", [[0, 1], [3, -1]]), "row 1 pairs fewer than two domains"),
        (_pairs("train", [[0, 1], [2, 2], [0, 1]]), r"holds row 0 \(\[0, 1\]\) more than once"),
        ({"pairs": {"train": np.zeros((0, 2), dtype=np.int64)}}, "are empty; leave the split's --pairs out"),
        (_pairs("test", [[0, 1]]), "split 'test', which no domain has"),
        ({"v/x": {"train": _latents(5, 2)}}, "is not a plain name"),
    ],
)  # fmt: skip
def test_bad_data_is_refused_before_anything_is_written(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        _build(tmp_path, **change)
    assert not (tmp_path / "data").exists()


def test_cli_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files, out = _files(tmp_path / "in"), tmp_path / "data"
    args = _args(files, out)

    def refused(argv: list[str]) -> str:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        return one_line_error(capsys)

    assert "is given twice; name each domain once" in refused([*args, "--domain", f"v={files['v_train']}"])
    assert "--pairs 'train' is given twice" in refused([*args, "--pairs", f"train={files['v_train']}"])
    assert "write SPLIT=FILE.npy or SPLIT=FILE.csv" in refused([*args, "--pairs", "train=p.txt"])
    assert "write NAME=TRAIN.npy" in refused([*args, "--domain", "attr"])
    assert "does not exist" in refused([*args, "--domain", f"attr={tmp_path / 'none.npy'}"])
    (tmp_path / "in" / "bad.csv").write_text("0,x\n")
    assert "line 1 ('0,x') is not whole numbers" in refused(
        [*args[:-2], "--pairs", f"val={tmp_path / 'in' / 'bad.csv'}"]
    )
    assert "at least two domains" in refused(
        ["data", "latents", str(out), "--domain", f"v={files['v_train']}"]
    )
    with pytest.raises(SystemExit):
        main(args)
    before = tree_bytes(out)
    assert "already exists; pass --force" in refused(args)
    assert tree_bytes(out) == before


def test_a_row_aligned_dataset_splits_into_disjoint_collections_with_true_pairs(tmp_path: Path) -> None:
    ids = {s: np.arange(n, dtype=np.float32)[:, None] for s, n in (("train", 100), ("val", 10), ("test", 10))}
    for name, dim in (("v", 3), ("t", 2), ("attr", 4)):
        write_domain(tmp_path / "aligned", name, {s: np.repeat(x, dim, axis=1) for s, x in ids.items()})
    alone = {"v": 30, "t": 20, "attr": 10}
    info = split_aligned(tmp_path / "aligned", tmp_path / "own", alone, {("v", "t"): 15, ("v", "attr"): 12})
    assert info.rows["train"] == {"v": 57, "t": 35, "attr": 22} and info.pairs == {
        "train": 27,
        "val": 10,
        "test": 10,
    }
    seen = {d: np.load(tmp_path / "own" / "domains" / d / "latents" / "train.npy")[:, 0] for d in alone}
    pairs = np.load(tmp_path / "own" / "pairs" / "train.npy")
    for row in pairs:  # each pair joins one underlying example
        assert len({float(seen[d][i]) for d, i in zip(alone, row, strict=True) if i >= 0}) == 1
    paired = set(seen["v"][pairs[pairs[:, 0] >= 0, 0]].tolist())
    only = [set(x.tolist()) - paired for x in seen.values()]
    assert not (only[0] & only[1]) and not (only[0] & only[2]) and not (only[1] & only[2])
    assert np.array_equal(np.load(tmp_path / "own" / "pairs" / "test.npy")[:, 2], np.arange(10))


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"0,1\n99999999999999999999,3\n", "line 2 ('99999999999999999999,3') holds an index beyond"),
     (b"0,1\n\xff,3\n", "is not UTF-8 text"),
     (b"0,1\n--3,4\n", "line 2 ('--3,4') is not whole numbers"),
     ("0,1\n\u00b2,4\n".encode(), "is not whole numbers")],
)  # fmt: skip
def test_a_csv_index_too_large_or_bytes_not_utf8_are_refused(
    tmp_path: Path, content: bytes, words: str
) -> None:
    """Each used to be a traceback."""
    (tmp_path / "p.csv").write_bytes(content)
    with pytest.raises(UserError, match=re.escape(words)):
        read_pairs_csv(tmp_path / "p.csv", ["v", "t"])
