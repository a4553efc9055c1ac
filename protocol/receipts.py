"""Node receipts (pure): the exchange's check of a node's answer against its signed receipt.

What a receipt says and how it is signed is in ``ledger.receipts`` (re-exported here): the exchange checks a receipt
before it adds a node's ciphertext, records it whole in `job.completed` or `job.round`, and the offline auditor
checks it again against the keys the log registered (``ledger.replay.receipts``).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Iterable, Mapping

from ledger.receipts import RECEIPT_CONTEXT, sign_receipt, signed_by_any, verify_receipt

__all__ = ["RECEIPT_CONTEXT", "ReceiptError", "checked_result", "sign_receipt", "signed_by_any", "verify_receipt"]


class ReceiptError(Exception):
    """A node's answer carries no valid receipt for this job: what was expected and what was found."""


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
