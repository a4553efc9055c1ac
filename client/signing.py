"""Request signatures: every state-changing call carries the participant's Ed25519 signature over
(actor, key, method, path, body, time, nonce), which the exchange keeps in the ledger entry it writes."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.entries import sign_request

SIGNED_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def signature_headers(key: Ed25519PrivateKey, *, actor: str, method: str, path: str, body: Any) -> dict[str, str]:
    """Return the PDX-* headers that sign one request (``path`` without the query string)."""
    signed = sign_request(key, actor=actor, method=method, path=path.split("?", 1)[0], body=body)
    return {"PDX-Key": signed.key, "PDX-Signed-At": signed.statement["signed_at"], "PDX-Nonce": signed.nonce,
            "PDX-Signature": signed.signature}
