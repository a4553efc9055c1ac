"""Anchoring the ledger on an EVM permissioned chain (许可链锚定): checkpoints and grant statuses.

    records   pure: which grant changes are mirrored, the hashes the chain stores
    models    the persisted queue (anchors and mirrors waiting for the chain) and the sender's state
    outbox    enqueue in the caller's transaction; sign and queue checkpoints; the backlog for `pdx chain status`
    chain     web3.py: deploy, read and write the CheckpointAnchor and GrantRegistry contracts
    worker    the background sender: one leader per database, batches per interval, retries with backoff
    verify    pure: the auditor's comparison of a verified export with what the chain holds

Errors: ``ChainError`` (root, a ``LedgerError``) ─┬─ ``ChainUnavailable``  the node did not answer or timed out
                                                  ├─ ``ChainRefused``      a contract reverted (named custom error)
                                                  └─ ``ChainConflict``     the chain holds a head the log contradicts
"""

from __future__ import annotations

from ledger.errors import LedgerError


class ChainError(LedgerError):
    """Anchoring on the chain failed."""


class ChainUnavailable(ChainError):
    """The chain's JSON-RPC node did not answer, or a transaction was not mined in time."""


class ChainRefused(ChainError):
    """A contract call reverted; the message names the contract's custom error and its arguments."""


class ChainConflict(ChainError):
    """The chain holds a tree head or status the ledger contradicts: a split view, or someone else's writes."""
