"""The one root of every error the ledger package raises, and the whole tree (pure: imports nothing).

    LedgerError                                   the ledger cannot do or verify what was asked
     ├── ReplayedRequest        (log)             a signed request whose nonce the log already recorded
     ├── InconsistentLog        (checkpoints)     the stored tree disagrees with a checkpoint the log signed
     ├── CosignatureError       (checkpoints)     a witness cosignature that does not verify or does not belong
     ├── TamperedLedger         (check)           the stored ledger disagrees with itself or a signed checkpoint
     ├── AuditFailure           (audit_report)    an export does not verify offline: the first bad entry and why
     ├── MerkleError            (merkle)          ValueError too
     │    ├── TreeRangeError                      an index, size or range outside what the tree can serve
     │    └── ProofError                          a proof, leaf hash or root hash failed verification
     ├── EntryError             (entries)         ValueError too: an entry or request statement malformed or unsigned
     ├── NoteError              (notes)           ValueError too: a note, checkpoint or cosignature malformed
     ├── ReplayError            (replay.base)     ValueError too: an entry breaks a rule of the exchange
     ├── ChainMismatch          (anchor.verify)   ValueError too: the chain contradicts the export
     └── ChainError             (anchor)          anchoring on the chain failed
          ├── ChainUnavailable                    the JSON-RPC node did not answer, or a transaction was not mined
          ├── ChainRefused                        a contract reverted (named custom error)
          └── ChainConflict                       the chain holds a head or status the log contradicts

The errors that also derive from ``ValueError`` are the ones raised while parsing or verifying bytes someone
handed in, where callers outside the package catch them as bad values. Each class lives beside the code that
raises it; this module only holds the root, so the pure modules (merkle, entries, notes, replay, audit) import
it without loading the database layer.
"""

from __future__ import annotations


class LedgerError(Exception):
    """The ledger cannot append, read or verify what was asked."""
