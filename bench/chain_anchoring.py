"""chain-anchoring: does anchoring on a real JSON-RPC node keep up with ≥ 1000 ledger appends per second?

Against anvil (npm @foundry-rs/anvil, started here on a free port) mining a block every second, as a permissioned
network does. The exchange's own sender thread (ledger.anchor.worker) anchors every interval — one transaction for
the whole log however much it grew, with the on-chain consistency check — and mirrors queued grant changes (one
in every MIRROR_EVERY appends is a synthetic grant activation) in registry batches.

1. unpaced: appends per second (GROUP entries per transaction, the real LedgerWriter path on SQLite) with the
   sender running, against the same appends with no chain, interleaved in rounds;
2. paced at PACED_RATE appends/s for a while: how long an entry waits until an anchor covering it is mined (p50,
   p95, max), against the floor the design sets (the sender interval plus one block), and the largest backlog.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sqlalchemy import select

import migrations
from app import create_app
from bench.harness import Comparison, Report, Target, interleave, median, percentile, round_ratios, timed
from bench.ledger_append import draft
from common import keyfiles
from common.db import get_database, utcnow
from contracts import anvil
from ledger import log, service
from ledger.anchor import outbox, records
from ledger.anchor.models import CONFIRMED, PENDING, ChainAnchor, ChainMirror
from ledger.anchor.worker import Anchorer, Sender, settings_from

ORIGIN = "bench.pdx/ledger"
GROUP = 10  # entries per transaction
MIRROR_EVERY = 50  # one grant status change per this many appends
INTERVAL_S = 1
BLOCK_TIME_S = 1
PACED_RATE = 1000
TERMS = {"valid_from": "2026-01-01T00:00:00+00:00", "valid_until": "2027-01-01T00:00:00+00:00"}
TARGET_KEEP_UP = Target("<=", 2.0, "an entry is anchored within twice the design floor (interval + one block) "
                                   "at 1000 appends/s: the backlog stays bounded")


class Exchange:
    """A pdx exchange on SQLite whose contracts are deployed on the given chain, with its sender thread on demand."""

    def __init__(self, folder: Path, chain_url: str) -> None:
        instance = folder / "instance"
        keyfiles.generate(instance / "log.key")
        self.app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'pdx.sqlite3'}", "INSTANCE_DIR": str(instance),
                               "LEDGER_ORIGIN": ORIGIN, "CHAIN_URL": chain_url,
                               "CHAIN_INTERVAL_SECONDS": INTERVAL_S, "CHAIN_RECEIPT_TIMEOUT_SECONDS": 30})
        self.context = self.app.app_context()
        self.context.push()
        migrations.upgrade(get_database().engine)
        with service.unit_of_work() as uow:
            service.append_genesis(uow)
        self.sender = Sender(settings_from(self.app.config), service.identity)
        chain = self.sender.chain
        addresses = chain.deploy(ORIGIN)
        with service.unit_of_work(system=True) as uow:
            outbox.record_deployment(uow, chain.chain_id(), addresses.anchor, addresses.registry, chain.sender,
                                     addresses.block_number, [])
        self.count = 0
        self.groups: list[tuple[int, float]] = []  # (log size after the group's commit, wall time)
        self.thread: Anchorer | None = None

    def close(self) -> None:
        self.stop()
        get_database().engine.dispose()
        self.context.pop()

    def start(self) -> None:
        self.thread = Anchorer(self.app, self.sender)
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    def append(self, n: int, pace: float | None = None) -> float:
        """Append n entries, GROUP per transaction (at ``pace`` entries/s if given); return entries per second."""
        drafts = [draft(self.count + i) for i in range(n)]
        first = self.count
        self.count += n
        groups = [drafts[i:i + GROUP] for i in range(0, n, GROUP)]
        begin = time.perf_counter()

        def run() -> None:
            for number, group in enumerate(groups):
                if pace is not None:
                    delay = begin + number * GROUP / pace - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                with service.unit_of_work() as uow:
                    for offset, item in enumerate(group):
                        seq = uow.ledger.append(item)
                        if (first + number * GROUP + offset) % MIRROR_EVERY == 0:
                            uow.session.add(_mirror(seq))
                    size = seq + 1
                self.groups.append((size, time.time()))

        return n / timed(run)

    def wait_caught_up(self, timeout: float = 60) -> float:
        """Wait until the chain covers the whole log and every mirror; return the seconds it took."""
        begin = time.perf_counter()
        while True:
            with get_database().sessionmaker() as session:
                backlog = outbox.backlog(session)
            if backlog.anchored_size >= backlog.ledger_size and backlog.pending_mirrors == 0:
                return time.perf_counter() - begin
            if time.perf_counter() - begin > timeout:
                raise RuntimeError(f"anchoring did not catch up in {timeout} s: {backlog}")
            time.sleep(0.05)

    def anchors(self) -> list[tuple[int, float, float]]:
        """Return the confirmed anchors: (size, queued at, mined at) as unix times."""
        with get_database().sessionmaker() as session:
            rows = session.scalars(select(ChainAnchor).where(ChainAnchor.state == CONFIRMED)
                                   .order_by(ChainAnchor.size))
            return [(r.size, r.enqueued_at.timestamp(), r.confirmed_at.timestamp()) for r in rows]


def _mirror(seq: int) -> ChainMirror:
    valid_from, valid_until = records.window(TERMS)
    return ChainMirror(seq=seq, grant_id=f"grt_bench_{seq:012d}", status="active",
                       terms_hash=records.terms_hash(TERMS), valid_from=valid_from, valid_until=valid_until,
                       state=PENDING, enqueued_at=utcnow())


def _latencies(groups: list[tuple[int, float]], anchors: list[tuple[int, float, float]]) -> list[float]:
    """Return, per appended group, the seconds until the first anchor covering it was mined."""
    waits = []
    for size, appended_at in groups:
        mined = next((at for anchored, _, at in anchors if anchored >= size), None)
        if mined is not None:
            waits.append(max(0.0, mined - appended_at))
    return waits


def run(quick: bool = False, profile: bool = False) -> Report:
    """Measure appends with and without anchoring, then anchoring latency at a paced 1000 appends/s."""
    chunk, rounds, paced_s = (2_000, 2, 5) if quick else (5_000, 4, 20)
    report = Report("chain-anchoring", "anchoring on anvil keeps up with the ledger",
                    {"group": GROUP, "interval_s": INTERVAL_S, "block_time_s": BLOCK_TIME_S, "chunk": chunk,
                     "rounds": rounds, "paced_rate": PACED_RATE, "paced_seconds": paced_s,
                     "mirror_every": MIRROR_EVERY})
    with tempfile.TemporaryDirectory() as folder, anvil.running(block_time=BLOCK_TIME_S) as url:
        exchange = Exchange(Path(folder), url)
        try:
            def anchoring() -> float:
                exchange.start()
                rate = exchange.append(chunk)
                exchange.wait_caught_up()
                exchange.stop()
                return rate

            samples = interleave({"anchoring": anchoring, "no-chain": lambda: exchange.append(chunk)}, rounds)
            ratios = round_ratios(samples["anchoring"], samples["no-chain"])
            with_chain, without = median(samples["anchoring"]), median(samples["no-chain"])
            report.comparisons.append(Comparison(
                f"appends/s with the sender running ({GROUP}/tx)", "appends/s", with_chain, without,
                "the same appends, no chain", median(ratios), extra={"min_ratio": min(ratios)}))
            exchange.start()
            exchange.wait_caught_up()  # the no-chain arm's appends
            exchange.groups.clear()
            began = time.time()
            with get_database().sessionmaker() as session:
                start_size = log.size(session)  # anchored already: the wait above caught up
            achieved = exchange.append(PACED_RATE * paced_s, pace=PACED_RATE)
            catch_up = exchange.wait_caught_up()
            exchange.stop()
            anchors = [a for a in exchange.anchors() if a[2] >= began]
            waits = _latencies(exchange.groups, anchors)
            floor = INTERVAL_S + BLOCK_TIME_S
            tx_waits = [mined - queued for _, queued, mined in anchors]
            backlog = max(_backlogs(exchange.groups, anchors, start_size), default=0)
            report.comparisons.append(Comparison(
                f"entry → anchored p95 at {PACED_RATE} appends/s", "s", percentile(waits, 95), floor,
                "sender interval + one block", percentile(waits, 95) / floor, TARGET_KEEP_UP,
                extra={"p50_s": median(waits), "max_s": max(waits), "achieved_appends_per_s": achieved,
                       "max_backlog_entries": backlog, "catch_up_s": catch_up, "anchors": len(anchors)}))
            report.comparisons.append(Comparison(
                "anchor transaction: queued → mined, median", "s", median(tx_waits), BLOCK_TIME_S, "one block",
                median(tx_waits) / BLOCK_TIME_S, extra={"p95_s": percentile(tx_waits, 95)}))
            with get_database().sessionmaker() as session:
                size = log.size(session)
                mirrors = session.scalar(select(ChainMirror.seq).order_by(ChainMirror.seq.desc()).limit(1))
            report.notes += [
                f"unpaced appends with the sender running: {with_chain:,.0f}/s (no chain {without:,.0f}/s); the "
                f"issue asks anchoring to keep up with ≥ 1000/s: {'met' if with_chain >= 1000 else 'MISSED'}",
                f"paced: {achieved:,.0f} appends/s for {paced_s} s; entries waited p50 {median(waits):.2f} s, p95 "
                f"{percentile(waits, 95):.2f} s, max {max(waits):.2f} s for an anchor; the largest backlog was "
                f"{backlog:,} entries; {len(anchors)} anchor transactions; the chain caught up {catch_up:.2f} s "
                f"after the load stopped",
                f"log size at the end {size:,}; last mirrored grant change at entry {mirrors:,}",
            ]
        finally:
            exchange.close()
    return report


def _backlogs(groups: list[tuple[int, float]], anchors: list[tuple[int, float, float]], start: int) -> list[int]:
    """Return, at each group's commit, how many entries were not yet covered by a mined anchor."""
    result = []
    for size, at in groups:
        covered = max((anchored for anchored, _, mined in anchors if mined <= at), default=start)
        result.append(size - covered)
    return result
