"""Secret keys under the data directory: made once, the same key after, owner-only whatever the umask."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connectors.keys import KEY_BYTES, KeyError_, secret_key


def test_a_key_is_made_on_first_use_and_read_back_after(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        first = secret_key(tmp_path / "keys", "links")
    finally:
        os.umask(old)
    assert len(first) == KEY_BYTES and secret_key(tmp_path / "keys", "links") == first
    assert secret_key(tmp_path / "keys", "mail-tokens") != first
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "links.key").stat().st_mode) == 0o600


def test_racing_first_uses_get_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key(tmp_path, "links"), range(32)))
    assert len(keys) == 1


def test_a_key_others_can_read_or_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    secret_key(tmp_path, "links")
    (tmp_path / "links.key").chmod(0o644)
    with pytest.raises(KeyError_, match="chmod 600"):
        secret_key(tmp_path, "links")
    (tmp_path / "short.key").write_bytes(b"abc")
    (tmp_path / "short.key").chmod(0o600)
    with pytest.raises(KeyError_, match="32 bytes"):
        secret_key(tmp_path, "short")
    with pytest.raises(ValueError):
        secret_key(tmp_path, "../escape")
