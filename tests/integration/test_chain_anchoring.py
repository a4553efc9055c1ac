"""Anchoring through the exchange: grant changes queued with their entries, the sender's rounds against an
in-process chain (eth-tester), failures and retries, the lease, and the auditor's comparison with the chain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from web3 import EthereumTesterProvider, Web3

from authorization.model import Grant
from common import crypto
from common.db import get_database, utcnow
from ledger import export, log, service
from ledger.anchor import ChainUnavailable, outbox, records
from ledger.anchor.chain import Chain
from ledger.anchor.models import CONFIRMED, PENDING, ChainAnchor, ChainMirror
from ledger.anchor.worker import Sender, Settings
from ledger.audit import AuditFailure, verify_export
from tests.servers import free_port
from tests.support import grant_action, publish, register, request_grant, scenario_request

pytestmark = pytest.mark.sql  # the chain outbox and each grant's marks in the database

SETTINGS = Settings(url="in-process", interval_s=5, batch=3, receipt_timeout_s=10, max_backoff_s=60)


@pytest.fixture
def chain() -> Chain:
    return Chain(Web3(EthereumTesterProvider()))


@pytest.fixture
def market(client, world):
    transport = world.participant("provider", name="交通厅")
    asset = publish(client, transport, register(client, transport, domain="transport", grade=2)["id"])["id"]
    return {"provider": transport, "consumer": world.participant("consumer", name="银行"),
            "regulator": world.participant("regulator", name="大数据局"), "asset": asset}


def _active(client, market) -> str:
    grant = request_grant(client, market["consumer"], scenario_request([market["asset"]]))
    return grant_action(client, market["provider"], grant["id"], "approve")["id"]


def _deploy(app, chain: Chain) -> None:
    with app.app_context():
        addresses = chain.deploy(service.identity().origin, regulator=chain.w3.eth.accounts[1])
        with service.unit_of_work(system=True) as uow:
            marked = list(uow.session.scalars(select(Grant).where(Grant.mark_status.is_not(None))))
            outbox.record_deployment(uow, chain.chain_id(), addresses.anchor, addresses.registry, chain.sender,
                                     addresses.block_number, marked)


def _sender(chain: Chain, owner: str = "test-sender") -> Sender:
    return Sender(SETTINGS, service.identity, chain=lambda: chain, owner=owner)


def _rows(app, model) -> list:
    with app.app_context(), get_database().sessionmaker() as session:
        return list(session.scalars(select(model).order_by(model.__mapper__.primary_key[0])))


def _export(app) -> list[str]:
    with app.app_context(), service.unit_of_work(system=True) as uow:
        from ledger import checkpoints

        checkpoints.sign_current(uow.session, uow.ledger.identity)
    with app.app_context(), get_database().sessionmaker() as session:
        return list(export.lines(session, service.identity().origin, service.public_key_text(), log.size(session)))


def _operator_key(app):
    with app.app_context():
        return crypto.load_public_key(service.public_key_text())


def test_grant_changes_are_not_queued_before_a_deployment_but_their_marks_are_kept(app, client, market):
    grant_id = _active(client, market)
    assert _rows(app, ChainMirror) == []
    with app.app_context(), get_database().sessionmaker() as session:
        grant = session.get(Grant, grant_id)
        assert grant.mark_status == "active"
        entry = log.entry_rows(session, grant.mark_seq, grant.mark_seq + 1)[0]
        assert entry.type == "grant.activated"


def test_deployment_queues_each_grants_last_mark_and_later_changes_with_their_entries(app, client, market, chain):
    first = _active(client, market)
    grant_action(client, market["regulator"], first, "suspend", {"reason": "audit"})
    _deploy(app, chain)
    [backfilled] = _rows(app, ChainMirror)
    assert (backfilled.grant_id, backfilled.status, backfilled.state) == (first, "suspended", PENDING)
    grant_action(client, market["regulator"], first, "reinstate")
    second = _active(client, market)
    queued = _rows(app, ChainMirror)
    assert [(m.grant_id, m.status) for m in queued] == [(first, "suspended"), (first, "active"), (second, "active")]
    with app.app_context(), get_database().sessionmaker() as session:
        for mirror in queued[1:]:
            [entry] = log.entry_rows(session, mirror.seq, mirror.seq + 1)
            assert entry.type in ("grant.reinstated", "grant.activated") and mirror.grant_id.encode() in entry.data
        terms = session.get(Grant, second).terms
    assert queued[2].terms_hash == records.terms_hash(terms)
    assert (queued[2].valid_from, queued[2].valid_until) == records.window(terms)


def test_a_grant_change_its_entry_and_its_mirror_commit_together_or_not_at_all(app, client, market, chain,
                                                                              monkeypatch):
    _deploy(app, chain)
    grant = request_grant(client, market["consumer"], scenario_request([market["asset"]]))
    size = _size_and_root(app)[0]
    original = outbox.mark_grant

    def mark_then_fail(session, grant_row, seq):
        queued = original(session, grant_row, seq)
        if queued:
            raise RuntimeError("the process dies after queueing the mirror")
        return queued

    monkeypatch.setattr("authorization.workflow.outbox.mark_grant", mark_then_fail)
    with pytest.raises(RuntimeError):
        client.post(f"/api/v1/grants/{grant['id']}/approve", headers=market["provider"].headers, json={})
    assert _rows(app, ChainMirror) == [] and _size_and_root(app)[0] == size
    with app.app_context(), get_database().sessionmaker() as session:
        assert session.get(Grant, grant["id"]).status == "requested"
    monkeypatch.setattr("authorization.workflow.outbox.mark_grant", original)
    grant_action(client, market["provider"], grant["id"], "approve")
    assert [(m.grant_id, m.status) for m in _rows(app, ChainMirror)] == [(grant["id"], "active")]


def test_a_round_anchors_the_whole_log_and_mirrors_one_batch_in_ledger_order(app, client, market, chain):
    _deploy(app, chain)
    grants = [_active(client, market) for _ in range(4)]  # more than one registry batch of 3
    with app.app_context():
        sender = _sender(chain)
        first, second = sender.tick(), sender.tick()
        size, root = _size_and_root(app)
        deployment = _deployment(app)
        latest = chain.latest_anchor(deployment.anchor_address)
    assert first.sent and first.error is None and first.mirrored == 3 and first.anchored_size == size
    assert second.mirrored == 1 and second.anchored_size is None  # the log did not grow in between
    assert (latest.size, latest.root) == (size, root)
    registry = chain.registry_contract(deployment.registry_address)
    for grant_id in grants:
        assert registry.functions.statusOf(grant_id).call()[1] == records.STATUS_CODES["active"]
    mirrors = _rows(app, ChainMirror)
    assert {m.state for m in mirrors} == {CONFIRMED} and len({m.tx_hash for m in mirrors}) == 2
    assert [a.state for a in _rows(app, ChainAnchor)] == [CONFIRMED]


def test_later_rounds_anchor_with_a_consistency_proof_and_skip_when_nothing_changed(app, client, market, chain):
    _deploy(app, chain)
    with app.app_context():
        sender = _sender(chain)
        sender.tick()
        _active(client, market)
        second = sender.tick()
        idle = sender.tick()
        deployment = _deployment(app)
        count = chain.anchor_contract(deployment.anchor_address).functions.anchorCount().call()
    assert second.anchored_size == _size_and_root(app)[0]
    assert count == 2 and idle.anchored_size is None and idle.mirrored == 0


def test_a_chain_that_is_down_never_blocks_the_ledger_and_is_retried_with_backoff(app, client, market, chain):
    _deploy(app, chain)
    down = Chain.connect(f"http://127.0.0.1:{free_port()}", timeout=2)
    now = utcnow()
    with app.app_context():
        sender = _sender(down)
        failed = sender.tick(now)
    assert failed.sent and "ConnectionError" in failed.error
    grant_id = _active(client, market)  # the ledger goes on
    with app.app_context(), get_database().sessionmaker() as session:
        backlog = outbox.backlog(session)
    assert backlog.failures == 1 and backlog.pending_mirrors == 1 and backlog.pending_anchors == 1
    assert backlog.next_attempt_at == now + timedelta(seconds=SETTINGS.interval_s)
    assert backlog.last_error.startswith("ChainUnavailable: reading the latest anchor")
    with app.app_context():
        assert sender.tick(now + timedelta(seconds=1)).sent is False  # backing off
        assert sender.tick(now + timedelta(seconds=6)).error  # still down: the wait doubles
        with get_database().sessionmaker() as session:
            assert outbox.backlog(session).next_attempt_at == now + timedelta(seconds=6 + 2 * SETTINGS.interval_s)
        sender._chain = chain  # the node is back
        recovered = sender.tick(now + timedelta(seconds=60))
        with get_database().sessionmaker() as session:
            backlog = outbox.backlog(session)
    assert recovered.error is None and recovered.mirrored == 1
    assert backlog.failures == 0 and backlog.pending_mirrors == 0 and backlog.pending_anchors == 0
    assert backlog.anchored_size == backlog.ledger_size
    registry = chain.registry_contract(_deployment(app).registry_address)
    assert registry.functions.statusOf(grant_id).call()[1] == records.STATUS_CODES["active"]


def test_a_retry_recognises_an_anchor_and_a_batch_that_had_landed(app, client, market, chain):
    _deploy(app, chain)
    _active(client, market)
    deployment = _deployment(app)
    with app.app_context():
        with service.unit_of_work(system=True) as uow:
            queued = outbox.queue_checkpoint(uow.session, uow.ledger.identity)
            size, root, checkpoint_hash = queued.size, queued.root, queued.checkpoint_hash
        chain.post_anchor(deployment.anchor_address, size, root, checkpoint_hash, [])  # landed, receipt "lost"
        [mirror] = [m for m in _rows(app, ChainMirror)]
        from ledger.anchor.chain import GrantUpdate

        chain.record_grants(deployment.registry_address, [GrantUpdate(
            mirror.grant_id, mirror.terms_hash, mirror.status, mirror.valid_from, mirror.valid_until, mirror.seq)])
        tick = _sender(chain).tick()
    contract = chain.anchor_contract(deployment.anchor_address)
    assert tick.error is None and contract.functions.anchorCount().call() == 1
    assert chain.registry_contract(deployment.registry_address).functions.updateCount().call() == 1
    assert [a.state for a in _rows(app, ChainAnchor)] == [CONFIRMED]
    assert [m.state for m in _rows(app, ChainMirror)] == [CONFIRMED]


def test_a_chain_holding_another_history_is_reported_as_a_conflict_and_nothing_is_confirmed(app, client, market,
                                                                                             chain):
    _deploy(app, chain)
    deployment = _deployment(app)
    size = _size_and_root(app)[0]
    chain.post_anchor(deployment.anchor_address, size, b"\x66" * 32, b"\x00" * 32, [])
    _active(client, market)
    with app.app_context():
        tick = _sender(chain).tick()
        with get_database().sessionmaker() as session:
            backlog = outbox.backlog(session)
    assert tick.error and "another history" in tick.error
    assert backlog.last_error.startswith("CONFLICT") and backlog.pending_anchors == 1 and backlog.anchored_size == 0


def test_only_the_lease_holder_sends_until_its_lease_runs_out(app, chain):
    _deploy(app, chain)
    now = utcnow()
    with app.app_context():
        first, second = _sender(chain, "worker-1"), _sender(chain, "worker-2")
        assert first.tick(now).sent is True
        assert second.tick(now + timedelta(seconds=1)).sent is False
        assert first.tick(now + timedelta(seconds=2)).sent is True
        assert second.tick(now + SETTINGS.lease + timedelta(seconds=3)).sent is True
        first.release()  # not its lease any more: nothing changes
        assert first.tick(now + SETTINGS.lease + timedelta(seconds=4)).sent is False
        second.release()
        assert first.tick(now + SETTINGS.lease + timedelta(seconds=5)).sent is True


def test_the_auditor_verifies_an_export_against_the_chain_and_counts_what_is_not_anchored_yet(app, client, market,
                                                                                              chain):
    grant_id = _active(client, market)
    _deploy(app, chain)
    with app.app_context():
        _sender(chain).tick()
    grant_action(client, market["regulator"], grant_id, "suspend", {"reason": "audit"})  # after the round
    lines = _export(app)
    view = chain.view(_deployment(app).anchor_address)
    report = verify_export(lines, _operator_key(app), chain=view)
    assert report.chain.anchors_checked == 1 and report.chain.unanchored_entries == 1
    assert report.chain.statuses_checked == 1 and report.chain.pending_marks == 1
    assert "1 agree with the export" in report.render()


def test_the_auditor_refuses_an_anchor_contract_the_log_never_recorded(app, client, market, chain):
    _active(client, market)
    _deploy(app, chain)
    with app.app_context():
        rogue = chain.deploy(service.identity().origin)
    with pytest.raises(AuditFailure) as failure:
        verify_export(_export(app), _operator_key(app), chain=chain.view(rogue.anchor))
    assert failure.value.kind == "chain-address" and rogue.anchor in str(failure.value)


def test_an_unreachable_chain_is_reported_as_unavailable(app):
    with pytest.raises(ChainUnavailable):
        Chain.connect(f"http://127.0.0.1:{free_port()}", timeout=2).view("0x" + "11" * 20)


def _deployment(app):
    with app.app_context(), get_database().sessionmaker() as session:
        found = outbox.deployment(session)
        session.expunge(found)
        return found


def _size_and_root(app) -> tuple[int, bytes]:
    with app.app_context(), get_database().sessionmaker() as session:
        size = log.size(session)
        return size, log.root(session, size)


def test_upgrading_an_older_database_computes_each_grants_last_mark_from_the_ledger(app, client, market, database_url):
    import migrations
    from common.db import build_engine

    live = _active(client, market)
    grant_action(client, market["regulator"], live, "suspend", {"reason": "audit"})
    ended = _active(client, market)
    grant_action(client, market["consumer"], ended, "terminate", {"reason": "done"})
    never = request_grant(client, market["consumer"], scenario_request([market["asset"]]))["id"]
    expected = {g.id: (g.mark_status, g.mark_seq) for g in _rows(app, Grant)}
    assert expected[live][0] == "suspended" and expected[ended][0] == "terminated" and expected[never] == (None, None)
    engine = build_engine(database_url)
    _downgrade(engine, "0005")  # drops the mark columns
    migrations.upgrade(engine)
    engine.dispose()
    assert {g.id: (g.mark_status, g.mark_seq) for g in _rows(app, Grant)} == expected


def _downgrade(engine, revision: str) -> None:
    from alembic import command

    import migrations

    cfg = migrations.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
