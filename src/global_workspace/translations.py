"""`gw translate`: one member's translations of dataset examples, shown next to the truth.

Into images: a PNG grid, the true image of each example followed by its translation, with the
example's caption under the truth. Into any other domain: text on standard output, the truth and
then the translation in words (a caption, attributes). A source `v+t` fuses those domains: they
enter the workspace together with equal weights (reweighed by the member's fusion gates, if any).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import typer

from .data.format import load_dataset
from .data.latents_format import is_own_latents
from .data.show import grid_png
from .domains.display import displayable
from .errors import UserError, require_at_least
from .fileio import atomic_write_bytes, atomic_write_text, refuse_existing
from .loading import load_workspace
from .own_translations import show_latent_translations


def show_translations(
    folder: Path,
    source: str,
    target: str,
    member: int | str = 0,
    split: str = "test",
    n: int = 8,
    out: Path | None = None,
    data: Path | None = None,
    device: str = "auto",
    force: bool = False,
) -> None:
    """Translate the first `n` examples of `split` from `source` (a domain, or domains joined by
    '+' to fuse them) into `target` (see the module)."""
    require_at_least([("--n", n, 1)])
    if out is not None and out.suffix.lower() not in (".png", ".txt"):
        raise UserError(f"--out {out} must end in .png (image targets) or .txt (text and attribute targets)")
    if out is not None:
        _refuse_a_record_of(folder, out)
    sources = [name.strip() for name in source.split("+")]
    if len(set(sources)) != len(sources):
        raise UserError(f"--from {source} names a domain twice; fuse different domains, e.g. v+t")
    ws = load_workspace(folder, member, device, data)
    if is_own_latents(ws.data):
        if out is not None:
            raise UserError("own latents have no images to draw; leave --out out to print the translations")
        show_latent_translations(ws, sources, target, split, n)
        return
    if out is not None:
        refuse_existing(out, force, what="picture")
    source_domains, target_domain = {d: ws.domain(d) for d in sources}, ws.domain(target)
    dataset = load_dataset(ws.data)
    examples = dataset.split(split)
    if n > len(examples):
        typer.echo(
            f"gw translate: the {split} split holds {len(examples)} examples; showing them all", err=True
        )
        n = len(examples)
    columns = list(dataset.info.label_columns)
    # One domain alone "fuses" into exactly its own state, so one path serves both cases.
    state = ws.fused_state({d: domain.raw(examples)[:n] for d, domain in source_domains.items()})
    translated = displayable(ws.decode(target, state), columns)
    true_raw = target_domain.raw(examples)[:n]
    truth = displayable(true_raw, columns)
    if isinstance(truth[0], np.ndarray) != isinstance(translated[0], np.ndarray):
        # A domain whose decoder gives another kind than its raw data (a plugin reading a number off
        # an image): the truth is shown as its specialist reads it, beside the translation.
        truth = displayable(target_domain.decode(ws.latent(target, true_raw)), columns)
    captions = list(examples.captions[:n])
    label = f"{'+'.join(sources)} → {target}"
    if isinstance(translated[0], np.ndarray):
        if out is None or out.suffix.lower() != ".png":
            raise UserError(f"the translations into {target!r} are images: give --out FILE.png")
        images = np.stack([img for pair in zip(truth, translated, strict=True) for img in pair])
        notes = [text for caption in captions for text in (f"truth: {caption}", label)]
        step = "" if ws.step is None else f", step {ws.step}"
        title = f"{folder} [{ws.member.label()}{step}], {split} examples 1-{n}: truth, then {label}"
        pairs_per_row = max(1, round(math.sqrt(n / 2)))  # each truth beside its translation
        atomic_write_bytes(out, grid_png(images, notes, title, cols=2 * pairs_per_row))
        typer.echo(f"wrote {out}")
        return
    lines = "".join(f"{i}: truth: {truth[i]}\n   {label}: {translated[i]}\n" for i in range(n))
    if out is None:
        typer.echo(lines, nl=False)
    elif out.suffix.lower() != ".txt":
        raise UserError(
            f"the translations into {target!r} are text: give --out FILE.txt, or no --out to print them"
        )
    else:
        atomic_write_text(out, lines)
        typer.echo(f"wrote {out}")


def _refuse_a_record_of(folder: Path, out: Path) -> None:
    """--force replaces an earlier picture, never what the run or experiment wrote itself: its
    command line, or a file in its folders (checkpoints, chunks, the report's figures)."""
    target, root = out.resolve(), folder.resolve()
    if (
        target.exists()
        and target.is_relative_to(root)
        and (target.parent != root or target.name == "command.txt")
    ):
        raise UserError(
            f"--out {out} is a record of {folder}; write the translations outside it or under a new name"
        )
