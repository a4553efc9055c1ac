"""Node receipts (pure): what a provider node signs about each answer, and the exchange's check of it.

A receipt names the job, the provider, the operation, the rows the node used and the SHA-256 of the ciphertext it
returned; the node signs ``"pdx-receipt/v1\n" ‖ RFC 8785 JSON`` of it with the provider's registered key. The
exchange checks it before it adds a node's ciphertext, records it whole in `job.completed` or `job.round`, and the
offline auditor checks it again against the keys the log registered (``ledger.replay``).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Iterable, Mapping

from common import crypto
from ledger.entries import canonical

RECEIPT_CONTEXT = b"pdx-receipt/v1\n"


class ReceiptError(Exception):
    """A node's answer carries no valid receipt for this job: what was expected and what was found."""


def sign_receipt(key, receipt: Mapping[str, Any]) -> str:
    """Sign a receipt the way every node does."""
    return crypto.sign(key, RECEIPT_CONTEXT + canonical(dict(receipt)))


def verify_receipt(public_key_b64: str, receipt: Mapping[str, Any], signature: str) -> None:
    """Verify a node's receipt, raising ``crypto.BadKey`` if it does not hold."""
    crypto.verify(public_key_b64, signature, RECEIPT_CONTEXT + canonical(dict(receipt)))


def signed_by_any(public_keys: Iterable[str], receipt: Mapping[str, Any], signature: str) -> bool:
    """Whether one of ``public_keys`` signed the receipt."""
    for public_key in public_keys:
        try:
            verify_receipt(public_key, receipt, signature)
            return True
        except crypto.BadKey:
            continue
    return False


def checked_result(answer: Mapping[str, Any], job_id: str, provider_id: str, public_keys: Iterable[str]) -> bytes:
    """Return a node's result once its receipt is for this job and provider, matches the result and is signed by
    one of ``public_keys`` (the provider's registered, unrevoked keys); raise ``ReceiptError`` otherwise."""
    try:
        result = base64.b64decode(answer["result"], validate=True)
        receipt, signature = answer["receipt"], answer["signature"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ReceiptError(f"provider {provider_id} answered without a result and a signed receipt") from exc
    if not isinstance(receipt, Mapping) or receipt.get("job") != job_id or receipt.get("provider") != provider_id:
        raise ReceiptError(f"provider {provider_id}'s receipt is for another job or provider")
    if receipt.get("result_sha256") != hashlib.sha256(result).hexdigest():
        raise ReceiptError(f"provider {provider_id}'s receipt does not match its result")
    if not signed_by_any(public_keys, receipt, signature):
        raise ReceiptError(f"provider {provider_id}'s receipt is not signed by any of its registered keys")
    return result
