"""A generic trainer for an ensemble of K models: tasks supply named per-member loss terms.

The trainer never names a domain. A `Task` turns (model, batch) into a dict of (K,) loss terms and
a report; each term is weighted by its member's coefficient for the term's category (the part of
the name before the first '/'), and the loss optimised is the SUM over members of the SUM of the
weighted terms (the reference averages the terms; with AdamW only the relative weights matter).
Members share no parameter, so member k's update is exactly what it would be alone.

One step = draw a batch on the device, forward, backward, AdamW with a one-cycle learning rate
computed from a device step counter. Nothing in a step talks to the host, so on CUDA the whole
step is captured once in a CUDA graph and replayed; on the CPU the same code runs eagerly.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import UserError
from .pair_groups import merged_loss
from .sampling import Batch
from .settings import TrainConfig

Terms = dict[str, torch.Tensor]


def category(term: str) -> str:
    """The coefficient a term is weighted by: the part of its name before the first '/'."""
    return term.split("/", 1)[0]


class BatchSource(Protocol):
    """What the trainer draws a step's data from: row-aligned (sampling.py) or grouped pairs
    (pair_groups.py)."""

    def batches(self, step: torch.Tensor) -> list[Batch]: ...


class Task(Protocol):
    """What the trainer trains: the loss of a batch and the parameters it moves."""

    categories: tuple[str, ...]
    """Names of the coefficient categories; every term's name starts with one of them."""
    needs_pairs: frozenset[str]
    """Categories that have nothing to compute without paired examples."""

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters to optimise (each once)."""
        ...

    def loss(self, model: nn.Module, batch: Batch) -> tuple[Terms, Terms]:
        """(terms, report): per-member (K,) loss terms, and (K,) or scalar diagnostics."""
        ...


def one_cycle_lr(step: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """torch's OneCycleLR (cosine, two phases) as a function of a step tensor; any step count >= 1."""
    peak = config.lr
    start = peak / config.div_factor
    low = start / config.final_div_factor
    end_warm = max(config.pct_start * config.steps - 1.0, 0.0)
    end = max(config.steps - 1.0, end_warm)
    t = step.to(torch.float32)
    warm = (t / max(end_warm, 1e-12)).clamp(0.0, 1.0)
    cool = ((t - end_warm) / max(end - end_warm, 1e-12)).clamp(0.0, 1.0)

    def anneal(a: float, b: float, pct: torch.Tensor) -> torch.Tensor:
        return b + (a - b) / 2.0 * (torch.cos(math.pi * pct) + 1.0)

    return torch.where(t <= end_warm, anneal(start, peak, warm), anneal(peak, low, cool))


