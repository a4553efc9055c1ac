"""Deploying the exchange's contracts on its chain (`pdx chain deploy`, and the demo): the service that joins the
chain (``ledger.anchor``) with the grants whose statuses it mirrors (``authorization``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from authorization.model import Grant
from ledger import service
from ledger.anchor import ChainConflict, outbox
from ledger.anchor.worker import Sender


@dataclass(frozen=True)
class Deployed:
    """Where the contracts went, and what the exchange recorded about them."""

    chain_id: int
    anchor: str
    registry: str
    sender: str
    block: int
    ledger_seq: int
    grants_queued: int


def deploy(sender: Sender, *, regulator: str | None = None, admin: str | None = None) -> Deployed:
    """Deploy CheckpointAnchor and GrantRegistry, record them (`chain.deployed`) and queue every grant's last mark.

    Runs in an app context; refuses before touching the chain when a deployment is already recorded.
    """
    identity = service.identity()
    if identity is None:
        raise ChainConflict("no log signing key is configured; run `pdx init` first")
    with service.unit_of_work(system=True) as uow:
        found = outbox.deployment(uow.session)
        if found is not None:
            raise ChainConflict(f"the contracts are already deployed on chain {found.chain_id}: anchor "
                                f"{found.anchor_address}, registry {found.registry_address}")
    chain = sender.chain
    chain_id = chain.chain_id()
    addresses = chain.deploy(identity.origin, admin=admin, regulator=regulator)
    with service.unit_of_work(system=True) as uow:
        marked = list(uow.session.scalars(select(Grant).where(Grant.mark_status.is_not(None))))
        row = outbox.record_deployment(uow, chain_id, addresses.anchor, addresses.registry, chain.sender,
                                       addresses.block_number, marked)
        return Deployed(chain_id, addresses.anchor, addresses.registry, chain.sender, addresses.block_number,
                        row.ledger_seq, len(marked))
