"""Node receipts as signed statements (pure): the bytes a provider node signs about each answer, and their check.

A receipt names the job, the provider, the assets, the operation, the rows the node used and the SHA-256 of the
ciphertext it returned; the node signs ``"pdx-receipt/v1\n" ‖ RFC 8785 JSON`` of it with the provider's registered
key. It lives in the ledger package because the log records receipts whole (`job.completed`, `job.round`) and the
offline replay checks them (``ledger.replay.receipts``); ``protocol.receipts`` adds the exchange's check of a live
answer.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from common import crypto
from ledger.entries import canonical

RECEIPT_CONTEXT = b"pdx-receipt/v1\n"


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