class FlatAdamW:
    """AdamW (torch's update rule) over parameters re-homed as views of one flat buffer.

    One buffer makes the update a dozen tensor ops whatever the number of weights, and every
    input (learning rate, step) is a device tensor, so the update can live in a CUDA graph.
    """

    def __init__(self, named: Sequence[tuple[str, nn.Parameter]], config: TrainConfig) -> None:
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("a parameter appears twice in the optimiser")
        self.config = config
        first = self.params[0]
        self.flat = torch.cat([p.detach().reshape(-1) for p in self.params])
        offset = 0
        for p in self.params:
            n = p.numel()
            p.data = self.flat[offset : offset + n].view_as(p)
            offset += n
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        assert self.flat.device == first.device

    def update(self, grads: Sequence[torch.Tensor], lr: torch.Tensor, step: torch.Tensor) -> None:
        """One AdamW step; `step` counts the steps already taken (0 on the first)."""
        c = self.config
        b1, b2 = c.betas
        g = torch.cat([x.reshape(-1) for x in grads])
        t = (step + 1).to(torch.float32)
        self.flat.mul_(1.0 - lr * c.weight_decay)
        self.exp_avg.lerp_(g, 1.0 - b1)
        self.exp_avg_sq.mul_(b2).addcmul_(g, g, value=1.0 - b2)
        bias1 = 1.0 - torch.pow(b1, t)
        bias2 = 1.0 - torch.pow(b2, t)
        denom = (self.exp_avg_sq.sqrt() / bias2.sqrt()).add_(c.eps)
        self.flat.sub_((lr / bias1) * self.exp_avg / denom)

    def _views(self, buffer: torch.Tensor) -> dict[str, torch.Tensor]:
        out, offset = {}, 0
        for name, p in zip(self.names, self.params, strict=True):
            out[name] = buffer[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        m, v = self._views(self.exp_avg), self._views(self.exp_avg_sq)
        return {**{f"exp_avg/{n}": t for n, t in m.items()}, **{f"exp_avg_sq/{n}": t for n, t in v.items()}}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        own = self.state_dict()
        if set(state) != set(own) or any(state[k].shape != view.shape for k, view in own.items()):
            raise UserError(
                "the checkpoint's optimiser state belongs to another model configuration; "
                "start over with --force"
            )
        for key, view in own.items():
            view.copy_(state[key])


class NonFiniteLoss(UserError):
    """A member's loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


@dataclass
class StepOutput:
    """What one step leaves behind for logging (device tensors, overwritten by the next step)."""

    terms: torch.Tensor  # (T, K) in the order of Trainer.term_names
    total: torch.Tensor  # (K,) weighted sum per member
    lr: torch.Tensor  # ()
    report: Terms


class Trainer:
    """Trains one ensemble model with a task: `run(n)` advances n steps."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        sampler: BatchSource,
        coefficients: torch.Tensor,
        config: TrainConfig,
    ) -> None:
        """coefficients: (K, len(task.categories)), member k's weight of each category."""
        self.model, self.task, self.sampler, self.config = model, task, sampler, config
        device = coefficients.device
        ids = {id(p): n for n, p in model.named_parameters()}
        params = task.parameters(model)
        if any(id(p) not in ids for p in params):
            raise ValueError("the task trains a parameter that is not part of the model")
        self.optimizer = FlatAdamW([(ids[id(p)], p) for p in params], config)
        self.params = params
        self.step = torch.zeros((), dtype=torch.long, device=device)
        self.first_bad = torch.full((coefficients.shape[0],), -1, dtype=torch.long, device=device)
        with torch.no_grad():
            terms, _ = self._loss()
        if not terms:
            raise UserError("no loss term has anything to compute: check the coefficients and --paired")
        self.term_names = list(terms)
        index = [task.categories.index(category(name)) for name in self.term_names]
        self.weights = coefficients[:, index].T.contiguous()  # (T, K)
        self.use_graph = config.cuda_graph and device.type == "cuda"
        self.graph: torch.cuda.CUDAGraph | None = None
        self.output: StepOutput | None = None

    @property
    def host_step(self) -> int:
        return int(self.step.item())

    def _loss(self) -> tuple[Terms, Terms]:
        """The task's terms and report over the step's batches."""
        return merged_loss(lambda batch: self.task.loss(self.model, batch), self.sampler.batches(self.step))

    def _step(self) -> StepOutput:
        terms, report = self._loss()
        stacked = torch.stack([terms[n] for n in self.term_names])  # (T, K)
        per_member = (stacked * self.weights).sum(dim=0)  # (K,)
        grads = torch.autograd.grad(per_member.sum(), self.params, allow_unused=True, materialize_grads=True)
        lr = one_cycle_lr(self.step, self.config)
        bad = (self.first_bad < 0) & ~torch.isfinite(per_member)
        self.first_bad.copy_(torch.where(bad, self.step, self.first_bad))
        self.optimizer.update(grads, lr, self.step)
        self.step.add_(1)
        return StepOutput(
            stacked.detach(), per_member.detach(), lr, {k: v.detach() for k, v in report.items()}
        )

    def _state(self) -> list[torch.Tensor]:
        opt = self.optimizer
        return [opt.flat, opt.exp_avg, opt.exp_avg_sq, self.step, self.first_bad]

    def _capture(self) -> None:
        """Record one step in a CUDA graph; the warm-up steps it needs are undone afterwards."""
        saved = [t.clone() for t in self._state()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.output = self._step()
        for t, s in zip(self._state(), saved, strict=True):
            t.copy_(s)
        self.graph = graph

    def run(self, steps: int) -> StepOutput:
        """Advance `steps` steps; returns the last step's output (device tensors)."""
        if steps <= 0:
            raise ValueError("run at least one step")
        if self.use_graph and self.graph is None:
            self._capture()
        for _ in range(steps):
            if self.graph is not None:
                self.graph.replay()
            else:
                self.output = self._step()
        assert self.output is not None
        return self.output

    def check_finite(self, labels: Sequence[str], kept: str = "training stopped") -> None:
        """Raise NonFiniteLoss naming the first member whose loss stopped being finite; `kept` says
        what survives it."""
        bad = self.first_bad.tolist()
        for k, s in enumerate(bad):
            if s >= 0:
                # In the first step the lr has not moved anything yet: the inputs' scale is to blame.
                advice = (
                    "check the scale of the latents and of the --coef weights"
                    if s == 0
                    else "try a lower --lr"
                )
                raise NonFiniteLoss(
                    f"the loss of member {k} ({labels[k]}) became NaN or infinite in step {s + 1}; "
                    f"{kept}; {advice}"
                )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Optimiser moments and the step counter (the sampler is stateless: step is enough)."""
        return {**self.optimizer.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        step = state.pop("step", None)
        if step is None or step.shape != self.step.shape:
            raise UserError("the checkpoint's trainer state has no valid step; start over with --force")
        self.optimizer.load_state_dict(state)
        self.step.copy_(step)
        self.first_bad.fill_(-1)


def member_coefficients(
    categories: Sequence[str], weights: Sequence[dict[str, float]], device: torch.device
) -> torch.Tensor:
    """(K, C) coefficient matrix from each member's category -> weight dict."""
    rows = []
    for w in weights:
        unknown = set(w) - set(categories)
        if unknown:
            raise UserError(
                f"coefficients {sorted(unknown)} match no loss term; known: {', '.join(categories)}"
            )
        rows.append([float(w.get(c, 0.0)) for c in categories])
    return torch.tensor(rows, dtype=torch.float32, device=device)


EvalFn = Callable[[nn.Module], dict[str, torch.Tensor]]
"""Validation metrics of a model: name -> (K,) values."""


class RunLog:
    """CSV files (one row per step and member) and TensorBoard scalars in a run folder.

    train.csv: step, member, lr, loss (the member's weighted sum), every term, every report value.
    val.csv:   step, member, every metric. On resume, rows after the resumed step are dropped.
    """

    def __init__(self, run: Path, start_step: int = 0, tensorboard: bool = True) -> None:
        self.run = Path(run)
        self.columns: dict[str, list[str]] = {}
        for name in ("train", "val"):
            _truncate_csv(self.run / f"{name}.csv", start_step, self.columns, name)
        self.writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # Steps after the checkpoint's are dropped; its own step stays, as in the CSV files.
            purge = start_step + 1 if start_step else None
            self.writer = SummaryWriter(log_dir=str(self.run / "tensorboard"), purge_step=purge)

    def write(self, kind: str, step: int, values: dict[str, torch.Tensor]) -> None:
        """values: name -> (K,) or scalar tensors; one CSV row per member."""
        host = {k: v.detach().float().cpu().reshape(-1).tolist() for k, v in values.items()}
        members = max(len(v) for v in host.values())
        file = self.run / f"{kind}.csv"
        if kind not in self.columns:
            self.columns[kind] = list(host)
            with file.open("w", newline="") as handle:
                csv.writer(handle).writerow(["step", "member", *self.columns[kind]])
        with file.open("a", newline="") as handle:
            out = csv.writer(handle)
            for k in range(members):
                row = [host[c][k if len(host[c]) > 1 else 0] if c in host else "" for c in self.columns[kind]]
                out.writerow([step, k, *row])
        if self.writer is not None:
            for name, vals in host.items():
                for k, v in enumerate(vals):
                    tag = f"{kind}/{name}" if len(vals) == 1 else f"{kind}/{name}/member{k}"
                    self.writer.add_scalar(tag, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _truncate_csv(file: Path, start_step: int, columns: dict[str, list[str]], kind: str) -> None:
    if not file.is_file():
        return
    if start_step == 0:
        file.unlink()
        return
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        if rows[0][:2] != ["step", "member"]:
            raise ValueError("its header does not begin with step,member")
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= start_step]
        if any(len(r) != len(rows[0]) for r in kept):
            raise ValueError("a row has another number of columns than its header")
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise UserError(
            f"{file} is damaged ({exc}); delete it to resume without its earlier rows, or pass --force "
            "to train afresh"
        ) from exc
    columns[kind] = rows[0][2:]
    with file.open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)


