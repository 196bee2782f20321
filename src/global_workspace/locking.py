"""One writer per output: a command holds an exclusive lock on the folder it writes until it ends.
A long reader of a dataset (training, an experiment) holds a shared lock on it, so that nothing
replaces the dataset under it while other readers go on.

The lock is a file `.{name}.lock` beside the output (not inside it, so that --force replacing the
folder cannot replace the lock). It is held with `flock`, which the kernel releases when its holder
dies, so a lock file left by a killed process blocks nothing; it records the holder's pid and host
for the refusal message only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .fileio import atomic_directory, check_parent_writable


def lock_file(path: Path) -> Path:
    """The lock file of output `path`: a hidden sibling, found the same way however `path` is spelt."""
    path = Path(path).resolve()
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive_output(path: Path, fix: str | None = "choose another --out") -> Iterator[None]:
    """Hold the lock on output `path` for the block, or refuse at once when another process holds it.

    `fix` ends the refusal: what the user can do besides waiting (None: nothing else).
    """
    path = Path(path)
    lock = lock_file(path)
    check_parent_writable(lock)
    fd = _acquire(lock, path, fix)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield
    finally:
        # Unlinked while still held: a process that opened the old file sees it is gone and retries.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


@contextlib.contextmanager
def locked_atomic_directory(
    path: Path, force: bool, what: str, marker: str | None = None, fix: str | None = "choose another --out"
) -> Iterator[Path]:
    """`atomic_directory` under the output's lock: how every command that writes a whole folder
    starts, so that no two of them write it at once."""
    with exclusive_output(path, fix), atomic_directory(path, force, what, marker) as tmp:
        yield tmp


@contextlib.contextmanager
def shared_input(path: Path) -> Iterator[None]:
    """Hold a shared lock on input folder `path` for the block: a command replacing or rewriting it
    is refused meanwhile, another reader is not. Where no lock can be taken (read-only storage, a
    file system without flock), the block runs unlocked, as reading did before there were locks."""
    lock = lock_file(path)
    fd = _acquire_shared(lock, Path(path))
    if fd is None:
        yield
        return
    with contextlib.suppress(OSError):  # a killed writer's pid would name the wrong holder to a writer
        os.ftruncate(fd, 0)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # the last reader out removes the lock file
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(lock)
        os.close(fd)


SHARED_TRIES = 50
"""Attempts, 2 ms apart, at a shared lock: the last reader out holds it exclusively for an instant
while it removes the lock file, and a reader arriving then must not be refused."""

NO_LOCKING = (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL)
"""What flock raises on a file system that does not lock."""


def _acquire_shared(lock: Path, path: Path) -> int | None:
    """An open descriptor of `lock` holding a shared flock, or None where none can be held."""
    holder = ""
    for _ in range(SHARED_TRIES):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file in a shared folder: flock needs no write
            try:
                fd = os.open(lock, os.O_RDONLY)
            except OSError:
                return None
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            time.sleep(0.002)
            continue
        except OSError as exc:
            os.close(fd)
            if exc.errno in NO_LOCKING:
                return None
            raise
        if _still_there(lock, fd):
            return fd
        os.close(fd)
    raise UserError(f"{path} is being written by another gw process{holder}; wait for it to finish")


def _acquire(lock: Path, path: Path, fix: str | None) -> int:
    """An open descriptor of `lock` holding its exclusive flock; retried when the holder removed the
    file between our open and our flock, since that lock guards nothing any more."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UserError(
                f"cannot write {path}: its lock file {lock} cannot be created ({exc.strerror}); "
                "choose a writable location"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            also = f" or {fix}" if fix else ""
            doing = "written" if holder else "used (read or written)"
            raise UserError(
                f"{path} is being {doing} by another gw process{holder}; wait for it to finish{also}"
            ) from None
        if _still_there(lock, fd):
            return fd
        os.close(fd)


def _still_there(lock: Path, fd: int) -> bool:
    """Whether `fd` is still the file at `lock`: a holder may have removed it since we opened it."""
    try:
        return os.stat(lock).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _holder(fd: int) -> str:
    """' (pid N)', or ' (pid N on HOST)' for another machine; empty before the holder wrote it."""
    words = os.pread(fd, 256, 0).decode(errors="replace").split()
    if len(words) != 2 or not words[0].isdigit():
        return ""
    pid, host = words
    return f" (pid {pid})" if host == socket.gethostname() else f" (pid {pid} on {host})"
