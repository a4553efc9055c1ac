"""The sender: every interval, sign and anchor the newest checkpoint and mirror the queued grant changes.

One transaction per interval anchors the whole log however many entries it grew by (an anchor covers every
smaller tree, and the chain checks consistency with the previous anchor); queued grant changes go in batches.
Every server process runs a sender thread, but only the holder of the lease in ``chain_state`` sends, so several
gunicorn workers never race for the operator's nonce. A failure is recorded and retried with exponential backoff;
nothing is taken off the queue until the chain confirms it, and a retried send that had in fact landed is
recognised on the chain (sizes and sequence numbers only grow) instead of being sent twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from flask import Flask
from sqlalchemy.orm import Session

from common.db import get_database, utcnow
from ledger import log, merkle
from ledger.anchor import ChainConflict, ChainError, outbox
from ledger.anchor.models import SUPERSEDED, ChainAnchor, ChainMirror
from ledger.anchor.verify import AnchoredHead
from ledger.log import LogIdentity

if TYPE_CHECKING:  # web3 is imported only when a chain is configured
    from ledger.anchor.chain import Chain

log_ = logging.getLogger(__name__)
EXTENSION_KEY = "pdx.chain"


@dataclass(frozen=True)
class Settings:
    """How the sender runs (PDX_CHAIN_* settings)."""

    url: str
    key_file: str | None = None
    gas_price: int | None = None
    interval_s: int = 10
    batch: int = 200
    receipt_timeout_s: int = 60
    max_backoff_s: int = 300

    @property
    def lease(self) -> timedelta:
        """How long a leader keeps the lease without renewing it (a dead leader is replaced after this)."""
        return timedelta(seconds=max(30, 3 * self.interval_s + self.receipt_timeout_s))

    def connect(self) -> Chain:
        """Return a connection to the configured chain."""
        from ledger.anchor.chain import Chain

        return Chain.connect(self.url, self.key_file, self.gas_price, receipt_timeout=self.receipt_timeout_s)


@dataclass(frozen=True)
class Tick:
    """What one round of the sender did."""

    sent: bool  # whether this process held the lease and the backoff allowed a round
    anchored_size: int | None = None
    mirrored: int = 0
    error: str | None = None


def backoff(failures: int, interval_s: int, max_backoff_s: int) -> timedelta:
    """Return how long to wait after ``failures`` consecutive failures: doubling from the interval, capped."""
    return timedelta(seconds=min(max_backoff_s, interval_s * 2 ** min(failures - 1, 20)))


class Sender:
    """One process's sender: a lease holder that anchors and mirrors when it is its turn."""

    def __init__(self, settings: Settings, identity: Callable[[], LogIdentity | None],
                 chain: Callable[[], Chain] | None = None, owner: str | None = None) -> None:
        self.settings = settings
        self.identity = identity
        self._connect = chain or settings.connect
        self._chain: Chain | None = None
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            self._chain = self._connect()
        return self._chain

    def tick(self, now: datetime | None = None, *, force: bool = False) -> Tick:
        """Run one round if this process holds the lease and no backoff is pending (``force`` ignores backoff)."""
        now = now or utcnow()
        database = get_database()
        with database.transaction() as session:
            deployment = outbox.deployment(session)
            if deployment is None or not self._lease(session, now, force):
                return Tick(sent=False)
            deployment = _Deployment(deployment.anchor_address, deployment.registry_address)
            identity = self.identity()
            if identity is not None:
                outbox.queue_checkpoint(session, identity)
        try:
            anchored, mirrored = self._send(deployment)
        except ChainError as exc:
            self._failed(exc, now)
            return Tick(sent=True, error=str(exc))
        with database.transaction() as session:
            sender = outbox.state(session, lock=True)
            sender.failures, sender.next_attempt_at, sender.last_error = 0, None, None
            sender.last_success_at = utcnow()
        return Tick(sent=True, anchored_size=anchored, mirrored=mirrored)

    def release(self) -> None:
        """Give the lease up (at shutdown), so another process takes over at once."""
        with get_database().transaction() as session:
            sender = outbox.state(session, lock=True)
            if sender.lease_owner == self.owner:
                sender.lease_owner, sender.lease_until = None, None

    def _lease(self, session: Session, now: datetime, force: bool) -> bool:
        sender = outbox.state(session, lock=True)
        held_by_other = sender.lease_owner not in (None, self.owner) and sender.lease_until is not None \
            and sender.lease_until > now
        if held_by_other:
            return False
        sender.lease_owner, sender.lease_until = self.owner, now + self.settings.lease
        return force or sender.next_attempt_at is None or sender.next_attempt_at <= now

    def _failed(self, exc: ChainError, now: datetime) -> None:
        with get_database().transaction() as session:
            sender = outbox.state(session, lock=True)
            sender.failures += 1
            sender.next_attempt_at = now + backoff(sender.failures, self.settings.interval_s,
                                                   self.settings.max_backoff_s)
            kind = "CONFLICT" if isinstance(exc, ChainConflict) else type(exc).__name__
            sender.last_error, sender.last_error_at = f"{kind}: {exc}"[:2000], now
        log_.warning("chain anchoring failed (%s), retrying after backoff: %s", type(exc).__name__, exc)

    def _send(self, deployment: _Deployment) -> tuple[int | None, int]:
        """Submit this round's anchor and mirror batch together (they are mined in the same block on a network that
        has room), then wait for both; return the size anchored and how many grant changes the chain confirmed."""
        chain = self.chain
        anchor = self._prepare_anchor(deployment)
        mirror, landed = self._prepare_mirror(deployment)
        sending = isinstance(anchor, _Anchor)
        in_flight = []
        nonce = chain.next_nonce() if sending or mirror else 0
        if sending:
            call = chain.anchor_contract(deployment.anchor).functions.anchor(anchor.size, anchor.root,
                                                                               anchor.checkpoint_hash, anchor.proof)
            in_flight.append((ChainAnchor, [anchor.size], chain.submit(call, f"anchoring tree size {anchor.size}",
                                                                      nonce)))
            nonce += 1
        if mirror:
            call = chain.registry_contract(deployment.registry).functions.record([u.as_tuple() for u in mirror])
            in_flight.append((ChainMirror, [u.ledger_seq for u in mirror],
                              chain.submit(call, f"mirroring {len(mirror)} grant change(s)", nonce)))
        failure = None
        confirmed = landed
        for model, keys, pending in in_flight:
            try:
                sent = chain.wait(pending)
            except ChainError as exc:
                failure = failure or exc
                continue
            with get_database().transaction() as session:
                outbox.confirm([session.get(model, key) for key in keys], sent.tx_hash, sent.block_number)
            confirmed += len(keys) if model is ChainMirror else 0
        if failure is not None:
            raise failure
        return (anchor.size if sending else anchor), confirmed

    def _prepare_anchor(self, deployment: _Deployment) -> _Anchor | int | None:
        """Return the anchor to send, or the size the chain already covers for the newest queued one, or None."""
        database = get_database()
        with database.transaction() as session:
            row = outbox.next_anchor(session)
            if row is None:
                return None
            size, root, checkpoint_hash = row.size, row.root, row.checkpoint_hash
        latest = self.chain.latest_anchor(deployment.anchor)
        if latest is not None and latest.size >= size:
            return self._already_anchored(deployment.anchor, size, root, latest)
        with database.sessionmaker() as session:
            proof = [] if latest is None else _consistency(session, latest.size, latest.root, size)
        return _Anchor(size, root, checkpoint_hash, proof)

    def _already_anchored(self, address: str, size: int, root: bytes, latest: AnchoredHead) -> int:
        """Confirm a queued anchor the chain already covers (a retry that had landed), or raise on a conflict."""
        with get_database().transaction() as session:
            ours = log.root(session, latest.size) if latest.size <= log.size(session) else None
            if ours is not None and ours != latest.root:
                raise ChainConflict(f"the chain anchors root {latest.root.hex()} at size {latest.size}, the ledger "
                                    f"gives {ours.hex()}: someone anchored another history with the operator role")
            onchain = self.chain.anchor_of_size(address, size)
            row = session.get(ChainAnchor, size)
            if onchain is not None:
                if onchain.root != root:
                    raise ChainConflict(f"the chain anchors root {onchain.root.hex()} at size {size}, the ledger "
                                        f"gives {root.hex()}")
                outbox.confirm([row], None, onchain.block_number)
            else:
                row.state = SUPERSEDED  # a larger consistent anchor covers it
        return latest.size

    def _prepare_mirror(self, deployment: _Deployment) -> tuple[list, int]:
        """Return the next batch of queued grant changes the chain does not hold yet, confirming those it does
        (a retried batch that had landed); and how many were confirmed so. One batch is in flight at a time, so a
        refused batch can never be overtaken by a later one (the registry only takes growing sequence numbers)."""
        from ledger.anchor.chain import GrantUpdate

        database = get_database()
        with database.sessionmaker() as session:
            updates = [GrantUpdate(r.grant_id, r.terms_hash, r.status, r.valid_from, r.valid_until, r.seq)
                       for r in outbox.next_mirrors(session, self.settings.batch)]
        if not updates:
            return [], 0
        highest = self.chain.highest_mirrored_seq(deployment.registry)
        landed = [u.ledger_seq for u in updates if u.ledger_seq <= highest]
        if landed:
            with database.transaction() as session:
                outbox.confirm([session.get(ChainMirror, seq) for seq in landed], None, None)
        return [u for u in updates if u.ledger_seq > highest], len(landed)