EvalHook = Callable[[int, dict[str, torch.Tensor]], None]
"""Called with the step and the validation metrics after each evaluation (keep-best selection)."""

PROGRESS_STEPS = 25
"""Steps between progress-bar updates when nothing is logged."""


def fit(
    trainer: Trainer,
    labels: Sequence[str],
    log: RunLog | None = None,
    evaluate: EvalFn | None = None,
    save: Callable[[int], None] | None = None,
    progress: bool = True,
    until: int | None = None,
    on_eval: EvalHook | None = None,
    desc: str | None = None,
    stop_early: Callable[[int], bool] | None = None,
) -> float:
    """Train to `config.steps` (or stop early at step `until`, as an interruption would): log every
    log_every steps, evaluate (then call `on_eval`) and save every eval_every steps and at the end.
    After each evaluation, training ends if `stop_early(step)` says so (no member improves any more).
    Checks for non-finite losses before every evaluation, so a checkpoint is always good. A bar
    with a `desc` is one of several and is cleared when done. Returns the training speed in steps
    per second (evaluation excluded)."""
    cfg = trainer.config
    step = trainer.host_step
    last = cfg.steps if until is None else min(until, cfg.steps)
    every = cfg.log_every if log is not None else PROGRESS_STEPS
    train_seconds, trained = 0.0, 0
    saved = step if save is not None and step > 0 else None  # a resumed run starts from a checkpoint
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=desc,
        leave=desc is None,
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
    )
    try:
        while step < last:
            stop = min(last, _next_multiple(step, every), _next_multiple(step, cfg.eval_every))
            started = time.perf_counter()
            out = trainer.run(stop - step)
            total = out.total.sum().item()  # waits for the device
            train_seconds += time.perf_counter() - started
            trained += stop - step
            step = stop
            trainer.check_finite(labels, _kept(save is not None, saved))
            if log is not None and (step % max(cfg.log_every, 1) == 0 or step == last):
                values = {"lr": out.lr, "loss": out.total}
                values.update(zip(trainer.term_names, out.terms.unbind(0), strict=True))
                values.update(out.report)
                log.write("train", step, values)
            evaluating = bool(cfg.eval_every and step % cfg.eval_every == 0) or step == last
            if evaluating:
                if evaluate is not None:
                    metrics = evaluate(trainer.model)
                    if log is not None:
                        log.write("val", step, metrics)
                    if on_eval is not None:
                        on_eval(step, metrics)
                if save is not None:
                    save(step)
                    saved = step
            bar.set_postfix(loss=f"{total / len(labels):.4g}")
            bar.update(stop - bar.n)
            if evaluating and stop_early is not None and stop_early(step):
                break
    finally:
        bar.close()
    return trained / train_seconds if train_seconds > 0 else 0.0


def _kept(saves: bool, saved: int | None) -> str:
    """What survives a non-finite loss, for its message."""
    if not saves:
        return "training stopped"
    if saved is None:
        return "training stopped before any checkpoint was saved"
    return f"training stopped and the checkpoint of step {saved} is kept"


def _next_multiple(step: int, every: int) -> int:
    if every <= 0:
        return 1 << 62
    return (step // every + 1) * every
