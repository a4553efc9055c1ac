"""Ed25519 private-key files (PKCS#8 PEM, owner-only): the participant's key and the exchange's log key."""

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
