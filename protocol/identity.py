"""Node identity: a node proves it holds its provider's key by signing a fresh nonce the exchange chose.

    GET /v1/identity?nonce=<32–128 hex digits> → {"participant": "prt_…", "nonce": "…", "signature": "<base64>"}

The signature covers ``IDENTITY_CONTEXT`` + the canonical JSON of ``{"nonce", "participant"}``: a context of its
own, so an identity proof can never be taken for a receipt, a ticket or a signed request. The exchange sends a
node nothing (no ticket, no plan, no context) before it has checked such a proof against the provider's keys
registered in the ledger.
"""

from __future__ import annotations

import re
from typing import Any

from common import crypto
from ledger.entries import canonical

IDENTITY_CONTEXT = b"pdx-node-identity/v1\n"
NONCE = re.compile(r"[0-9a-f]{32,128}", re.ASCII)


class IdentityError(ValueError):
    """An identity challenge or proof that does not hold."""


def _message(participant: str, nonce: str) -> bytes:
    return IDENTITY_CONTEXT + canonical({"nonce": nonce, "participant": participant})


def answer(key, participant: str, nonce: str) -> dict[str, Any]:
    """Return the node's signed answer to a nonce; raise ``IdentityError`` unless the nonce is hex of 16–64 bytes."""
    if not NONCE.fullmatch(nonce):
        raise IdentityError("nonce must be 32 to 128 lower-case hex digits")
    return {"participant": participant, "nonce": nonce, "signature": crypto.sign(key, _message(participant, nonce))}


def verify(public_key_b64: str, participant: str, nonce: str, proof: Any) -> None:
    """Raise ``IdentityError`` unless ``proof`` answers ``nonce`` for ``participant`` under ``public_key_b64``."""
    if not isinstance(proof, dict) or proof.get("participant") != participant or proof.get("nonce") != nonce:
        raise IdentityError(f"the answer is not an identity proof of {participant} for this nonce")
    signature = proof.get("signature")
    if not isinstance(signature, str):
        raise IdentityError("the identity proof carries no signature")
    try:
        crypto.verify(public_key_b64, signature, _message(participant, nonce))
    except crypto.BadKey as exc:
        raise IdentityError(f"the identity proof is not signed by this key: {exc}") from exc
