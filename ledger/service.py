"""The ledger as the exchange uses it: the log identity of an app, genesis, and the unit of work."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from flask import Flask, current_app, g, has_request_context
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common import crypto
from common.db import get_database
from common.keyfiles import KeyFileError, load
from ledger import entries, log
from ledger.entries import Draft, SignedRequest
from ledger.log import LedgerWriter, LogIdentity

EXTENSION_KEY = "pdx.ledger"
GENESIS = "log.genesis"


@dataclass
class LedgerState:
    """Per-app ledger settings: the key file (loaded lazily, so `pdx init` can create it) and the origin."""

    key_file: Path
    origin: str
    identity: LogIdentity | None = None

    def load(self) -> LogIdentity | None:
        """Return the log identity, reading the key file the first time it exists."""
        if self.identity is None and self.key_file.exists():
            try:
                self.identity = LogIdentity(self.origin, load(self.key_file))
            except KeyFileError:
                return None
        return self.identity


def init_app(app: Flask, key_file: str, origin: str) -> None:
    """Remember where the app's log key lives and which origin its checkpoints name."""
    app.extensions[EXTENSION_KEY] = LedgerState(Path(key_file), origin)


def identity() -> LogIdentity | None:
    """Return the current app's log identity, or None before `pdx init`."""
    return current_app.extensions[EXTENSION_KEY].load()


def public_key_text() -> str | None:
    """Return the base64 public log key of the current app."""
    found = identity()
    return None if found is None else crypto.public_key_text(found.key.public_key())


@dataclass
class UnitOfWork:
    """One transaction: the session that changes state and the ledger writer that records it."""

    session: Session
    ledger: LedgerWriter


@contextlib.contextmanager
def unit_of_work(request: SignedRequest | None = None, *, system: bool = False) -> Iterator[UnitOfWork]:
    """Open a write transaction whose ledger entries commit with it.

    Inside an HTTP request the signed request verified by the route's authentication is used (and its nonce
    used up) by default; ``system`` opens one for the exchange's own entries only, with no request.
    """
    if request is None and not system and has_request_context():
        request = g.get("pdx_signed_request")
    with get_database().transaction() as session:
        if request is not None:
            window = current_app.config["PDX_SIGNATURE_WINDOW_SECONDS"]
            try:
                log.use_nonce(session, request, timedelta(seconds=2 * window))
            except IntegrityError as exc:  # the same request racing itself
                raise log.ReplayedRequest(f"request nonce {request.nonce} was already used") from exc
        yield UnitOfWork(session, LedgerWriter(session, identity(), request))


def append_genesis(uow: UnitOfWork) -> int:
    """Record the log's origin and public key as its first entry."""
    log = uow.ledger.identity
    return uow.ledger.append(Draft(GENESIS, entries.SYSTEM_ACTOR, body={
        "origin": log.origin, "log_public_key": crypto.public_key_text(log.key.public_key())}))
