"""The demo on a chain (PDX_CHAIN_URL set): deploy the contracts, wait for the served exchange to anchor, audit."""

from __future__ import annotations

import time
from typing import Callable

from flask import Flask

WAIT_SECONDS = 60
DEMO_INTERVAL_SECONDS = "1"


def deploy(app: Flask, echo: Callable[[str], None]) -> str | None:
    """Deploy the contracts and record them (inside an app context); return the anchor's address, or None when no
    chain is configured. On a development node its second unlocked account stands in for the regulator's."""
    from exchange import anchoring
    from ledger.anchor import worker

    sender = worker.sender_of(app)
    if sender is None:
        return None
    accounts = sender.chain.w3.eth.accounts
    regulator = accounts[1] if len(accounts) > 1 else None
    deployed = anchoring.deploy(sender, regulator=regulator)
    echo(f"  chain:     {app.config['PDX_CHAIN_URL']} (chain {deployed.chain_id}): CheckpointAnchor "
         f"{deployed.anchor}, GrantRegistry {deployed.registry}; {deployed.grants_queued} grant status(es) queued"
         + (f"; regulator account {regulator}" if regulator else ""))
    return deployed.anchor


def wait_until_anchored(timeout: float = WAIT_SECONDS):
    """Wait (inside an app context) until the served exchange's sender anchored the whole log and mirrored every
    grant change; return the backlog, or raise ``TimeoutError`` naming what is still pending."""
    from common.db import get_database
    from ledger.anchor import outbox

    deadline = time.monotonic() + timeout
    while True:
        with get_database().sessionmaker() as session:
            backlog = outbox.backlog(session)
        if backlog.anchored_size >= backlog.ledger_size and backlog.pending_mirrors == 0:
            return backlog
        if time.monotonic() > deadline:
            raise TimeoutError(f"the chain is behind after {timeout:.0f} s: anchored {backlog.anchored_size} of "
                               f"{backlog.ledger_size} entries, {backlog.pending_mirrors} grant change(s) pending; "
                               f"last error: {backlog.last_error}")
        time.sleep(0.2)
