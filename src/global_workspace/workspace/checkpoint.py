"""A run's resolved configuration and its checkpoints: JSON + safetensors, each weight once.

RUN/config.json                           RunConfig (everything needed to rebuild model and data)
RUN/command.txt                           the command line that started the run
RUN/checkpoint.json                       {"folder": "checkpoint-{step}"}: which checkpoint is current
RUN/checkpoint-{step}/model.safetensors   the ensemble's weights (also loadable member by member)
RUN/checkpoint-{step}/trainer.safetensors AdamW moments and the step counter
RUN/checkpoint-{step}/state.json          {"step", "format_version"}
Nothing is pickled: the files load with safetensors, or torch.load(weights_only=True)-safe JSON.

A save writes a new folder, then points checkpoint.json at it with one rename, then deletes the
older folders: a reader (or a writer killed at any moment) always finds one whole checkpoint.
Runs written before the pointer keep theirs in RUN/checkpoint/ until their next save.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..errors import UserError
from ..fileio import atomic_directory, atomic_write_json, read_json
from ..finite import require_finite_tensors
from ..memory import member_parameters
from .data import check_same_latents, train_fingerprint
from .families import family_of
from .model import GlobalWorkspace
from .presets import MemberSpec
from .settings import TrainConfig, WorkspaceConfig

RUN_FORMAT_VERSION = 1
POINTER = "checkpoint.json"
CHECKPOINT = "checkpoint"
"""The checkpoint folder of runs saved before the pointer: read, never written."""
_FOLDER = re.compile(r"checkpoint-\d+(\.\d+)?")
"""A folder the pointer may name: a name inside the run, never a path out of it."""
_LEFTOVER = re.compile(r"\.?checkpoint(-\d+(\.\d+)?)?(\.(tmp|old)-.+)?|\.checkpoint\.json\..+")
"""What saves leave behind, finished or killed: older folders, temporaries, the old layout."""
READ_ATTEMPTS = 5
T = TypeVar("T")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; saved as RUN/config.json."""

    data: str
    """The dataset folder holding domains/{name}/latents/."""
    workspace: WorkspaceConfig
    members: list[MemberSpec]
    train: TrainConfig = field(default_factory=TrainConfig)
    learn_logit_scale: bool = False
    data_fingerprint: str = ""
    """Hash of the train latents the run learns from (`data.train_fingerprint`); "" if unknown
    (runs written before it existed). Resuming compares it, not the path, so a moved dataset
    resumes and a different or re-pretrained one is refused."""
    format_version: int = RUN_FORMAT_VERSION

    @property
    def domains(self) -> list[str]:
        return list(self.workspace.domains)

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "data": self.data,
            "workspace": self.workspace.to_json(),
            "members": [m.to_json() for m in self.members],
            "train": self.train.to_json(),
            "learn_logit_scale": self.learn_logit_scale,
            "data_fingerprint": self.data_fingerprint,
        }

    @classmethod
    def from_json(cls, obj: Any, where: Path) -> RunConfig:
        if not isinstance(obj, Mapping):
            raise UserError(f"{where} is not a valid run configuration (not a JSON object); retrain the run")
        version = obj.get("format_version")
        if version != RUN_FORMAT_VERSION:
            raise UserError(
                f"{where} was written by another version of gw (format {version}); retrain the run"
            )
        try:
            return cls(
                data=str(obj["data"]),
                workspace=WorkspaceConfig.from_json(obj["workspace"]),
                members=[MemberSpec.from_json(m) for m in obj["members"]],
                train=TrainConfig.from_json(dict(obj["train"])),
                learn_logit_scale=bool(obj["learn_logit_scale"]),
                data_fingerprint=str(obj.get("data_fingerprint", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{where} is not a valid run configuration ({exc!r}); retrain the run") from exc

    def identity(self) -> dict[str, Any]:
        """The settings a checkpoint depends on (logging and graph capture left out)."""
        obj = self.to_json()
        for key in ("log_every", "eval_every", "cuda_graph"):
            obj["train"].pop(key)
        obj.pop("data")
        return obj


def write_config(run: Path, config: RunConfig) -> None:
    atomic_write_json(Path(run) / "config.json", config.to_json())


def read_config(run: Path) -> RunConfig:
    file = Path(run) / "config.json"
    if not Path(run).is_dir():
        raise UserError(f"run {run} does not exist; train it with `gw train`")
    if not file.is_file():
        kind = "an experiment folder" if (Path(run) / "experiment.json").is_file() else "no run folder"
        raise UserError(f"{run} is {kind} (it has no config.json); name a run folder written by `gw train`")
    stored = read_json(file, "run configuration")
    if isinstance(stored, dict) and "kind" in stored and "members" not in stored:
        raise UserError(
            f"{run} holds a specialist ({stored['kind']!r}, written by gw pretrain), not a run; name a run "
            "folder written by `gw train`"
        )
    return RunConfig.from_json(stored, file)


def check_same_config(run: Path, config: RunConfig) -> None:
    """Refuse to resume a run that was started with other settings."""
    stored = read_config(run)
    old, new = stored.identity(), config.identity()
    check_same_latents(
        old.pop("data_fingerprint"),
        new.pop("data_fingerprint"),
        str(run),
        config.data,
        "resume with the run's own data, or --force to start over",
    )
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if "train" in diff:
            diff = [d for d in diff if d != "train"]
            diff += [f"train.{k}" for k in old["train"] if old["train"][k] != new["train"].get(k)]
        raise UserError(
            f"{run} holds a checkpoint of another configuration (differs in {', '.join(diff)}); "
            "use the same settings to resume, or --force to start over"
        )


def cpu_copies(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Own, contiguous CPU copies (weights live as views of one flat optimiser buffer)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def save_checkpoint(
    run: Path, model: torch.nn.Module, trainer_state: Mapping[str, torch.Tensor], step: int
) -> None:
    """Write a new checkpoint folder, point RUN/checkpoint.json at it, then delete the others."""
    run = Path(run)
    name = _unused_name(run, step)
    with atomic_directory(run / name, force=False, what="checkpoint") as tmp:
        save_file(cpu_copies(model.state_dict()), str(tmp / "model.safetensors"))
        save_file(cpu_copies(trainer_state), str(tmp / "trainer.safetensors"))
        atomic_write_json(tmp / "state.json", {"step": step, "format_version": RUN_FORMAT_VERSION})
    atomic_write_json(run / POINTER, {"folder": name})
    for path in run.iterdir():
        if path.name != name and _LEFTOVER.fullmatch(path.name):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _unused_name(run: Path, step: int) -> str:
    """checkpoint-{step}, suffixed when that folder exists (the current one, saved at the same
    step, or one a killed save left): a folder a reader may be loading is never replaced."""
    name, again = f"checkpoint-{step}", 0
    while (run / name).exists():
        again += 1
        name = f"checkpoint-{step}.{again}"
    return name


def current_checkpoint(run: Path) -> Path | None:
    """The folder of the run's current checkpoint (not necessarily there any more when a save
    is under way); None when the run has none."""
    pointer = Path(run) / POINTER
    if not pointer.exists():
        legacy = Path(run) / CHECKPOINT
        return legacy if (legacy / "state.json").is_file() else None
    obj = read_json(pointer, "checkpoint pointer")
    name = obj.get("folder") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not _FOLDER.fullmatch(name):
        raise UserError(
            f"checkpoint pointer {pointer} names no checkpoint folder ({obj!r}); "
            'write {"folder": "checkpoint-STEP"} naming one of the run\'s checkpoint folders into it'
        )
    return Path(run) / name


def has_checkpoint(run: Path) -> bool:
    # The old layout first: a save writes the pointer before it deletes RUN/checkpoint/.
    return (Path(run) / CHECKPOINT / "state.json").is_file() or (Path(run) / POINTER).is_file()


def _read_current(run: Path, read: Callable[[Path], T]) -> T:
    """`read` applied to the current checkpoint folder. A save deletes the folder it replaces, so
    a read that fails while the pointer moved on is tried again on the new folder."""
    folder = current_checkpoint(run)
    for _ in range(READ_ATTEMPTS - 1):
        try:
            return read(_existing(run, folder))
        except (UserError, OSError):
            moved = current_checkpoint(run)
            if moved == folder:
                raise
            folder = moved
    return read(_existing(run, folder))


def _existing(run: Path, folder: Path | None) -> Path:
    if folder is None:
        raise UserError(f"run {run} has no checkpoint yet; train it with `gw train`")
    return folder


def load_weights(run: Path, model: torch.nn.Module) -> int:
    """Load the checkpoint's weights into `model` (built from the run's config); returns the step."""

    def read(folder: Path) -> int:
        state = read_json(folder / "state.json", "checkpoint state")
        weights = _read_safetensors(folder / "model.safetensors")
        try:
            model.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise UserError(
                f"{folder} holds weights of another model configuration; retrain the run"
            ) from exc
        return _step_of(state, folder / "state.json")

    return _read_current(Path(run), read)


def _step_of(state: Any, file: Path) -> int:
    step = state.get("step") if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UserError(
            f"checkpoint state {file} has no step count ({state!r}); retrain the run with --force"
        )
    return step


def checkpoint_step(run: Path) -> int:
    """The step of the run's current checkpoint, read without loading its weights."""
    return _read_current(
        Path(run),
        lambda folder: _step_of(read_json(folder / "state.json", "checkpoint state"), folder / "state.json"),
    )


def load_trainer_state(run: Path) -> dict[str, torch.Tensor]:
    return _read_current(Path(run), lambda folder: _read_safetensors(folder / "trainer.safetensors"))


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise UserError(f"checkpoint file {file} is missing; the run has no complete checkpoint")
    try:
        tensors = load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types
        raise UserError(f"checkpoint file {file} is corrupted ({exc})") from exc
    require_finite_tensors(tensors, f"checkpoint file {file}", "retrain the run with --force")
    return tensors


def _check_size_against_weights(run: Path, config: RunConfig) -> None:
    """Refuse settings that describe a network larger than the checkpoint holds before building it:
    an edited config.json (a depth of a million) otherwise fills the machine's memory for minutes."""

    def held(folder: Path) -> int | None:
        try:
            with safe_open(str(folder / "model.safetensors"), "pt") as weights:
                names = weights.keys()  # a safe_open handle is not iterable
                return sum(math.prod(weights.get_slice(name).get_shape()) for name in names)
        except Exception:  # a damaged file: loading it names the problem
            return None

    stored = _read_current(run, held)
    # An estimate, not an exact count (the direct ablation's translators hold a little less), so
    # only a network of more than twice the weights is refused here; load_weights checks shapes.
    estimate = len(config.members) * member_parameters(config.workspace)
    if stored is not None and estimate > 2 * stored:
        raise UserError(
            f"{run / 'config.json'} describes a network of about {estimate} parameters, but its checkpoint "
            f"holds {stored}: the settings were edited or belong to another run; retrain the run"
        )


def load_run_model(run: Path, device: torch.device) -> tuple[RunConfig, torch.nn.Module, int]:
    """Rebuild a run's trained model, of its presets' family (families.py): (config, model, step)."""
    config = read_config(run)
    if not has_checkpoint(run):
        raise UserError(f"run {run} has no checkpoint yet; train it with `gw train`")
    _check_size_against_weights(run, config)
    model = family_of(config.members).build_model(config.workspace, [m.seed for m in config.members])
    step = load_weights(run, model)
    return config, model.to(device), step


MOVED_DATA = "--data, or data= from Python"
"""How a moved dataset is named, on the command line and from Python."""


def check_run_data(run: Path, config: RunConfig) -> None:
    """Refuse to score a run on latents other than those it was trained on (a re-pretrained domain
    gives the same shapes but another latent space, and the scores would be meaningless)."""
    if not config.data_fingerprint:
        return  # nothing to compare with: spare hashing the latents
    try:
        now = train_fingerprint(config.data, config.domains)
    except OSError:
        return  # missing latents: loading them names the problem and the fix
    check_same_latents(config.data_fingerprint, now, f"run {run}", config.data, "retrain the run on them")


def load_model(run: Path, device: torch.device) -> tuple[RunConfig, GlobalWorkspace, int]:
    """Rebuild a trained workspace from its run folder: (config, model on device, step)."""
    config, model, step = load_run_model(run, device)
    if not isinstance(model, GlobalWorkspace):
        raise UserError(
            f"run {run} trained direct translators (the ablation), not a global workspace: there is no "
            "workspace to load or translate through; `gw evaluate` scores their translations"
        )
    return config, model, step
