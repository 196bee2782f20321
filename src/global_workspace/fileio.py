"""Writing results so that nothing is ever half-written and nothing is overwritten by accident."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib.format import open_memmap

from .errors import UserError


def _default_mode(directory: bool) -> int:
    """The permissions a plain mkdir/open would give under the current umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def refuse_existing(path: Path, force: bool, what: str = "output", marker: str | None = None) -> None:
    """Stop before any work when `path` exists and the user did not pass --force, or when `marker`
    names the file this tool writes into every such folder and `path` is another folder."""
    if marker is not None:
        refuse_foreign(path, marker, what)
    if not path.exists():
        return
    if marker is None and path.is_file():  # the tool's own folders inside a dataset are replaced
        refuse_inside_dataset(path, what, replacing=True)
    if not force:
        raise UserError(f"{what} {path} already exists; pass --force to overwrite it")


def remove_output(path: Path) -> None:
    """Remove an output that --force replaces: a symbolic link is replaced itself, never what it
    points to."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def refuse_foreign(path: Path, marker: str, what: str) -> None:
    """Refuse to let --force delete what this tool did not write: it replaces an empty folder or a
    folder holding `marker` (the file the tool writes into every `what`), never other files; nor
    may a new `what` lie where replacing a dataset would delete it."""
    path = Path(path)
    refuse_inside_dataset(path, what)
    if not path.exists() or (path / marker).is_file():
        return
    if path.is_dir() and not any(path.iterdir()):
        return
    article = "an" if what[:1] in "aeiou" else "a"
    raise UserError(
        f"{path} exists and is not {article} {what} (it has no {marker}), and --force only replaces "
        f"{what}s; choose another location, or move {path} away yourself"
    )


DATASET_MARKERS = ("dataset.json", "latents.json")
"""The files `gw data` writes into every dataset it makes (generated or imported, and own latents)."""


def refuse_inside_dataset(path: Path, what: str, replacing: bool = False) -> None:
    """Refuse an output inside a dataset folder: a later `gw data … --force` on that dataset would
    delete it with the dataset, whatever it holds. With `replacing` (an existing single file, which
    may be one of the dataset's own), the file is refused instead, even with --force."""
    for folder in Path(path).resolve().parents:
        if not any((folder / marker).is_file() for marker in DATASET_MARKERS):
            continue
        if replacing:
            raise UserError(
                f"{path} lies inside the dataset {folder} and may be one of its files, which --force "
                f"never replaces; write the {what} outside {folder}"
            )
        raise UserError(
            f"{what} {path} lies inside the dataset {folder}, and replacing that dataset would delete "
            f"it; choose a location outside {folder}"
        )


def refuse_overlap(
    out: Path, inputs: Mapping[str, Path | str | None], what: str = "output", fix: str | None = None
) -> None:
    """Refuse an output that is an input, lies inside one or holds one: writing it, and above all
    replacing it with --force, would change or delete what the command reads. None: no such input;
    `fix` replaces the advice to choose another output, for an output the user does not name."""
    target = Path(out).resolve()
    for name, given in inputs.items():
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source or target.is_relative_to(source):
            where = "is" if target == source else "lies inside"
            advice = f"choose an output outside {given}"
        elif source.is_relative_to(target):
            where, advice = "holds", f"choose an output that does not hold {given}"
        else:
            continue
        raise UserError(f"{what} {out} {where} the {name} {given} that this command reads; {fix or advice}")


def check_parent_writable(path: Path) -> None:
    """Create `path`'s parent folder, or refuse in one line when that or writing into it is not allowed."""
    parent = path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {parent}: {exc.strerror}; choose a writable location") from exc
    if not os.access(parent, os.W_OK):
        raise UserError(f"{parent} is not writable; choose a writable location")


@contextlib.contextmanager
def _refusal_is_user_error(path: Path) -> Iterator[None]:
    """Report the system refusing to write `path` (read-only, full disk, no such folder) in one line.

    The parent check cannot foresee every refusal (root passes os.access on /proc, a disk fills up).
    """
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(
            f"cannot write {path}: {reason}; choose another location, or free space or fix permissions there"
        ) from exc


@contextlib.contextmanager
def _full_disk_is_user_error(path: Path) -> Iterator[None]:
    """Report a disk or quota filling up while `path` is written in one line naming where; other
    failures of the writing code keep their own meaning."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(
            f"cannot write {path}: {exc.strerror} on the disk holding {path.resolve().parent}; "
            "free space there or choose another location"
        ) from exc


def _atomic_write(path: Path, write: Callable[[BinaryIO], object], suffix: str = "") -> None:
    """Let `write` fill a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    check_parent_writable(path)
    with _refusal_is_user_error(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.resolve().parent)
        try:
            os.fchmod(fd, _default_mode(directory=False))
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_directory(
    path: Path, force: bool, what: str = "output", marker: str | None = None
) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `path` only if the block succeeds.

    An existing `path` survives any failure untouched; with `force` it is replaced at the end, and
    with `marker` only if it is empty or holds that file (`refuse_foreign`).
    """
    path = Path(path).absolute()  # "." has no name to put a temporary sibling beside
    refuse_existing(path, force, what, marker)
    check_parent_writable(path)
    remove_stale_temporaries(path)
    with _refusal_is_user_error(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.resolve().parent))
    os.chmod(tmp, _default_mode(directory=True))
    try:
        with _full_disk_is_user_error(path):
            yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        elif old is not None:  # --force onto a plain file
            old.unlink(missing_ok=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary folders of `path` (`.{name}.tmp-{pid}-…`) whose writing process is dead:
    what a killed run of the same command left behind. A live writer's temporaries are kept."""
    path = Path(path).resolve()
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp-(\d+)-[^/]*")
    for entry in path.parent.iterdir():
        found = pattern.fullmatch(entry.name)
        if found is not None and entry.is_dir() and not _alive(int(found.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def allocated_memmap(path: Path, dtype: Any, shape: tuple[int, ...]) -> np.memmap:
    """A new zero-filled .npy memory map whose disk blocks are reserved before anything is written:
    a sparse file lets a full disk surface as SIGBUS on a page write, which nothing can catch."""
    array = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return array


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, then rename it into place."""
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save an array as .npy atomically (np.save would leave a truncated file on failure)."""
    _atomic_write(path, lambda handle: np.save(handle, array), suffix=".npy")


def update_digest(digest: Any, path: Path) -> None:
    """Feed a file's bytes to a hashlib digest in blocks, so large files never sit in memory."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning a missing or corrupted file into a UserError naming `what`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {path} is corrupted ({exc}); regenerate it") from exc


def read_npy(file: Path, missing: str, damaged: str, fix: str, mmap: bool = False) -> np.ndarray:
    """An .npy array, never a pickle (memory-mapped with `mmap`). A missing file is the UserError
    `missing`; a damaged one is `damaged (reason); fix`: one line naming the file, whoever reads it."""
    if not Path(file).is_file():
        raise UserError(missing)
    try:
        return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{damaged} ({exc}); {fix}") from exc


def read_npz(path: Path, what: str, fix: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file; a missing, truncated or pickled one is a UserError naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} is missing; {fix}")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what} {path} is corrupted or truncated ({exc}); {fix}") from exc


def require_free_space(path: Path, needed: int, fix: str) -> None:
    """Refuse, before any byte is written, an output larger than the free space of its disk."""
    existing = Path(path).resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise UserError(
            f"{path} needs about {_gigabytes(needed)} and its disk has {_gigabytes(free)} free; {fix}"
        )


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.3g} GB"
