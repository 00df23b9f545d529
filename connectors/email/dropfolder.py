"""The embedded default inbox: a folder where new requests and mails are dropped.

Files (read in name order):

* ``*.eml`` - an e-mail (a new request, or a reply to one);
* ``*.json``, ``*.yaml``/``*.yml`` - a new request's intake as a mapping.

Files whose names start with ``.`` or end with ``.tmp``/``.part`` are being
written and are skipped: writers should write a temporary name and rename.
Nothing moves until the caller confirms, after its database commit:
``confirm(item, "processed")`` moves the file to ``processed/``,
``confirm(item, "quarantined", reason)`` to ``quarantine/`` with
``<name>.reason.txt`` beside it. A file that was recorded but not moved (a
crash between commit and move) is recognised next time - by its
Message-ID, or for JSON/YAML by its content hash - and just moved.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connectors.email.config import InboundLimits
from connectors.email.inbound import InboundItem, InboundRef, parse_message
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
            if name.startswith(".") or name.endswith((".tmp", ".part")) or not path.is_file():
                continue
            if path.suffix.lower() in _KINDS:
                found.append(path)
        return found

    def read(self, path: Path) -> InboundItem:
        """One file as an item (never raises for bad content: the item carries the error)."""
        kind = _KINDS[path.suffix.lower()]
        size = path.stat().st_size
        if size > self.limits.max_message_bytes:
            ref = InboundRef(self.source, f"<{path.name}-{size}@oversize.drop.ldflow>")
            reason = f"file is {size} bytes, over the limit of {self.limits.max_message_bytes}"
            return InboundItem(ref=ref, raw=b"", kind=kind, error=reason, path=str(path))
        raw = path.read_bytes()
        if kind == "eml":
            message = parse_message(raw, self.limits)
            return InboundItem(
                ref=InboundRef(self.source, message.message_id), raw=raw, kind=kind, message=message, path=str(path)
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
            if not path.exists():
                continue  # taken by a concurrent reader
            item = self.read(path)
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
        if not path.exists():
            return None
        if status == "quarantined":
            target = self._move(path, self.quarantine_dir)
            reason_path = target.with_name(target.name + ".reason.txt")
            reason_path.write_text((reason or "quarantined") + "\n", encoding="utf-8")
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
        if target.exists():
            digest = hashlib.sha256(str(path).encode() + str(path.stat().st_mtime_ns).encode()).hexdigest()[:8]
            target = folder / f"{path.stem}.{digest}{path.suffix}"
        return target

    def _move(self, path: Path, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = self._target(path, folder)
        os.replace(path, target)
        return target
