"""Speed of the specialists: caption embeddings and visual VAE training.

    python benchmarks/bench_domains.py [--captions 2000] [--naive 200] [--vae-steps 200]
                                       [--device cpu] [--threads 2]

Caption embeddings (all-MiniLM-L6-v2): ours (`SentenceEmbedder.embed`: sorted by length,
batched, inference mode) against the straightforward loop, one `SentenceTransformer.encode`
call per caption. Visual VAE: training samples/s at batch 128 (the reference: 415 samples/s
on 2 cores). Minutes to the quality bar come from `gw pretrain` (metrics.json: v/train_seconds
and quality/*), not from here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from global_workspace.data.simple_shapes import generate_simple_shapes
from global_workspace.domains.minilm import SentenceEmbedder
from global_workspace.domains.training import FitSettings, TrainLog
from global_workspace.domains.visual import VisualDomain


def bench_embeddings(captions: list[str], naive_n: int, device: str) -> None:
    embedder = SentenceEmbedder(device)
    embedder.embed(captions[:64])  # warm-up
    start = time.perf_counter()
    embedder.embed(captions)
    ours = len(captions) / (time.perf_counter() - start)
    start = time.perf_counter()
    with torch.no_grad():
        for caption in captions[:naive_n]:
            embedder.model.encode([caption], convert_to_numpy=True, show_progress_bar=False)
    naive = naive_n / (time.perf_counter() - start)
    print(f"caption embeddings, batched (ours): {ours:8.0f} captions/s ({len(captions)} captions, {device})")
    print(f"caption embeddings, one at a time:  {naive:8.0f} captions/s ({naive_n} captions)")
    print(f"ratio: {ours / naive:.1f}x")


def bench_vae(data: Path, steps: int, device: str) -> None:
    from global_workspace.data.format import load_dataset

    dataset = load_dataset(data)
    domain = VisualDomain().to(device)
    with tempfile.TemporaryDirectory() as tmp:
        settings = FitSettings(folder=Path(tmp), steps={"v": steps}, device=device, progress=False)
        domain.vae = domain.vae.to(device)
        metrics = domain.train_vae(dataset, settings, TrainLog(None))
    print(
        f"visual VAE training: {metrics['v/samples_per_s']:8.0f} samples/s "
        f"(batch 128, {steps} steps, {device})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--captions", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=200)
    parser.add_argument("--vae-steps", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu cores: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, device: {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes"
        counts = {"train": max(args.captions, 2048), "val": 64, "test": 64}
        dataset = generate_simple_shapes(data, counts, seed=0)
        bench_embeddings(dataset.split("train").captions[: args.captions], args.naive, args.device)
        bench_vae(data, args.vae_steps, args.device)


if __name__ == "__main__":
    main()
