"""Local Ed25519 key files: generated and kept on the participant's machine, never sent to the exchange."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import crypto
from common.keyfiles import KeyFileError, generate, load, save

__all__ = ["KeyFileError", "generate", "load", "save", "public_text", "key_id", "registration_proof"]


def public_text(key: Ed25519PrivateKey) -> str:
    """Return the base64 raw public key of ``key``."""
    return crypto.public_key_text(key.public_key())


def key_id(key: Ed25519PrivateKey) -> str:
    """Return the id the exchange knows ``key`` by (hex SHA-256 of the raw public key)."""
    return crypto.key_fingerprint(public_text(key))


def registration_proof(key: Ed25519PrivateKey, participant_id: str) -> str:
    """Sign the key-registration message that proves the participant holds ``key``."""
    return crypto.sign(key, crypto.key_registration_message(participant_id, public_text(key)))
