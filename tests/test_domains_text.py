"""The text path's parts: tokens, the caption decoder and caption scoring (MiniLM: test_minilm.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from global_workspace.data.captions import parse_caption
from global_workspace.data.factory.captions import make_factory_captions
from global_workspace.data.factory.generate import LABEL_COLUMNS as FACTORY_COLUMNS
from global_workspace.data.factory.generate import sample_labels as factory_labels
from global_workspace.data.format import load_dataset
from global_workspace.domains.attr import attribute_errors
from global_workspace.domains.caption_decoder import (
    SPECIALS,
    CaptionDecoder,
    build_vocabulary,
    detokenize,
    tokenize,
)
from global_workspace.domains.caption_scoring import caption_attributes, caption_scores, parse_all
from global_workspace.domains.text import TextVAE
from global_workspace.errors import UserError


def test_tokens_read_back_as_the_same_caption(tiny_shapes: Path) -> None:
    captions = load_dataset(tiny_shapes).split("val").captions
    for caption in captions:
        tokens = tokenize(caption)
        assert all(t == t.lower() and " " not in t for t in tokens)
        assert parse_caption(detokenize(tokens)) == parse_caption(caption)
    vocabulary = build_vocabulary(captions)
    assert vocabulary[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and len(set(vocabulary)) == len(vocabulary)


def test_caption_decoder_learns_to_read_latents(tiny_shapes: Path) -> None:
    captions = load_dataset(tiny_shapes).split("val").captions[:6]
    torch.manual_seed(0)
    decoder = CaptionDecoder(build_vocabulary(captions), latent_dim=6, hidden=64, embed=16)
    latents = torch.eye(6)
    max_tokens = max(len(tokenize(c)) for c in captions)
    tokens = decoder.encode_tokens(captions, max_tokens)
    opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        decoder.loss(latents, tokens).backward()
        opt.step()
    decoded = decoder.generate(latents, max_tokens + 2)
    assert [tokenize(d) for d in decoded] == [tokenize(c) for c in captions]


def test_bag_of_words_scores_the_caption_words_only(tiny_shapes: Path) -> None:
    captions = load_dataset(tiny_shapes).split("val").captions[:2]
    vocabulary = build_vocabulary(captions)
    vae = TextVAE(latent_dim=4, vocabulary_size=len(vocabulary), hidden=8)
    decoder = CaptionDecoder(vocabulary, latent_dim=4)
    tokens = decoder.encode_tokens(captions, max(len(tokenize(c)) for c in captions) + 3)
    first = {vocabulary.index(w) for w in tokenize(captions[0])}
    with torch.no_grad():
        vae.words[-1].weight.zero_()
        # certain of exactly the first caption's words; the special tokens' logits are ignored
        vae.words[-1].bias.copy_(
            torch.tensor([20.0 if i in first else -20.0 for i in range(len(vocabulary))])
        )
        vae.words[-1].bias[: len(SPECIALS)] = -20.0
        loss = vae.words_loss(torch.zeros(2, 4), tokens, len(SPECIALS))
    assert loss[0] < 1e-6
    missed = len({vocabulary.index(w) for w in tokenize(captions[1])} ^ first)
    assert loss[1] == pytest.approx(20.0 * missed, rel=1e-3)


def test_caption_scores_of_true_captions(tiny_shapes: Path) -> None:
    split = load_dataset(tiny_shapes).split("test")
    columns = ["class", "x", "y", "size", "rotation", "r", "g", "b"]
    parsed = parse_all([*split.captions[:-1], "not a caption at all"], "simple-shapes")
    assert parsed[-1] is None
    scores = caption_scores(parsed, "simple-shapes", split.labels, columns)
    n = len(split)
    for key in ("class", "size_bin", "color_name", "location_cell", "rotation_sector"):
        assert scores[f"{key}_accuracy"] == pytest.approx((n - 1) / n)
    assert scores["parse_rate"] == pytest.approx((n - 1) / n)
    errors = attribute_errors(caption_attributes(parsed, "simple-shapes", columns), split.labels, columns)
    assert errors["parse_rate"] == pytest.approx((n - 1) / n)
    assert errors["position_error_px"] < 3.0 and errors["size_error_px"] <= 1.0
    assert errors["rotation_error_deg"] <= 22.5


def test_caption_scores_of_factory_captions() -> None:
    rng = np.random.default_rng(0)
    labels = factory_labels(rng, 40)
    parsed = parse_all(make_factory_captions(labels, rng), "factory")
    scores = caption_scores(parsed, "factory", labels, FACTORY_COLUMNS)
    assert scores == {
        "parse_rate": 1.0,
        "color_name_accuracy": 1.0,
        "location_cell_accuracy": 1.0,
        "rotation_sector_accuracy": 1.0,
        "landmark_accuracy": 1.0,
    }
    with pytest.raises(UserError, match="no parser"):
        parse_all(["a"], "no-such-dataset")