@dataclass(frozen=True)
class _Anchor:
    size: int
    root: bytes
    checkpoint_hash: bytes
    proof: list[bytes]


@dataclass(frozen=True)
class _Deployment:
    anchor: str
    registry: str


def _consistency(session: Session, first: int, first_root: bytes, second: int) -> list[bytes]:
    """Return the consistency proof from the chain's latest anchor to ``second``, after checking that anchor."""
    nodes = log.DbNodes(session)
    ours = nodes.run(merkle.root_from, first)
    if ours != first_root:
        raise ChainConflict(f"the chain's latest anchor has root {first_root.hex()} at size {first}, the ledger "
                            f"gives {ours.hex()}: the chain holds another history")
    return nodes.run(merkle.consistency_proof_from, first, second)


class Anchorer(threading.Thread):
    """The background thread of one server process: a sender tick every interval until stopped."""

    def __init__(self, app: Flask, sender: Sender) -> None:
        super().__init__(name="pdx-chain", daemon=True)
        self.app = app
        self.sender = sender
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = self.sender.settings.interval_s
        due = time.monotonic() + interval
        while not self.stopped.wait(max(0.0, due - time.monotonic())):
            due += interval  # rounds start every interval, however long the last one took to be mined
            with self.app.app_context():
                try:
                    self.sender.tick()
                except Exception:  # noqa: BLE001 - the thread must survive a database hiccup; the next tick retries
                    log_.exception("chain sender round failed")
            due = max(due, time.monotonic())

    def stop(self) -> None:
        """Stop after the current round and give up the lease."""
        self.stopped.set()
        self.join(timeout=self.sender.settings.receipt_timeout_s + 5)
        with self.app.app_context():
            self.sender.release()


