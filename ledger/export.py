"""The ledger export a regulator verifies offline: JSON lines, one object per line.

    {"pdx_ledger_export": 1, "origin": …, "log_public_key": <base64>, "size": n}
    {"seq": 0, "entry": "<the entry's canonical JSON text>", "operator_sig": "<base64>"}   … in order
    {"checkpoint": "<signed note with cosignature lines>"}           … every checkpoint up to size n, ascending
    {"end": {"entries": n, "checkpoints": k}}

Entries are exported as the exact text that was hashed, so nothing is re-serialised on the way.
"""

from __future__ import annotations

import json
from typing import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import checkpoints, log
from ledger.models import LedgerCheckpoint

FORMAT_VERSION = 1
BATCH = 1000


def lines(session: Session, origin: str, log_public_key: str, size: int) -> Iterator[str]:
    """Yield the export of the first ``size`` entries and the checkpoints up to that size, as text lines."""
    yield _line({"pdx_ledger_export": FORMAT_VERSION, "origin": origin, "log_public_key": log_public_key,
                 "size": size})
    for start in range(0, size, BATCH):
        for row in log.entry_rows(session, start, min(start + BATCH, size)):
            yield _line({"seq": row.seq, "entry": row.data.decode("utf-8"), "operator_sig": row.operator_sig})
    count = 0
    for row in session.scalars(select(LedgerCheckpoint).where(LedgerCheckpoint.size <= size)
                               .order_by(LedgerCheckpoint.size)):
        yield _line({"checkpoint": checkpoints.with_cosignatures(session, row).note})
        count += 1
    yield _line({"end": {"entries": size, "checkpoints": count}})


def _line(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"

