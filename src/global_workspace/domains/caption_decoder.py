"""Reading any text latent as a sentence: an autoregressive GRU from latent to words.

Trained on captions alone (teacher forcing on the train captions, conditioned on the text VAE's
latent of each caption, sampled from its posterior so that nearby latents, such as a workspace's
translation, still decode). Words are lower-cased and "," and "." are tokens of their own; the
caption parser of the dataset accepts that spacing, and `detokenize` restores the usual one.
"""

from __future__ import annotations

import re
from collections import Counter

import torch
from torch import nn

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
_TOKEN = re.compile(r"[^\s,.;:!?]+|[,.;:!?]")


def tokenize(text: str) -> list[str]:
    """ "It is a red egg, pointing north." -> ["it", "is", "a", "red", "egg", ",", "pointing", ...]"""
    return _TOKEN.findall(text.lower())


def detokenize(tokens: list[str]) -> str:
    """Inverse of tokenize up to case: punctuation sticks to the word before it, first letter up."""
    text = " ".join(tokens)
    text = re.sub(r" ([,.;:!?])", r"\1", text)
    return text[:1].upper() + text[1:]


def build_vocabulary(captions: list[str], min_count: int = 1) -> list[str]:
    """Special tokens, then every word seen at least `min_count` times, most frequent first."""
    counts = Counter(t for c in captions for t in tokenize(c))
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return [*SPECIALS, *words]


class CaptionDecoder(nn.Module):
    """Latent (B, latent_dim) -> token logits; a GRU whose state starts from the latent.

    The latent also enters every step (concatenated to the word embedding), so long captions
    keep hold of it.
    """

    def __init__(self, vocabulary: list[str], latent_dim: int, hidden: int = 256, embed: int = 64) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.embed = nn.Embedding(len(vocabulary), embed)
        self.init = nn.Linear(latent_dim, hidden)
        self.gru = nn.GRU(embed + latent_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, len(vocabulary))

    def encode_tokens(self, captions: list[str], max_tokens: int) -> torch.Tensor:
        """Captions -> int64 (B, max_tokens + 1): words then <eos>, padded with <pad>, cut if longer."""
        unk = self.index[UNK]
        rows = torch.full((len(captions), max_tokens + 1), self.index[PAD], dtype=torch.long)
        for i, caption in enumerate(captions):
            ids = [*[self.index.get(t, unk) for t in tokenize(caption)][:max_tokens], self.index[EOS]]
            rows[i, : len(ids)] = torch.tensor(ids)
        return rows

    def forward(self, latent: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing. latent (B, L), targets (B, T) -> logits (B, T, V) predicting targets."""
        bos = torch.full_like(targets[:, :1], self.index[BOS])
        inputs = torch.cat([bos, targets[:, :-1]], dim=1)
        emb = self.embed(inputs)  # (B, T, E)
        cond = latent[:, None, :].expand(-1, emb.shape[1], -1)
        h0 = torch.tanh(self.init(latent))[None]  # (1, B, H)
        states, _ = self.gru(torch.cat([emb, cond], dim=-1), h0)
        return self.out(states)

    def loss(self, latent: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per non-padding token."""
        logits = self.forward(latent, targets)
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=self.index[PAD]
        )

    @torch.no_grad()
    def generate(self, latent: torch.Tensor, max_tokens: int) -> list[str]:
        """Greedy decoding of a batch of latents (B, L) -> B captions."""
        b = latent.shape[0]
        token = torch.full((b, 1), self.index[BOS], dtype=torch.long, device=latent.device)
        h = torch.tanh(self.init(latent))[None]
        cond = latent[:, None, :]
        out = torch.zeros(b, max_tokens, dtype=torch.long, device=latent.device)
        done = torch.zeros(b, dtype=torch.bool, device=latent.device)
        for t in range(max_tokens):
            state, h = self.gru(torch.cat([self.embed(token), cond], dim=-1), h)
            token = self.out(state[:, -1]).argmax(dim=-1, keepdim=True)
            out[:, t] = token[:, 0]
            done |= token[:, 0] == self.index[EOS]
            if bool(done.all()):
                break
        return [self._words(row) for row in out.tolist()]

    def _words(self, ids: list[int]) -> str:
        words = []
        for i in ids:
            word = self.vocabulary[i]
            if word == EOS:
                break
            if word not in SPECIALS:
                words.append(word)
        return detokenize(words)
