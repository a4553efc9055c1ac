"""Small, pure helpers around Ed25519 (pyca/cryptography) and token hashing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519_PUBLIC_KEY_BYTES = 32
TOKEN_PREFIX = "pdx_"
TOKEN_ENTROPY_BYTES = 32
KEY_REGISTRATION_CONTEXT = b"pdx-key-registration/v1\n"
KEY_ENDORSEMENT_CONTEXT = b"pdx-key-endorsement/v1\n"
KEY_APPROVAL_CONTEXT = b"pdx-key-approval/v1\n"


class BadKey(ValueError):
    """A public key or signature could not be decoded or did not verify."""


def b64encode(data: bytes) -> str:
    """Encode bytes as standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Decode standard base64 text strictly, raising ``BadKey`` on anything else."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise BadKey("not valid base64") from exc


def load_public_key(text: str) -> Ed25519PublicKey:
    """Parse a base64 raw 32-byte Ed25519 public key."""
    raw = b64decode(text)
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise BadKey(f"an Ed25519 public key has {ED25519_PUBLIC_KEY_BYTES} bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    """Return the base64 raw form of ``key``."""
    return b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def key_fingerprint(public_key_b64: str) -> str:
    """Return the key id: hex SHA-256 of the raw public key bytes."""
    return hashlib.sha256(b64decode(public_key_b64)).hexdigest()


def key_registration_message(participant_id: str, public_key_b64: str) -> bytes:
    """Return the bytes a participant signs to prove it holds the private key it registers."""
    return KEY_REGISTRATION_CONTEXT + f"{participant_id}\n{public_key_b64}\n".encode("ascii")


def key_endorsement_message(participant_id: str, public_key_b64: str) -> bytes:
    """Return the bytes an existing key of the participant signs to vouch for a new key of the same participant."""
    return KEY_ENDORSEMENT_CONTEXT + f"{participant_id}\n{public_key_b64}\n".encode("ascii")


def key_approval_message(participant_id: str, public_key_b64: str, operator_id: str, approved_at: str) -> bytes:
    """Return the bytes an operator signs to approve a participant's first or recovery key."""
    return KEY_APPROVAL_CONTEXT + f"{participant_id}\n{public_key_b64}\n{operator_id}\n{approved_at}\n".encode("ascii")


def verify(public_key_b64: str, signature_b64: str, message: bytes) -> None:
    """Verify an Ed25519 signature, raising ``BadKey`` with the reason when it does not hold."""
    key = load_public_key(public_key_b64)
    signature = b64decode(signature_b64)
    try:
        key.verify(signature, message)
    except InvalidSignature as exc:
        raise BadKey("signature does not verify under the given public key") from exc


def sign(private_key: Ed25519PrivateKey, message: bytes) -> str:
    """Sign ``message`` and return the base64 signature."""
    return b64encode(private_key.sign(message))


def new_token() -> str:
    """Return a fresh API token: ``pdx_`` and 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_ENTROPY_BYTES)


def token_hash(token: str) -> str:
    """Return the stored form of a token: hex SHA-256 (tokens carry 256 bits, so no slow hash is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
