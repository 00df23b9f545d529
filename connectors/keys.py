"""Secret keys kept under the data directory: made on first use, readable by the owner only.

One file per purpose (``<home>/keys/<name>.key``, 32 random bytes; the folder 0700, the file
0600, whatever the umask). Two processes asking at once get the same key: the file is created
with ``O_EXCL`` and the loser reads the winner's. Nothing here prints or logs a key.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

KEY_BYTES = 32
_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")


class KeyError_(Exception):  # noqa: N801 - not the builtin KeyError
    """A key file that exists but cannot be used (wrong size, wrong permissions)."""


def secret_key(keys_dir: Path, name: str) -> bytes:
    """The key named ``name`` under ``keys_dir``; made (randomly) on first use."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a key name: {name!r}")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    path = keys_dir / f"{name}.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    return _read(path)


def _read(path: Path) -> bytes:
    for _ in range(50):  # another process may be between O_EXCL and its write
        data = path.read_bytes()
        if len(data) == KEY_BYTES:
            break
        time.sleep(0.01)
    else:
        raise KeyError_(f"{path}: a key file must hold {KEY_BYTES} bytes")
    if path.stat().st_mode & 0o077:
        raise KeyError_(f"{path}: readable by others; run: chmod 600 {path}")
    return data


SIGNING_KEY = "audit-signing"


def signing_key(keys_dir: Path, seed_hex: str | None = None) -> Any:
    """The Ed25519 key that signs audit checkpoints: the 32-byte seed ``seed_hex`` (a setting) when
    given, else ``<keys_dir>/audit-signing.key`` (made on first use, 0600)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if seed_hex:
        try:
            seed = bytes.fromhex(seed_hex.strip())
        except ValueError:
            seed = b""
        if len(seed) != KEY_BYTES:
            raise KeyError_(f"the audit signing key must be {KEY_BYTES} bytes as {2 * KEY_BYTES} hex digits")
    else:
        seed = secret_key(keys_dir, SIGNING_KEY)
    return Ed25519PrivateKey.from_private_bytes(seed)
