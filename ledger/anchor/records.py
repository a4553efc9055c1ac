"""What the chain stores, computed the same way by the exchange and by the offline auditor. Pure.

A grant *mark* is the ledger entry that moves a grant into a mirrored status (active, suspended, revoked,
terminated, expired) different from its last mark; a grant is mirrored only once it has been active, so requests
that never became grants stay off the chain. The registry keeps each mark's terms hash and validity window.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import rfc8785

from common.vocab import GrantStatus

ACTIVE, SUSPENDED, REVOKED, TERMINATED, EXPIRED = (GrantStatus.ACTIVE, GrantStatus.SUSPENDED, GrantStatus.REVOKED,
                                                  GrantStatus.TERMINATED, GrantStatus.EXPIRED)
# GrantRegistry.Status: None = 0, then these in order
STATUS_CODES: dict[str, int] = {ACTIVE: 1, SUSPENDED: 2, REVOKED: 3, TERMINATED: 4, EXPIRED: 5}
STATUS_NAMES: dict[int, str] = {code: name for name, code in STATUS_CODES.items()}
MIRRORED = frozenset(STATUS_CODES)


def is_mark(previous: str | None, status: str) -> bool:
    """Return whether an entry leaving a grant in ``status`` is a mark, given the grant's last mark ``previous``."""
    if status not in MIRRORED or status == previous:
        return False
    return previous is not None or status == ACTIVE


def terms_hash(terms: dict[str, Any]) -> bytes:
    """Return SHA-256 of the RFC 8785 canonical JSON of a grant's terms."""
    return hashlib.sha256(rfc8785.dumps(terms)).digest()


def window(terms: dict[str, Any]) -> tuple[int, int]:
    """Return a grant's validity window as unix seconds (valid_from, valid_until)."""
    return (int(datetime.fromisoformat(terms["valid_from"]).timestamp()),
            int(datetime.fromisoformat(terms["valid_until"]).timestamp()))


def checkpoint_hash(log_signed_note: str) -> bytes:
    """Return SHA-256 of a checkpoint note as the log signed it (its body and the log's own signature line)."""
    return hashlib.sha256(log_signed_note.encode("utf-8")).digest()
