"""Offline audit of a ledger export (the format is in ``ledger.export``): no database, no server, one pass.

``verify_export`` reads the export as a stream and checks, in order:

1. the header names the trusted log key;
2. entries are numbered from 0 without gaps, canonical, signed by the operator, never earlier than the one
   before, and entry 0 is the genesis naming this log;
3. each entry carries the request its actor signed, with a key an earlier entry registered to that actor
   (or this very key registration, self-certified) and no earlier entry revoked, within the signature window,
   with a nonce never used before, and for the API route that makes an entry of that type; only the
   exchange's own entries (genesis, bootstrapping the first operator) carry no request;
4. each entry is allowed by the exchange's rules at its position (``ledger.replay``);
5. the Merkle tree (RFC 9162) of the exact entry bytes gives the root of every checkpoint, each signed by the
   log; the last covers every entry and carries the cosignature of every trusted witness;
6. the end line counts what came before (else the export was truncated);
7. a checkpoint saved earlier (``since``) is still a prefix of this log (else the log forked);
8. with a chain view, the anchors and the grant registry on the chain agree with the export (``ledger.anchor.verify``).

    Exception
     └── AuditFailure      the first entry or line that does not verify: ``seq`` (or None), ``kind``, and why

What a verified export establishes, and the failure, are in ``ledger.audit_report`` (re-exported here).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common import crypto
from ledger import entries, merkle, notes, replay
from ledger.anchor import records
from ledger.anchor.verify import ChainMismatch, ChainView, LedgerFacts, compare
from ledger.audit_report import AuditFailure, AuditReport
from ledger.entries import SYSTEM_ACTOR, EntryError, SignedRequest
from ledger.replay import ReplayError

__all__ = ["AuditFailure", "AuditReport", "verify_export"]

FORMAT_VERSION = 1
GENESIS = "log.genesis"
KEY_REGISTERED = "key.registered"
GRANT_PREFIX = "grant."
CLOCK_SKEW_S = 5  # the exchange checks the window against its clock, then stamps the entry a moment later
NO_WITNESSES: Mapping[str, Ed25519PublicKey] = MappingProxyType({})
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", re.ASCII)  # entries.format_time; sorts as text
_ENTRY_SHAPE = (("type", str), ("time", str), ("actor", str), ("refs", dict), ("body", dict), ("commit", dict),
                ("sig", dict))
_REQUEST_FIELDS = ("actor", "key", "method", "path", "body_sha256", "signed_at", "nonce")  # entries.request_statement


def verify_export(lines: Iterable[str], operator_key: Ed25519PublicKey,
                  witness_keys: Mapping[str, Ed25519PublicKey] = NO_WITNESSES, since: str | None = None,
                  signature_window_s: int = 300, chain: ChainView | None = None) -> AuditReport:
    """Verify a ledger export line by line and return what it establishes; raise ``AuditFailure`` at the first fault.

    With ``chain`` (read by ``ledger.anchor.chain.Chain.view``), also compare the export with the anchors and the
    grant registry on the chain.
    """
    audit = _Audit(operator_key, witness_keys, signature_window_s)
    for number, line in enumerate(lines, 1):
        audit.feed(number, line)
    report = audit.finish(since)
    if chain is None:
        return report
    try:
        return replace(report, chain=compare(audit.chain_facts(), chain))
    except ChainMismatch as exc:
        raise AuditFailure(None, exc.kind, str(exc)) from exc


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _moment(text: str) -> datetime | None:
    """Return the instant an entry timestamp names, or None unless it is exactly in ``entries.format_time`` form."""
    if not _TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # e.g. month 13: right shape, no such day
        return None


def _verify_request(public_key: Ed25519PublicKey, statement: dict, signature: str) -> None:
    """Verify an actor's signature over its request statement, raising ``EntryError``.

    A statement is ASCII keys with string values, whose RFC 8785 form is sorted compact ``json.dumps`` (four
    times faster than the general canonicaliser); any other statement is checked by ``entries.verify_request``.
    """
    try:
        fast = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        public_key.verify(crypto.b64decode(signature), entries.REQUEST_CONTEXT + fast)
    except (InvalidSignature, crypto.BadKey, UnicodeEncodeError):
        entries.verify_request(public_key, SignedRequest(statement, signature))


class _Audit:
    """The state of one pass over an export."""

    def __init__(self, operator_key: Ed25519PublicKey, witness_keys: Mapping[str, Ed25519PublicKey],
                 signature_window_s: int) -> None:
        self.operator_key = operator_key
        self.witness_keys = dict(witness_keys)
        self.window = timedelta(seconds=signature_window_s + CLOCK_SKEW_S)
        self.header: dict[str, Any] | None = None
        self.ended = False
        self.last_line = 0
        self.count = 0
        self.last_time = ""
        self.state = replay.State()
        self.tree = merkle.MemoryTree()
        self.nonces: dict[tuple[str, str], int] = {}
        self.types: dict[str, int] = {}
        self.checkpoints: list[tuple[notes.Checkpoint, list[notes.Signature]]] = []
        self.cosignatures_ignored = 0
        self.marks: dict[str, list[tuple[int, str]]] = {}  # grant id -> (seq, status) of its marks (ledger.anchor)

    # --- lines -----------------------------------------------------------------------------------------

    def feed(self, number: int, line: str) -> None:
        """Check one line of the export."""
        self.last_line = number
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise AuditFailure(self._seq(), "malformed-line", f"line {number} is not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise AuditFailure(self._seq(), "malformed-line", f"line {number} is not a JSON object")
        if self.header is None:
            self._header(number, record)
        elif self.ended:
            raise AuditFailure(None, "trailing-data", f"line {number} follows the end line")
        elif "seq" in record:
            if self.checkpoints:
                raise AuditFailure(self._seq(), "line-order", f"line {number} is an entry after the checkpoints")
            self._entry(number, record)
        elif "checkpoint" in record:
            self._checkpoint(number, record)
        elif "end" in record:
            self._end(number, record)
        else:
            raise AuditFailure(self._seq(), "malformed-line", f"line {number} is neither an entry, a checkpoint "
                                                              f"nor the end line: keys {sorted(record)}")

    def _seq(self) -> int | None:
        """Return the seq of the entry expected next, while entries are still being read."""
        return None if self.header is None or self.checkpoints or self.ended else self.count

    def _header(self, number: int, record: dict) -> None:
        if record.get("pdx_ledger_export") != FORMAT_VERSION or not isinstance(record.get("origin"), str) \
                or not isinstance(record.get("log_public_key"), str) or type(record.get("size")) is not int:
            raise AuditFailure(None, "header", f"line {number}: expected the header "
                                               f'{{"pdx_ledger_export": {FORMAT_VERSION}, "origin", '
                                               f'"log_public_key", "size"}}, found keys {sorted(record)}')
        trusted = crypto.b64encode(_raw(self.operator_key))
        if record["log_public_key"] != trusted:
            raise AuditFailure(None, "wrong-log", f"the export was made by the log with key "
                                                  f"{record['log_public_key']}, not by the trusted log key {trusted}")
        self.header = record

    # --- entries ---------------------------------------------------------------------------------------

    def _entry(self, number: int, record: dict) -> None:
        seq = self.count
        found, text, operator_sig = record.get("seq"), record.get("entry"), record.get("operator_sig")
        if type(found) is not int or found != seq:
            raise AuditFailure(seq, "sequence", f"line {number}: expected entry {seq}, found entry {found!r}: "
                                                f"entries were dropped, inserted or reordered")
        if not isinstance(text, str) or not isinstance(operator_sig, str):
            raise AuditFailure(seq, "malformed-line", f"line {number}: entry and operator_sig must be strings")
        try:
            data = text.encode("utf-8")
            entry = entries.parse(data)
        except (UnicodeEncodeError, EntryError) as exc:
            raise AuditFailure(seq, "malformed-entry", f"line {number}: {exc}") from exc
        if type(entry["seq"]) is not int or entry["seq"] != seq:
            raise AuditFailure(seq, "sequence", f"line {number}: the entry bytes say seq {entry['seq']!r}, the "
                                                f"line says {seq}")
        try:
            entries.verify_operator(data, operator_sig, self.operator_key)
        except EntryError as exc:
            raise AuditFailure(seq, "operator-signature", f"line {number}: the operator's signature does not "
                                                          f"verify with the trusted log key: the entry was altered "
                                                          f"or not written by this log") from exc
        for name, kind in _ENTRY_SHAPE:
            if not isinstance(entry[name], kind):
                raise AuditFailure(seq, "malformed-entry", f"field {name} is not a {kind.__name__}")
        moment = _moment(entry["time"])
        if moment is None:
            raise AuditFailure(seq, "time", f"time {entry['time']!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        if entry["time"] < self.last_time:
            raise AuditFailure(seq, "time-order", f"time {entry['time']} is earlier than {self.last_time}, the "
                                                  f"time of entry {seq - 1}")
        if seq == 0:
            self._genesis(entry)
        if entry["type"] not in replay.RULES:
            raise AuditFailure(seq, "unknown-type", f"entry type {entry['type']!r} is not one the exchange writes")
        self._request(seq, entry, moment)
        try:
            replay.apply(self.state, entry)
        except ReplayError as exc:
            raise AuditFailure(seq, exc.kind, str(exc)) from exc
        if entry["type"].startswith(GRANT_PREFIX):
            self._mark(seq, entry)
        self.tree.append(merkle.leaf_hash(data))
        self.types[entry["type"]] = self.types.get(entry["type"], 0) + 1
        self.last_time = entry["time"]
        self.count = seq + 1

    def _mark(self, seq: int, entry: dict) -> None:
        """Remember a grant entry that changes the grant's mirrored status (what the chain's registry records)."""
        grant_id, status = entry["refs"]["grant"][0], entry["body"].get("status")
        marks = self.marks.setdefault(grant_id, [])
        if records.is_mark(marks[-1][1] if marks else None, status):
            marks.append((seq, status))

    def chain_facts(self) -> LedgerFacts:
        """Return what the comparison with the chain needs from this pass (after ``finish``)."""
        origin = self.header["origin"]
        return LedgerFacts(
            origin=origin, size=self.count, root_at=self.tree.root,
            checkpoint_notes={cp.size: notes.note(cp, [s for s in sigs if s.name == origin])
                              for cp, sigs in self.checkpoints},
            deployments=list(self.state.chain_deployments),
            marks={grant_id: marks for grant_id, marks in self.marks.items() if marks},
            terms={grant_id: grant.terms for grant_id, grant in self.state.grants.items()})

    def _genesis(self, entry: dict) -> None:
        header, body = self.header, entry["body"]
        expected = (GENESIS, SYSTEM_ACTOR, None, header["origin"], header["log_public_key"], {}, {})
        found = (entry["type"], entry["actor"], entry["request"], body.get("origin"), body.get("log_public_key"),
                 entry["refs"], entry["commit"])
        if found != expected:
            raise AuditFailure(0, "genesis", f"expected entry 0 to be {GENESIS} by {SYSTEM_ACTOR}, unsigned, for "
                                             f"origin {header['origin']} and key {header['log_public_key']}; found "
                                             f"{found[0]} by {found[1]} for origin {found[3]!r} and key {found[4]!r}")

    def _request(self, seq: int, entry: dict, moment: datetime) -> None:
        """Check the actor's signed request an entry carries, or that the exchange may write it unsigned."""
        request, actor, signature = entry["request"], entry["actor"], entry["sig"].get("actor")
        if request is None:
            if actor != SYSTEM_ACTOR or entry["type"] not in replay.SYSTEM_TYPES or entry["sig"] != {"actor": None}:
                raise AuditFailure(seq, "unsigned-entry", f"a {entry['type']} entry by {actor} carries no signed "
                                                          f"request; only the exchange's own "
                                                          f"{', '.join(sorted(replay.SYSTEM_TYPES))} entries may")
            return
        if not isinstance(request, dict) or not isinstance(signature, str) or len(entry["sig"]) != 1 \
                or not all(isinstance(request.get(name), str) for name in _REQUEST_FIELDS):
            raise AuditFailure(seq, "malformed-entry", "the request or its signature is malformed")
        if actor == SYSTEM_ACTOR:
            raise AuditFailure(seq, "request-actor", f"an entry by {SYSTEM_ACTOR} carries a request; the exchange "
                                                     f"signs no requests")
        if request["actor"] != actor:
            raise AuditFailure(seq, "request-actor", f"the request was signed by {request['actor']}, the entry "
                                                     f"names {actor} as its actor")
        public_key = self._signing_key(seq, entry, request["key"])
        try:
            _verify_request(public_key, request, signature)
        except EntryError as exc:
            raise AuditFailure(seq, "actor-signature", f"{exc}: the request was altered") from exc
        signed_at = _moment(request["signed_at"])
        if signed_at is None or abs(moment - signed_at) > self.window:
            limit = int(self.window.total_seconds())
            raise AuditFailure(seq, "signature-window", f"the request was signed at {request['signed_at']}, more "
                                                        f"than {limit} s from the entry's time {entry['time']}")
        first = self.nonces.setdefault((actor, request["nonce"]), seq)
        if first != seq:
            raise AuditFailure(seq, "replayed-request", f"request nonce {request['nonce']} of {actor} was already "
                                                        f"used by entry {first}: a replayed request")
        try:
            replay.check_route(entry, request)
        except ReplayError as exc:
            raise AuditFailure(seq, exc.kind, str(exc)) from exc

    def _signing_key(self, seq: int, entry: dict, key_id: str) -> Ed25519PublicKey:
        """Return the public key a request names, if the log shows it registered to the actor and unrevoked."""
        if entry["type"] == KEY_REGISTERED:  # signed by the key it registers: proof of possession
            return self._self_certified(seq, entry, key_id)
        actor, key = entry["actor"], self.state.keys.get(key_id)
        if key is None:
            raise AuditFailure(seq, "unknown-key", f"the request of {actor} is signed with key {key_id}, which no "
                                                   f"earlier entry registers")
        if key.owner != actor:
            raise AuditFailure(seq, "unknown-key", f"the request of {actor} is signed with key {key_id}, which is "
                                                   f"registered to {key.owner}")
        if key.revoked is not None:
            raise AuditFailure(seq, "revoked-key", f"the request of {actor} is signed with key {key_id}, which "
                                                   f"entry {key.revoked} revoked")
        return key.public_key

    def _self_certified(self, seq: int, entry: dict, key_id: str) -> Ed25519PublicKey:
        public_text = entry["body"].get("public_key")
        try:
            if entry["refs"].get("key") == [key_id] and crypto.key_fingerprint(public_text) == key_id:
                return crypto.load_public_key(public_text)
        except (crypto.BadKey, AttributeError, ValueError):
            pass
        raise AuditFailure(seq, "request-key", f"the key registration is signed with key {key_id}, which is not "
                                               f"the key it registers (references {entry['refs'].get('key')!r})")

    # --- checkpoints and the end -----------------------------------------------------------------------

    def _checkpoint(self, number: int, record: dict) -> None:
        text, origin = record["checkpoint"], self.header["origin"]
        try:
            if not isinstance(text, str):
                raise notes.NoteError(f"expected the note text, found {type(text).__name__}")
            checkpoint, signatures = notes.parse_note(text)
        except ValueError as exc:  # NoteError, or int() of a digit str.isdigit lets through
            raise AuditFailure(None, "checkpoint", f"line {number}: not a checkpoint note: {exc}") from exc
        previous = self.checkpoints[-1][0].size if self.checkpoints else -1
        if checkpoint.origin != origin:
            raise AuditFailure(None, "checkpoint-origin", f"line {number}: the checkpoint names origin "
                                                          f"{checkpoint.origin}, expected {origin}")
        if checkpoint.size <= previous:
            raise AuditFailure(None, "checkpoint-order", f"line {number}: checkpoint size {checkpoint.size} does "
                                                         f"not grow past the previous checkpoint's {previous}")
        self._expect_root(checkpoint, f"line {number}: ", "checkpoint-size", "checkpoint-root")
        try:
            notes.verify_log_signature(checkpoint, signatures, origin, self.operator_key)
        except ValueError as exc:  # NoteError, or an origin that is not encodable text
            raise AuditFailure(None, "checkpoint-signature", f"line {number}: {exc}") from exc
        for signature in signatures:
            if signature.name in self.witness_keys:
                self._cosignature(checkpoint, signature)
            elif signature.name != origin:
                self.cosignatures_ignored += 1
        self.checkpoints.append((checkpoint, signatures))

    def _expect_root(self, checkpoint: notes.Checkpoint, where: str, size_kind: str, root_kind: str,
                     consequence: str = "") -> None:
        """Raise unless the entries read so far give the checkpoint's root at its size."""
        if checkpoint.size > self.count:
            raise AuditFailure(None, size_kind, f"{where}the checkpoint covers {checkpoint.size} entries, the "
                                                f"export holds {self.count}: entries were dropped{consequence}")
        root = self.tree.root(checkpoint.size)
        if root != checkpoint.root:
            raise AuditFailure(None, root_kind, f"{where}the checkpoint of size {checkpoint.size} has root "
                                                f"{checkpoint.root.hex()}, the entries give {root.hex()}: entries "
                                                f"before {checkpoint.size} were altered, dropped, inserted or "
                                                f"reordered{consequence}")

    def _cosignature(self, checkpoint: notes.Checkpoint, signature: notes.Signature) -> None:
        try:
            notes.verify_cosignature(checkpoint, signature, signature.name, self.witness_keys[signature.name])
        except ValueError as exc:
            raise AuditFailure(None, "witness", f"checkpoint of size {checkpoint.size}: {exc}") from exc

    def _end(self, number: int, record: dict) -> None:
        counts = record["end"]
        expected = {"entries": self.count, "checkpoints": len(self.checkpoints)}
        if counts != expected or self.header["size"] != self.count:
            raise AuditFailure(None, "end-mismatch", f"line {number}: the header and end line count "
                                                     f"{self.header['size']} entries and {counts!r}, the export holds "
                                                     f"{expected}: lines were dropped or added")
        self.ended = True

    def finish(self, since: str | None) -> AuditReport:
        """Check what only the whole export shows, and return the report."""
        if self.header is None:
            raise AuditFailure(None, "header", "the export is empty")
        if not self.ended:
            raise AuditFailure(self._seq(), "truncated", f"no end line after line {self.last_line}: the export "
                                                         f"was truncated")
        last = self.checkpoints[-1][0] if self.checkpoints else None
        if last is None or last.size != self.count:
            raise AuditFailure(None, "checkpoint-coverage", f"the last checkpoint covers "
                                                            f"{0 if last is None else last.size} entries, the export "
                                                            f"holds {self.count}")
        cosigners = {signature.name for signature in self.checkpoints[-1][1]}  # verified as they were read
        for name in sorted(self.witness_keys):
            if name not in cosigners:
                raise AuditFailure(None, "witness", f"the last checkpoint (size {last.size}) carries no "
                                                    f"cosignature by witness {name}")
        since_size = None if since is None else self._since(since)
        state = self.state
        return AuditReport(
            origin=self.header["origin"], entries=self.count, size=last.size, root=self.tree.root().hex(),
            entry_types=MappingProxyType(dict(self.types)), participants=len(state.participants),
            keys=len(state.keys), revoked_keys=sum(key.revoked is not None for key in state.keys.values()),
            assets=len(state.assets), domains=len(state.domains), checkpoints=len(self.checkpoints),
            witnesses=tuple(sorted(self.witness_keys)), cosignatures_ignored=self.cosignatures_ignored,
            since_size=since_size)

    def _since(self, text: str) -> int:
        """Check that a checkpoint saved earlier is a prefix of this log, and return its size."""
        origin = self.header["origin"]
        try:
            checkpoint, signatures = notes.parse_note(text)
            if checkpoint.origin != origin:
                raise notes.NoteError(f"it names origin {checkpoint.origin}, expected {origin}")
            notes.verify_log_signature(checkpoint, signatures, origin, self.operator_key)
        except ValueError as exc:
            raise AuditFailure(None, "since-checkpoint", f"the saved checkpoint does not verify: {exc}") from exc
        self._expect_root(checkpoint, "the saved checkpoint: ", "fork", "fork",
                          "; the log forked or was rewritten since that checkpoint")
        return checkpoint.size