def settings_from(config: dict) -> Settings | None:
    """Return the sender settings from an app's PDX_CHAIN_* config, or None when no chain is configured."""
    url = config.get("PDX_CHAIN_URL")
    if not url:
        return None
    return Settings(url=url, key_file=config.get("PDX_CHAIN_KEY_FILE") or None,
                    gas_price=config.get("PDX_CHAIN_GAS_PRICE"), interval_s=config["PDX_CHAIN_INTERVAL_SECONDS"],
                    batch=config["PDX_CHAIN_BATCH"], receipt_timeout_s=config["PDX_CHAIN_RECEIPT_TIMEOUT_SECONDS"],
                    max_backoff_s=config["PDX_CHAIN_MAX_BACKOFF_SECONDS"])


def init_app(app: Flask, background: bool) -> None:
    """Attach a sender to the app when a chain is configured, and start its thread when ``background``."""
    settings = settings_from(app.config)
    if settings is None:
        return
    from ledger import service

    sender = Sender(settings, service.identity)
    app.extensions[EXTENSION_KEY] = sender
    if background:
        Anchorer(app, sender).start()


def sender_of(app: Flask) -> Sender | None:
    """Return the app's sender, or None when it anchors on no chain."""
    return app.extensions.get(EXTENSION_KEY)
