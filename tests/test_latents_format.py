"""The own-latents format: latents.json, per-domain collections of their own length, pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from global_workspace.data.latents_format import (
    LatentsInfo,
    identity_pairs,
    select_pairs,
    validate_folder,
)
from global_workspace.errors import UserError


def hand_made(root: Path) -> Path:
    """A folder written without the builder: v (5 rows), t (3 rows), one v,t pair and one v alone."""
    info = LatentsInfo(domains={"v": 2, "t": 3}, rows={"train": {"v": 5, "t": 3}}, pairs={"train": 2})
    root.mkdir()
    (root / "latents.json").write_text(json.dumps(info.to_json()))
    for name, n in info.rows["train"].items():
        (root / "domains" / name / "latents").mkdir(parents=True)
        array = np.zeros((n, info.domains[name]), dtype=np.float32)
        np.save(root / "domains" / name / "latents" / "train.npy", array)
    (root / "pairs").mkdir()
    np.save(root / "pairs" / "train.npy", np.array([[0, 2], [4, 0]], dtype=np.int64))
    return root


def test_a_folder_is_checked_file_by_file(tmp_path: Path) -> None:
    data = hand_made(tmp_path / "data")
    assert validate_folder(data).rows == {"train": {"v": 5, "t": 3}}
    np.save(data / "pairs" / "train.npy", np.array([[0, 3], [4, 0]], dtype=np.int64))
    with pytest.raises(UserError, match=r"row 0 gives 't' index 3, outside -1 \(absent\) to 2"):
        validate_folder(data)
    np.save(data / "pairs" / "train.npy", np.array([[0, 2]], dtype=np.int64))
    with pytest.raises(UserError, match=r"have 1 rows, latents\.json says 2"):
        validate_folder(data)
    np.save(data / "domains" / "t" / "latents" / "train.npy", np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(UserError, match=r"have 2 rows, latents\.json says 3"):
        validate_folder(data)


def test_another_format_or_version_is_refused(tmp_path: Path) -> None:
    data = hand_made(tmp_path / "data")
    obj = json.loads((data / "latents.json").read_text())
    (data / "latents.json").write_text(json.dumps({**obj, "format_version": 99}))
    with pytest.raises(UserError, match="format_version 99"):
        validate_folder(data)
    (data / "latents.json").write_text(json.dumps({**obj, "format": "other"}))
    with pytest.raises(UserError, match="does not describe 'gw-latents' latents"):
        validate_folder(data)


def test_row_aligned_is_identity_pairs_and_selection_drops_lonely_rows() -> None:
    assert identity_pairs(3, 2).tolist() == [[0, 0], [1, 1], [2, 2]]
    info = LatentsInfo(domains={"v": 1, "t": 1, "attr": 1}, rows={}, pairs={})
    pairs = np.array([[0, 0, -1], [1, -1, 0], [2, 1, 1]], dtype=np.int64)
    assert select_pairs(pairs, info, ["t", "v"]).tolist() == [[0, 0], [1, 2]]


def test_a_domain_name_in_latents_json_never_reads_outside_the_folder(tmp_path: Path) -> None:
    """The names come from a file a user may have edited: each is checked before it becomes a path."""
    data = hand_made(tmp_path / "data")
    outside = tmp_path / "x" / "latents"
    outside.mkdir(parents=True)
    np.save(outside / "train.npy", np.zeros((3, 3), dtype=np.float32))
    text = (data / "latents.json").read_text().replace('"t"', '"../../x"')
    (data / "latents.json").write_text(text)
    with pytest.raises(UserError, match="plain name"):
        validate_folder(data)
