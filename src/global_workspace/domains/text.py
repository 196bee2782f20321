"""The text domain `t`: caption -> MiniLM sentence embedding -> a small VAE's mean latent.

- Embeddings: all-MiniLM-L6-v2 (384-d, unit length) from minilm.py, cached on disk
  (DATA/cache/minilm/, keyed by a hash of the model folder, the mode and the captions).
- Text VAE: standardised embedding (train mean/std) → 512 → 512 → latent (default 64, as in the
  reference). It has two decoders, both of the caption's words: the caption decoder
  (caption_decoder.py, token cross-entropy) and a bag of words (which vocabulary words the
  caption uses). Loss per caption = token cross-entropy summed over its tokens + the bag of
  words' binary cross-entropy summed over the vocabulary + β·KL. Reconstructing the MiniLM
  embedding instead keeps its large-variance directions (the wording) and drops the small ones
  that hold the location (figures in `_train_vae`).
- Decoding: the caption decoder (caption_decoder.py) turns any latent back into a sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.format import Dataset, Split
from ..errors import UserError
from ..seeding import derive_seed, torch_generator
from .caption_decoder import SPECIALS, CaptionDecoder, build_vocabulary, tokenize
from .caption_scoring import GRAMMARS, caption_scores, parse_all
from .figures import caption_figure
from .minilm import EMBED_DIM, EmbeddingCache, SentenceEmbedder
from .nets import TorchDomain, freeze, gaussian_kl, load_weights, save_weights
from .optimise import FitSettings, TrainLog, batch_indices, optimise
from .registry import register_domain

DECODE_BATCH = 1024


class TextVAE(nn.Module):
    """Standardised sentence embeddings (B, 384) -> latents (B, latent_dim), and a bag-of-words head."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, latent_dim: int, vocabulary_size: int, hidden: int = 256) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(EMBED_DIM))
        self.register_buffer("std", torch.ones(EMBED_DIM))
        self.vocabulary_size = vocabulary_size
        self.encoder = nn.Sequential(
            nn.Linear(EMBED_DIM, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * latent_dim),
        )
        self.words = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, vocabulary_size)
        )

    def standardise(self, embeddings: torch.Tensor) -> torch.Tensor:
        return (embeddings - self.mean) / self.std

    def encode(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw embeddings (B, 384) -> mean, logvar (B, latent_dim)."""
        mean, logvar = self.encoder(self.standardise(embeddings)).chunk(2, dim=1)
        return mean, logvar.clamp(-12.0, 8.0)

    def words_loss(self, latent: torch.Tensor, tokens: torch.Tensor, specials: int) -> torch.Tensor:
        """Binary cross-entropy of "the caption uses word w", summed over the vocabulary (B,).

        tokens (B, T) are the caption's token ids; the first `specials` ids (padding, <eos>, ...)
        are not words.
        """
        present = torch.zeros(len(tokens), self.vocabulary_size, device=tokens.device)
        present.scatter_(1, tokens, 1.0)
        logits = self.words(latent)[:, specials:]
        return nn.functional.binary_cross_entropy_with_logits(
            logits, present[:, specials:], reduction="none"
        ).sum(dim=1)


@register_domain
class TextDomain(TorchDomain):
    """Captions <-> the mean latent of a VAE over MiniLM embeddings; decoded by a GRU."""

    kind = "t"

    def __init__(
        self,
        name: str | None = None,
        latent_dim: int = 64,
        beta: float = 0.01,
        hidden: int = 512,
        lr: float = 5e-3,
        vocabulary: list[str] | None = None,
        max_tokens: int = 48,
        decoder_hidden: int = 256,
        decoder_noise: float = 1.0,
        dataset_name: str = "simple-shapes",
    ) -> None:
        super().__init__(name)
        self.latent_dim = int(latent_dim)
        self.beta = float(beta)
        self.hidden = int(hidden)
        self.lr = float(lr)
        self.vocabulary = list(vocabulary or build_vocabulary([]))
        self.max_tokens = int(max_tokens)
        self.decoder_hidden = int(decoder_hidden)
        self.decoder_noise = float(decoder_noise)
        self.dataset_name = dataset_name
        self.device = torch.device("cpu")
        self.vae = freeze(TextVAE(self.latent_dim, len(self.vocabulary), self.hidden))
        self.decoder = freeze(CaptionDecoder(self.vocabulary, self.latent_dim, self.decoder_hidden))
        self.cache: EmbeddingCache | None = None
        self._embedder: SentenceEmbedder | None = None
        self.progress = False
        """Show a bar while embedding captions (set by `attach`)."""

    def config(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "beta": self.beta,
            "hidden": self.hidden,
            "lr": self.lr,
            "vocabulary": self.vocabulary,
            "max_tokens": self.max_tokens,
            "decoder_hidden": self.decoder_hidden,
            "decoder_noise": self.decoder_noise,
            "dataset_name": self.dataset_name,
        }

    def to(self, device: torch.device | str) -> TextDomain:
        self.device = torch.device(device)
        self.vae.to(self.device)
        self.decoder.to(self.device)
        if self._embedder is not None and self._embedder.device != self.device:
            self._embedder = None
        return self

    def attach(self, data: Path, progress: bool = False) -> None:
        """Keep embeddings of whole caption lists in DATA/cache/minilm/."""
        self.cache = EmbeddingCache(Path(data) / "cache" / "minilm")
        self.progress = progress

    def raw(self, split: Split) -> list[str]:
        return split.captions

    def embeddings(self, captions: list[str]) -> np.ndarray:
        """MiniLM embeddings (N, 384), from the cache when this exact list was embedded before."""
        cached = self.cache.get(captions) if self.cache is not None else None
        if cached is not None:
            return cached
        if self._embedder is None:
            self._embedder = SentenceEmbedder(self.device)
        emb = self._embedder.embed(captions, progress=self.progress)
        if self.cache is not None:
            self.cache.put(captions, emb)
        return emb

    @torch.no_grad()
    def encode_embeddings(self, embeddings: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, 384) -> mean latents float32 (N, latent_dim) on the CPU."""
        emb = torch.as_tensor(embeddings, dtype=torch.float32)
        parts = [
            self.vae.encode(emb[i : i + DECODE_BATCH].to(self.device))[0].cpu()
            for i in range(0, len(emb), DECODE_BATCH)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, self.latent_dim)

    def encode(self, raw: Any) -> torch.Tensor:
        """Captions (list of N strings) -> mean latents float32 (N, latent_dim) on the CPU."""
        if isinstance(raw, str) or not all(isinstance(c, str) for c in raw):
            raise UserError(f"domain {self.name!r} expects a list of captions")
        return self.encode_embeddings(self.embeddings(list(raw)))

    def decode(self, latent: torch.Tensor) -> list[str]:
        """(N, latent_dim) -> N captions (greedy decoding)."""
        z = torch.as_tensor(latent, dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise UserError(
                f"domain {self.name!r} expects latents (N, {self.latent_dim}), got {tuple(z.shape)}"
            )
        out: list[str] = []
        for i in range(0, len(z), DECODE_BATCH):
            out += self.decoder.generate(z[i : i + DECODE_BATCH].to(self.device), self.max_tokens)
        return out

    def save(self, folder: Path) -> None:
        save_weights(nn.ModuleDict({"vae": self.vae, "decoder": self.decoder}), folder)

    def load(self, folder: Path) -> None:
        load_weights(
            nn.ModuleDict({"vae": self.vae, "decoder": self.decoder}), folder, f"domain {self.name!r}"
        )
        freeze(self.vae)
        freeze(self.decoder)

    def fit(self, dataset: Dataset, settings: Any) -> dict[str, float]:
        """Embed every split (cached), train the VAE, then the caption decoder; score test captions."""
        assert isinstance(settings, FitSettings)
        self.dataset_name = dataset.info.name
        self.attach(dataset.path, settings.progress)
        self.to(settings.device)
        train = dataset.split("train")
        emb = torch.from_numpy(self.embeddings(train.captions))
        self.vocabulary = build_vocabulary(train.captions)
        longest = max((len(tokenize(c)) for c in train.captions), default=1)
        self.max_tokens = longest + 4
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(settings.seed, "t", "init"))
            self.vae = TextVAE(self.latent_dim, len(self.vocabulary), self.hidden)
            self.decoder = CaptionDecoder(self.vocabulary, self.latent_dim, self.decoder_hidden)
        self.vae.mean.copy_(emb.mean(dim=0))
        self.vae.std.copy_(emb.std(dim=0).clamp_min(1e-6))
        self.to(settings.device)
        log = TrainLog(settings.folder / "logs")
        try:
            tokens = self.decoder.encode_tokens(train.captions, self.max_tokens).to(settings.device)
            metrics = self._train_vae(emb, tokens, settings, log)
            metrics.update(self._train_decoder(emb, tokens, settings, log))
        finally:
            log.close()
        metrics.update(self.quality(dataset, settings.folder))
        return metrics

    def quality(self, dataset: Dataset, folder: Path) -> dict[str, float]:
        return self.evaluate(dataset, folder)

    def _train_vae(
        self, emb: torch.Tensor, tokens: torch.Tensor, settings: FitSettings, log: TrainLog
    ) -> dict[str, float]:
        """The VAE's encoder with both its decoders: the caption decoder and the bag of words.

        The bag of words gives every stated word its own gradient from the first step, before the
        caption decoder has learnt to use the latent (figures in docs/results.md, "Figures that
        were in the code").
        """
        train = settings.train("t", default_steps=2000, lr=self.lr)
        device = torch.device(settings.device)
        data = emb.to(device)
        gen = torch_generator(settings.seed, "t", "batches")
        noise_gen = torch_generator(settings.seed, "t", "noise")
        model = nn.ModuleDict({"vae": self.vae, "decoder": self.decoder})
        for p in model.parameters():
            p.requires_grad_(True)
        pad = self.decoder.index["<pad>"]

        def step_loss(step: int) -> dict[str, torch.Tensor]:
            idx = batch_indices(len(data), train.batch_size, gen).to(device)
            mean, logvar = self.vae.encode(data[idx])
            z = mean + torch.randn(mean.shape, generator=noise_gen).to(device) * (0.5 * logvar).exp()
            batch = tokens[idx]
            counts = (batch != pad).sum(dim=1)
            per_token = self.decoder.loss(z, batch[:, : int(counts.max())])
            return {
                "tokens": per_token * counts.float().mean(),
                "words": self.vae.words_loss(z, batch, len(SPECIALS)).mean(),
                "kl": self.beta * gaussian_kl(mean, logvar).mean(),
            }

        metrics = optimise(model, step_loss, train, log, "t", generators=(gen, noise_gen))
        freeze(self.vae)
        freeze(self.decoder)
        return metrics

    def _train_decoder(
        self, emb: torch.Tensor, tokens: torch.Tensor, settings: FitSettings, log: TrainLog
    ) -> dict[str, float]:
        """Teacher forcing on posterior samples z = mean + noise·σ·ε of each train caption."""
        train = settings.train("caption", default_steps=3000, lr=3e-3)
        device = torch.device(settings.device)
        with torch.no_grad():
            mean, logvar = self.vae.encode(emb.to(device))
        std = (0.5 * logvar).exp() * self.decoder_noise
        gen = torch_generator(settings.seed, "caption", "batches")
        noise_gen = torch_generator(settings.seed, "caption", "noise")
        for p in self.decoder.parameters():
            p.requires_grad_(True)

        def step_loss(step: int) -> dict[str, torch.Tensor]:
            idx = batch_indices(len(tokens), train.batch_size, gen).to(device)
            z = mean[idx] + torch.randn(std[idx].shape, generator=noise_gen).to(device) * std[idx]
            batch = tokens[idx]
            length = int((batch != self.decoder.index["<pad>"]).sum(dim=1).max())
            return {"loss": self.decoder.loss(z, batch[:, :length])}

        metrics = optimise(self.decoder, step_loss, train, log, "caption", generators=(gen, noise_gen))
        freeze(self.decoder)
        return metrics

    def evaluate(self, dataset: Dataset, folder: Path, split: str = "test") -> dict[str, float]:
        """Decode the mean latents of `split` and score the captions against the labels.

        Bar of a paper-quality text domain: captions parse ≥ 99%, right class ≥ 99%, colour name
        ≥ 95%, location cell ≥ 90%, rotation sector ≥ 85%.
        """
        data = dataset.split(split)
        decoded = self.decode(self.encode(data.captions))
        caption_figure(data.captions[:12], decoded[:12], folder / "captions.png")
        out: dict[str, float] = {
            f"caption/{split}/exact_match": float(
                np.mean([tokenize(a) == tokenize(b) for a, b in zip(decoded, data.captions, strict=True)])
            )
        }
        if dataset.info.name not in GRAMMARS:
            return out
        parsed = parse_all(decoded, dataset.info.name)
        scores = caption_scores(parsed, dataset.info.name, data.labels, dataset.info.label_columns)
        out.update({f"caption/{split}/{k}": v for k, v in scores.items()})
        out["quality/meets_bar"] = bool(
            scores["parse_rate"] >= 0.99
            and scores.get("class_accuracy", 1.0) >= 0.99
            and scores["color_name_accuracy"] >= 0.95
            and scores["location_cell_accuracy"] >= 0.90
            and scores.get("rotation_sector_accuracy", 1.0) >= 0.85
        )
        return out
