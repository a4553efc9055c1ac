"""The auditor's comparison of a verified ledger export with what the chain holds. Pure: the CLI reads the chain.

What it establishes: the anchor contract is the one the log recorded deploying, for this log's origin; every
anchored tree head the export reaches has the root the export's entries give (otherwise the exchange showed the
chain, or the regulator, a different history: a split view or a rewrite), and the hash of the log's checkpoint
of that size; every status the GrantRegistry holds was set by the ledger entry it names, with that grant's terms
and window; and every grant change the log made, up to the highest one the registry has, is on the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ledger import notes
from ledger.anchor import records
from ledger.errors import LedgerError


class ChainMismatch(LedgerError, ValueError):
    """The chain contradicts the export; ``kind`` names the check."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class AnchoredHead:
    """A CheckpointAnchor.Anchor."""

    index: int | None
    size: int
    root: bytes
    checkpoint_hash: bytes
    block_number: int
    flagged: bool


@dataclass(frozen=True)
class Flag:
    """A regulator's flag on an anchor."""

    index: int
    regulator: str
    reason: str
    block_number: int


@dataclass(frozen=True)
class MirroredStatus:
    """A GrantRegistry.GrantStatusChanged event."""

    grant_id: str
    status: str
    terms_hash: bytes
    valid_from: int
    valid_until: int
    ledger_seq: int
    block_number: int


@dataclass(frozen=True)
class ChainView:
    """Everything the auditor reads from the chain, at block ``block_number``."""

    chain_id: int
    anchor_address: str
    registry_address: str
    origin: str
    anchors: tuple[AnchoredHead, ...]
    flags: tuple[Flag, ...]
    statuses: tuple[MirroredStatus, ...]
    block_number: int


@dataclass
class LedgerFacts:
    """What the auditor's pass over the export gathered for this comparison."""

    origin: str
    size: int
    root_at: Callable[[int], bytes]
    checkpoint_notes: Mapping[int, str]  # size -> the note as the log signed it (no cosignatures)
    deployments: Sequence[tuple[int, dict[str, Any]]]  # (seq, body) of each chain.deployed entry
    marks: Mapping[str, list[tuple[int, str]]]  # grant id -> its marks (seq, status), in order
    terms: Mapping[str, dict[str, Any]]  # grant id -> its terms


@dataclass(frozen=True)
class ChainReport:
    """What the comparison established."""

    chain_id: int
    anchor_address: str
    registry_address: str
    block_number: int
    anchors_checked: int
    anchors_ahead: int
    newest_anchored_size: int
    unanchored_entries: int
    statuses_checked: int
    statuses_ahead: int
    grants_on_chain: int
    pending_marks: int
    flags: tuple[tuple[Flag, int | None], ...] = field(default=())  # each flag with its anchor's size

    def render(self) -> str:
        """Return the report as readable text."""
        lines = [f"  chain         {self.chain_id}, anchor {self.anchor_address}, registry {self.registry_address} "
                 f"(read at block {self.block_number})",
                 f"  anchors       {self.anchors_checked} agree with the export (newest covers "
                 f"{self.newest_anchored_size} entries; {self.unanchored_entries} entries not anchored yet"
                 + (f"; {self.anchors_ahead} anchor(s) beyond this export" if self.anchors_ahead else "") + ")",
                 f"  registry      {self.statuses_checked} status change(s) of {self.grants_on_chain} grant(s) each "
                 f"backed by its ledger entry; {self.pending_marks} change(s) not mirrored yet"
                 + (f"; {self.statuses_ahead} beyond this export" if self.statuses_ahead else "")]
        for flag, size in self.flags:
            lines.append(f"  FLAGGED       anchor {flag.index} (size {size}) by regulator {flag.regulator}: {flag.reason}")
        return "\n".join(lines) + "\n"


