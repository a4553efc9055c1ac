"""The outcome of an offline audit (``ledger.audit``): the failure that stops it, or the report of what it established."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ledger.anchor.verify import ChainReport
from ledger.errors import LedgerError


class AuditFailure(LedgerError):
    """The export does not verify: the first bad entry (``seq``) or line, a short ``kind`` slug, and why."""

    def __init__(self, seq: int | None, kind: str, message: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        where = "export" if self.seq is None else f"entry {self.seq}"
        return f"{where} [{self.kind}]: {self.message}"


@dataclass(frozen=True)
class AuditReport:
    """What a verified export establishes."""

    origin: str
    entries: int
    size: int
    root: str
    entry_types: Mapping[str, int]
    participants: int
    keys: int
    revoked_keys: int
    assets: int
    domains: int
    checkpoints: int
    witnesses: tuple[str, ...]
    cosignatures_ignored: int
    since_size: int | None
    chain: ChainReport | None = None

    def render(self) -> str:
        """Return the report as readable text."""
        width = max((len(name) for name in self.entry_types), default=0)
        lines = [f"OK: ledger export of {self.origin} verified",
                 f"  entries       {self.entries}",
                 f"  tree size     {self.size}",
                 f"  root          {self.root}",
                 f"  checkpoints   {self.checkpoints} verified, the last covering every entry",
                 f"  witnesses     {', '.join(self.witnesses) or 'none required'}"
                 + (f" ({self.cosignatures_ignored} cosignature(s) by unknown witnesses ignored)"
                    if self.cosignatures_ignored else ""),
                 f"  participants  {self.participants}",
                 f"  keys          {self.keys} ({self.revoked_keys} revoked)",
                 f"  assets        {self.assets}",
                 f"  domains added {self.domains}"]
        if self.since_size is not None:
            lines.append(f"  since         the saved checkpoint of size {self.since_size} is a prefix of this log")
        lines.append("  entry types")
        lines.extend(f"    {name:<{width}}  {count}" for name, count in sorted(self.entry_types.items()))
        return "\n".join(lines) + "\n" + ("" if self.chain is None else self.chain.render())
