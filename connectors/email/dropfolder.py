"""The embedded default inbox: a folder where new requests and mails are dropped.

Files (read in name order):

* ``*.eml`` - an e-mail (a new request, or a reply to one);
* ``*.json``, ``*.yaml``/``*.yml`` - a new request's intake as a mapping.

Files whose names start with ``.`` or end with ``.tmp``/``.part`` are being
written and are skipped: writers should write a temporary name and rename.
A symbolic link or a special file (FIFO, socket, device) with one of those
suffixes is quarantined *unread* (a link could point anywhere the runner may
read; a FIFO would block the pass). ``processed/`` and ``quarantine/`` are
created 0700 and the files moved there made 0600.
Nothing moves until the caller confirms, after its database commit:
``confirm(item, "processed")`` moves the file to ``processed/``,
``confirm(item, "quarantined", reason)`` to ``quarantine/`` with
``<name>.reason.txt`` beside it. A file that was recorded but not moved (a
crash between commit and move) is recognised next time - by its
Message-ID, or for JSON/YAML by its content hash - and just moved.
Several readers may share the folder (machines mounting one ``LDFLOW_HOME``):
a file another reader took or filed meanwhile is skipped, not an error.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connectors.email.config import InboundLimits
from connectors.email.inbound import InboundItem, InboundRef, parse_message
from connectors.files import FILE_MODE, private_dir
from connectors.loader import parse_mapping
from states.errors import InvalidInput

__all__ = ["DropFolderSource"]

_KINDS = {".eml": "eml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def _load_mapping(kind: str, raw: bytes, name: str) -> dict[str, Any]:
    """A dropped JSON/YAML file's fields, read by the one input loader (as ``ldflow submit -f`` reads them)."""
    return parse_mapping(raw.decode("utf-8-sig"), name, "json" if kind == "json" else "yaml")


class DropFolderSource:
    """Reads ``folder`` for new requests and mails (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str], limits: InboundLimits | None = None) -> None:
        self.folder = Path(folder)
        self.limits = limits or InboundLimits()
        self.source = f"drop:{self.folder.resolve()}"
        self.processed_dir = self.folder / "processed"
        self.quarantine_dir = self.folder / "quarantine"

    def _candidates(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if name.startswith(".") or name.endswith((".tmp", ".part")) or path.suffix.lower() not in _KINDS:
                continue
            try:
                mode = path.lstat().st_mode  # the entry itself, not what a link points to
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(mode):  # links and special files too: they are quarantined unread
                found.append(path)
        return found

    def _unread(self, path: Path, mode: int) -> InboundItem | None:
        """A link or special file as an item to quarantine without reading it (None for a regular file)."""
        if stat.S_ISREG(mode):
            return None
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file (FIFO, socket or device)"
        digest = hashlib.sha256(f"{path.name}:{os.lstat(path).st_ino}".encode()).hexdigest()[:40]
        ref = InboundRef(self.source, f"<{digest}@unread.drop.ldflow>")
        return InboundItem(ref=ref, raw=b"", kind=_KINDS[path.suffix.lower()],
                           error=f"{path.name} is {what}: quarantined unread", path=str(path))

    def read(self, path: Path) -> InboundItem:
        """One file as an item (never raises for bad content: the item carries the error)."""
        kind = _KINDS[path.suffix.lower()]
        unread = self._unread(path, path.lstat().st_mode)
        if unread is not None:
            return unread
        size = path.lstat().st_size
        if size > self.limits.max_message_bytes:
            ref = InboundRef(self.source, f"<{path.name}-{size}@oversize.drop.ldflow>")
            reason = f"file is {size} bytes, over the limit of {self.limits.max_message_bytes}"
            return InboundItem(ref=ref, raw=b"", kind=kind, error=reason, path=str(path))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the check
                return self._unread(path, os.fstat(handle.fileno()).st_mode) or InboundItem(
                    ref=InboundRef(self.source, None), raw=b"", kind=kind, error="not a regular file",
                    path=str(path))
            raw = handle.read(self.limits.max_message_bytes + 1)
        if kind == "eml":
            message = parse_message(raw, self.limits)
            return InboundItem(
                ref=InboundRef(self.source, message.message_id, digest=message.content_digest), raw=raw, kind=kind,
                message=message, path=str(path)
            )
        digest = hashlib.sha256(raw).hexdigest()
        ref = InboundRef(self.source, f"<{digest[:40]}@file.drop.ldflow>")
        try:
            intake = _load_mapping(kind, raw, path.name)
        except InvalidInput as exc:
            detail = "; ".join(str(e) for e in exc.errors)
        except UnicodeDecodeError:
            detail = "not UTF-8 text"
        else:
            return InboundItem(ref=ref, raw=raw, kind=kind, intake=intake, path=str(path))
        return InboundItem(ref=ref, raw=raw, kind=kind, error=f"unreadable {kind}: {detail}", path=str(path))

    def fetch_new(
        self, is_seen: Callable[[InboundRef], bool] | None = None, limit: int | None = None
    ) -> Iterator[InboundItem]:
        """Yield the files not recorded yet; ones already recorded are moved to ``processed/``."""
        yielded = 0
        for path in self._candidates():
            if not os.path.lexists(path):
                continue  # taken by a concurrent reader
            try:
                item = self.read(path)
            except FileNotFoundError:
                continue  # taken by a concurrent reader (another machine on shared storage) meanwhile
            if is_seen is not None and is_seen(item.ref):
                self._move(path, self.processed_dir)
                continue
            if limit is not None and yielded >= limit:
                break
            yielded += 1
            yield item

    def confirm(self, item: InboundItem, status: str, reason: str | None = None) -> Path | None:
        """Move the item's file once its outcome is committed; returns the new path."""
        if item.path is None:
            return None
        path = Path(item.path)
        if not os.path.lexists(path):
            return None
        if status == "quarantined":
            target = self._move(path, self.quarantine_dir)
            if target is None:
                return None
            reason_path = target.with_name(target.name + ".reason.txt")
            fd = os.open(reason_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                         FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write((reason or "quarantined") + "\n")
            return target
        return self._move(path, self.processed_dir)

    acknowledge = confirm

    def quarantine_path_for(self, item: InboundItem) -> str | None:
        """Where ``confirm(item, "quarantined")`` will put the file (for ``inbound.raw_path``)."""
        if item.path is None:
            return None
        return str(self._target(Path(item.path), self.quarantine_dir))

    @staticmethod
    def _target(path: Path, folder: Path) -> Path:
        target = folder / path.name
        if os.path.lexists(target):
            digest = hashlib.sha256(str(path).encode() + str(path.lstat().st_mtime_ns).encode()).hexdigest()[:8]
            target = folder / f"{path.stem}.{digest}{path.suffix}"
        return target

    def _move(self, path: Path, folder: Path) -> Path | None:
        """Move ``path`` into ``folder``; None when it is gone already (a concurrent reader on shared
        storage filed it first: the database says who took it in)."""
        private_dir(folder)
        try:
            target = self._target(path, folder)
            os.replace(path, target)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(target.lstat().st_mode):
            os.chmod(target, FILE_MODE)  # never a link's target: links and special files are left as they are
        return target
