"""Private files: what ldflow writes under its data directory is readable by its user only.

The data directory, the SQLite database (SQLite gives its WAL and SHM files the database file's
mode), the outbox folder of .eml files, the drop folder's ``processed/`` and ``quarantine/`` and
the exports are created 0700 (folders) and 0600 (files) whatever the umask. Folders that exist
already keep their mode: an operator who opened one up on purpose is not overruled.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["DIR_MODE", "FILE_MODE", "atomic_write", "atomic_write_bytes", "private_dir", "private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder, created (with any missing parents) 0700 if it does not exist."""
    folder = Path(path)
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            created.mkdir(mode=DIR_MODE)
            os.chmod(created, DIR_MODE)  # mkdir's mode is masked by the umask
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty with 0600 if it does not exist (e.g. before SQLite opens it)."""
    target = Path(path)
    with contextlib.suppress(FileExistsError):
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.close(fd)
    return target


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[str]], object]) -> Path:
    """Write a text file through ``write(stream)`` to a 0600 temporary file beside ``path``, flushed to
    disk, then renamed over ``path``: a reader sees the old file or the whole new one, never half."""
    return _atomic(path, lambda fd: os.fdopen(fd, "w", encoding="utf-8", newline=""), write)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """``atomic_write`` for bytes (a PDF): 0600, whole or not at all."""
    return _atomic(path, lambda fd: os.fdopen(fd, "wb"), lambda stream: stream.write(data))


def _atomic(path: str | os.PathLike[str], open_: Callable[[int], IO[Any]], write: Callable[[IO[Any]], object]) -> Path:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with open_(fd) as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
