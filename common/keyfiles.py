"""Owner-only files: Ed25519 private keys (PKCS#8 PEM; the participant's key, the exchange's log key) and other
secrets (token files, databases), created 0600 so that they are never readable by others, not even for a moment."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PRIVATE_KEY_MODE = 0o600


class KeyFileError(Exception):
    """A key file is missing, unreadable, already present, or not an Ed25519 private key."""


def save(key: Ed25519PrivateKey, path: Path, *, overwrite: bool = False) -> None:
    """Write ``key`` as unencrypted PKCS#8 PEM, readable by its owner only."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a private key")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    descriptor = os.open(path, flags, PRIVATE_KEY_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, replacing it, through a file that is 0600 from its creation on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist; take group and other access away if it does.

    SQLite creates its -wal and -shm files with the database file's permissions, so they follow.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, mode & 0o700)


def generate(path: Path, *, overwrite: bool = False) -> Ed25519PrivateKey:
    """Create an Ed25519 private key in a PEM file only the owner can read, and return it."""
    key = Ed25519PrivateKey.generate()
    save(key, path, overwrite=overwrite)
    return key


def load(path: Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from a PEM file."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"cannot read a private key from {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key
