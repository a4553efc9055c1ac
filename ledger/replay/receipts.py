"""Replay rule for node receipts (decision 24): the usage a `job.completed` or `job.round` entry records is what
the nodes signed. Pure.

Each usage item carries a node's receipt whole; the auditor holds it to: naming the entry's job and the item's
provider, that provider owning one of the job's assets (once per job or round), reporting the rows the item
charges, and being signed by a key the log registered to that provider and had not revoked at that entry. A log
whose operator altered a receipt (fewer rows billed, another job, a provider that never answered) and re-signed
the entry with its own log key fails here.
"""

from __future__ import annotations

from typing import Any, Iterable

from common import crypto
from ledger.receipts import signed_by_any
from ledger.replay.base import ReplayError, State


def _provider_keys(state: State, provider: str) -> list[str]:
    """Return the provider's registered, unrevoked public keys as the log stands."""
    return [crypto.public_key_text(key.public_key) for key in state.keys.values()
            if key.owner == provider and key.revoked is None]


def check_usage(state: State, entry: dict, job_id: str, providers: Iterable[str]) -> None:
    """Raise ``ReplayError`` unless every usage item of ``entry`` is a receipt its provider signed for this job."""
    owners, seen = frozenset(providers), set()
    usage: list[dict[str, Any]] = entry["body"]["usage"]
    if not isinstance(usage, list):
        raise ReplayError("receipt", f"{entry['type']} of job {job_id} records usage {usage!r}, not a list")
    for item in usage:
        provider, receipt, signature = item["provider"], item["receipt"], item["signature"]
        if not isinstance(receipt, dict) or (receipt.get("job"), receipt.get("provider")) != (job_id, provider):
            found = (receipt.get("job"), receipt.get("provider")) if isinstance(receipt, dict) else receipt
            raise ReplayError("receipt", f"{entry['type']} records, as provider {provider}'s receipt for job "
                                         f"{job_id}, a receipt for (job, provider) {found!r}")
        if provider not in owners:
            raise ReplayError("receipt", f"{entry['type']} records a receipt of {provider}, which holds no asset of "
                                         f"job {job_id} (its providers: {', '.join(sorted(owners))})")
        if provider in seen:
            raise ReplayError("receipt", f"{entry['type']} records two receipts of {provider} for job {job_id}")
        seen.add(provider)
        if receipt.get("rows_used") != item["rows_used"]:
            raise ReplayError("receipt", f"{entry['type']} charges {item['rows_used']!r} rows to {provider}; its "
                                         f"receipt for job {job_id} reports {receipt.get('rows_used')!r}")
        if not isinstance(signature, str) or not signed_by_any(_provider_keys(state, provider), receipt, signature):
            raise ReplayError("receipt-signature", f"{provider}'s receipt for job {job_id} is not signed by any key "
                                                   f"the log had registered to {provider} and not revoked: it was "
                                                   f"altered or forged")
