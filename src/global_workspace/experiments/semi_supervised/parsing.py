"""From the command line's text to the experiment's settings; a UserError names a bad option."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...errors import UserError
from ...workspace.presets import Preset, preset
from .config import SELECT_ALL, SELECT_LAST, SIX_PRESETS


def parse_select_on(text: str, domains: Sequence[str]) -> str:
    """`all`, `last`, or directions `a_to_b` between distinct domains of the experiment, returned
    comma-joined without repeats; anything else is a UserError naming the directions there are."""
    choice = text.strip().lower()
    if choice in (SELECT_ALL, SELECT_LAST):
        return choice
    known = [f"{a}_to_{b}" for a in domains for b in domains if a != b]
    chosen = list(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    unknown = [d for d in chosen if d not in known]
    if unknown or not chosen:
        raise UserError(f"--select-on {text!r}: give all, last, or directions among {', '.join(known)}")
    return ",".join(chosen)


def parse_paired(text: str, train_size: int) -> list[int]:
    """`250,1000,ALL` -> sorted distinct counts; ALL is every pair of the train split (`train_size`)."""
    if train_size == 0:  # own latents without train pairs: no count, ALL included, could train
        raise UserError(
            "the train split holds no pairs, and every preset learns from some; list them with "
            "`gw data latents … --pairs train=FILE`"
        )
    counts: set[int] = set()
    named: set[int] = set()  # ALL may coincide with a count named, as in 12000,ALL on 12000 pairs
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.upper() == "ALL":
            counts.add(train_size)
            continue
        try:
            n = int(item)
        except ValueError:
            raise UserError(f"--paired {text!r}: {item!r} is neither a whole number nor ALL") from None
        if n < 1:
            raise UserError(f"--paired {item}: every preset learns from pairs, give at least 1")
        if n > train_size:
            raise UserError(
                f"--paired {n} is more than the train split's {train_size} pairs; use at most "
                f"{train_size} or ALL"
            )
        if n in named:
            raise UserError(f"--paired {text!r} names {n} twice; name each pair count once")
        named.add(n)
        counts.add(n)
    if not counts:
        raise UserError("--paired is empty; give pair counts such as 250,1000,ALL")
    return sorted(counts)


def parse_presets(text: str, defined: Mapping[str, Preset]) -> list[Preset]:
    """`all` (the six of the slides), or a comma-separated list of built-in or `defined` presets,
    where `all` may appear (`all,direct-tr,direct-tr+cy` adds the no-workspace ablation)."""
    if text.strip().lower() == "all":
        return [preset(n) for n in SIX_PRESETS]
    names = [n.strip() for n in text.split(",") if n.strip()]
    names = [p for n in names for p in (SIX_PRESETS if n.lower() == "all" else (n,))]
    if not names:
        raise UserError("--presets is empty; give `all` or names such as tr,full")
    chosen = [defined[n] if n in defined else preset(n) for n in names]  # unknown: UserError
    if len(set(names)) != len(names):
        raise UserError(f"--presets {text!r} names a preset twice")
    return chosen