def compare(facts: LedgerFacts, view: ChainView) -> ChainReport:
    """Compare the export with the chain; raise ``ChainMismatch`` at the first contradiction."""
    deployed_seq = _deployment(facts, view)
    checked = ahead = newest = 0
    for head in view.anchors:
        if head.size > facts.size:
            ahead += 1
            continue
        root = facts.root_at(head.size)
        if root != head.root:
            raise ChainMismatch("chain-root", f"anchor {head.index} (block {head.block_number}) holds root "
                                              f"{head.root.hex()} for size {head.size}, the export's entries give "
                                              f"{root.hex()}: the log showed the chain another history (split view) "
                                              f"or was rewritten after anchoring")
        note = facts.checkpoint_notes.get(head.size)
        if note is not None and records.checkpoint_hash(note) != head.checkpoint_hash:
            raise ChainMismatch("chain-checkpoint", f"anchor {head.index} holds checkpoint hash "
                                                    f"{head.checkpoint_hash.hex()} for size {head.size}, the export's "
                                                    f"signed checkpoint of that size hashes to "
                                                    f"{records.checkpoint_hash(note).hex()}")
        checked += 1
        newest = max(newest, head.size)
    statuses, statuses_ahead, highest = _statuses(facts, view)
    expected = _expected_marks(facts, deployed_seq)
    missing = [(seq, grant_id, status) for seq, grant_id, status in expected
               if seq <= highest and (grant_id, seq) not in statuses]
    if missing:
        seq, grant_id, status = missing[0]
        raise ChainMismatch("chain-registry-missing", f"grant {grant_id} became {status} at entry {seq}, the registry "
                                                      f"has later changes (up to entry {highest}) but not this one "
                                                      f"({len(missing)} missing in all)")
    sizes = {head.index: head.size for head in view.anchors}
    return ChainReport(
        chain_id=view.chain_id, anchor_address=view.anchor_address, registry_address=view.registry_address,
        block_number=view.block_number, anchors_checked=checked, anchors_ahead=ahead, newest_anchored_size=newest,
        unanchored_entries=facts.size - newest, statuses_checked=len(statuses), statuses_ahead=statuses_ahead,
        grants_on_chain=len({grant_id for grant_id, _ in statuses}),
        pending_marks=sum(seq > highest for seq, _, _ in expected),
        flags=tuple((flag, sizes.get(flag.index)) for flag in view.flags))


def _deployment(facts: LedgerFacts, view: ChainView) -> int:
    """Return the seq of the log's entry recording this deployment; raise if the log never recorded it."""
    if view.origin != facts.origin:
        raise ChainMismatch("chain-origin", f"the anchor contract anchors the log {view.origin!r}, this export is of "
                                            f"{facts.origin!r}")
    for seq, body in facts.deployments:
        if body["anchor"].lower() == view.anchor_address.lower() and body["chain_id"] == view.chain_id:
            if body["registry"].lower() != view.registry_address.lower():
                raise ChainMismatch("chain-address", f"the log recorded registry {body['registry']} with anchor "
                                                     f"{body['anchor']}, the anchor names {view.registry_address}")
            return seq
    recorded = ", ".join(f"{b['anchor']} on chain {b['chain_id']}" for _, b in facts.deployments) or "none"
    raise ChainMismatch("chain-address", f"the log never recorded deploying anchor {view.anchor_address} on chain "
                                         f"{view.chain_id} (it recorded: {recorded})")


def _statuses(facts: LedgerFacts, view: ChainView) -> tuple[set[tuple[str, int]], int, int]:
    """Check every registry change against the export's marks; return those checked, those ahead, the highest seq."""
    marks_at = {seq: (grant_id, status) for grant_id, marks in facts.marks.items() for seq, status in marks}
    checked: set[tuple[str, int]] = set()
    ahead = highest = 0
    for mirrored in view.statuses:
        if mirrored.ledger_seq >= facts.size:
            ahead += 1
            continue
        found = marks_at.get(mirrored.ledger_seq)
        if found != (mirrored.grant_id, mirrored.status):
            what = "no grant change" if found is None else f"grant {found[0]} becoming {found[1]}"
            raise ChainMismatch("chain-registry", f"the registry says grant {mirrored.grant_id} became "
                                                  f"{mirrored.status} at entry {mirrored.ledger_seq} (block "
                                                  f"{mirrored.block_number}); that entry records {what}")
        terms = facts.terms[mirrored.grant_id]
        expected = (records.terms_hash(terms), *records.window(terms))
        if (mirrored.terms_hash, mirrored.valid_from, mirrored.valid_until) != expected:
            raise ChainMismatch("chain-registry", f"the registry holds terms hash {mirrored.terms_hash.hex()} and "
                                                  f"window {mirrored.valid_from}–{mirrored.valid_until} for grant "
                                                  f"{mirrored.grant_id}; its terms in the ledger give "
                                                  f"{expected[0].hex()} and {expected[1]}–{expected[2]}")
        checked.add((mirrored.grant_id, mirrored.ledger_seq))
        highest = max(highest, mirrored.ledger_seq)
    return checked, ahead, highest


def _expected_marks(facts: LedgerFacts, deployed_seq: int) -> list[tuple[int, str, str]]:
    """Return the marks the exchange queues: each grant's last mark before the deployment, and all marks after."""
    expected = []
    for grant_id, marks in facts.marks.items():
        before = [mark for mark in marks if mark[0] < deployed_seq]
        kept = before[-1:] + [mark for mark in marks if mark[0] > deployed_seq]
        expected.extend((seq, grant_id, status) for seq, status in kept)
    return sorted(expected)


def log_signed_note(note: str, origin: str) -> str:
    """Return a checkpoint note with only the log's own signature line (what the anchor's checkpoint hash covers)."""
    checkpoint, signatures = notes.parse_note(note)
    return notes.note(checkpoint, [s for s in signatures if s.name == origin])
