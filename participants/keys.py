"""Local Ed25519 key files: generated and kept on the participant's machine, never sent to the exchange.

Registering a key takes two proofs: the new key's own (possession) and one a token thief lacks — an
``endorsement`` by a key the participant already has, or an operator's ``approval`` (first or recovery key).
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import crypto
from common.keyfiles import KeyFileError, generate, load, save
from ledger.entries import format_time

__all__ = ["KeyFileError", "generate", "load", "save", "public_text", "key_id", "registration_proof",
           "endorsement", "approval", "registration_body"]


def public_text(key: Ed25519PrivateKey) -> str:
    """Return the base64 raw public key of ``key``."""
    return crypto.public_key_text(key.public_key())


def key_id(key: Ed25519PrivateKey) -> str:
    """Return the id the exchange knows ``key`` by (hex SHA-256 of the raw public key)."""
    return crypto.key_fingerprint(public_text(key))


def registration_proof(key: Ed25519PrivateKey, participant_id: str) -> str:
    """Sign the key-registration message that proves the participant holds ``key``."""
    return crypto.sign(key, crypto.key_registration_message(participant_id, public_text(key)))


def endorsement(existing: Ed25519PrivateKey, participant_id: str, new_public_key: str) -> dict[str, str]:
    """Vouch for ``new_public_key`` with a key the participant already has registered."""
    return {"key": key_id(existing),
            "signature": crypto.sign(existing, crypto.key_endorsement_message(participant_id, new_public_key))}


def approval(operator_key: Ed25519PrivateKey, operator_id: str, participant_id: str, new_public_key: str,
             approved_at: datetime) -> dict[str, str]:
    """Approve, as an operator, a participant's first or recovery key (checked out of band, e.g. its key id)."""
    when = format_time(approved_at)
    message = crypto.key_approval_message(participant_id, new_public_key, operator_id, when)
    return {"operator": operator_id, "key": key_id(operator_key), "approved_at": when,
            "signature": crypto.sign(operator_key, message)}


def registration_body(key: Ed25519PrivateKey, participant_id: str, *, label: str | None = None,
                      endorsement: dict[str, str] | None = None, approval: dict[str, str] | None = None) -> dict:
    """Return the body of ``POST /participants/me/keys`` for ``key`` (sign the request with ``key`` itself)."""
    body: dict = {"public_key": public_text(key), "proof": registration_proof(key, participant_id), "label": label}
    if endorsement is not None:
        body["endorsement"] = endorsement
    if approval is not None:
        body["approval"] = approval
    return body
