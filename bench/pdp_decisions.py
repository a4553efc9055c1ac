"""Decisions per second of the policy decision point, in-process, over 100k active grants.

The population: 1,000 consumers, 10,000 assets of 100 providers across the ten seed domains and grades 1–4,
and 100,000 active grants of the three kinds (per-scenario over 1–5 named assets, per-domain and comprehensive
over 1–3 providers). Each decision picks a random grant and one to three assets in its scope (so most decisions
allow, as in production) and asks ``authorization.engine.decide``; a tenth of the requests carry a forbid (an asset
outside the scope, a spent quota, a small group) so the deny path is measured too.

Baseline, same run, same requests: the irreducible lookups any decision needs — fetch the grant and the assets
from dictionaries, check the status and scope membership — written as bare Python. The ratio shows what the full
rule set (every forbid, obligations, explained reasons) costs on top. The issue's target is absolute: a median
of at most 20 µs per decision; the distribution is reported.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from authorization.engine import COMPUTE, Action, AssetFacts, Context, GrantFacts, PrincipalFacts, decide
from authorization.terms import COMPREHENSIVE, DOMAIN, SCENARIO, Scope, Terms
from bench.harness import Comparison, Report, median, percentile
from catalog.vocab import SEED_DOMAINS

SEED = 2026
TARGET_MEDIAN_US = 20.0
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
KINDS = frozenset({"aggregate", "he-statistics", "he-scoring", "federated-learning"})


def population(rng: random.Random, consumers: int, assets: int, grants: int):
    """Build consumers, assets and active grants as the decision point sees them."""
    domains = [d.code for d in SEED_DOMAINS]
    providers = [f"prt_p{n:03d}" for n in range(100)]
    asset_facts = {}
    by_provider: dict[str, list[str]] = {p: [] for p in providers}
    for number in range(assets):
        grade = rng.choice((1, 2, 2, 3, 3, 4))
        kinds = frozenset({"he-statistics", "he-scoring", "federated-learning"}) if grade >= 3 else KINDS
        asset_id = f"ast_{number:05d}"
        provider = providers[number % len(providers)]
        asset_facts[asset_id] = AssetFacts(asset_id, provider, True, domains[number % len(domains)], grade, True,
                                           kinds)
        by_provider[provider].append(asset_id)
    terms = Terms(frozenset({"he-statistics", "he-scoring"}), NOW - timedelta(days=10), NOW + timedelta(days=80),
                  max_jobs=1000, max_rows=10**9, min_group_size=10, max_result_cells=1000, epsilon=10.0,
                  price_amount=Decimal("100.00"))
    principals = [PrincipalFacts(f"prt_c{n:04d}", frozenset({"consumer"}), True) for n in range(consumers)]
    grant_facts = []
    asset_ids = list(asset_facts)
    for number in range(grants):
        consumer = principals[number % consumers]
        kind = (SCENARIO, SCENARIO, DOMAIN, COMPREHENSIVE)[number % 4]
        if kind == SCENARIO:
            scope = Scope(SCENARIO, assets=frozenset(rng.sample(asset_ids, rng.randint(1, 5))), scenario="s",
                          purpose="p")
        else:
            chosen = frozenset(rng.sample(providers, rng.randint(1, 3)))
            scope = Scope(kind, providers=chosen, domain=rng.choice(domains) if kind == DOMAIN else None,
                          max_grade=3)
        grant_facts.append((consumer, GrantFacts(f"grt_{number:06d}", consumer.id, "active", scope, terms,
                                                 jobs_used=rng.randint(0, 900), rows_used=rng.randint(0, 10**6),
                                                 epsilon_used=rng.uniform(0, 8), core_exception=True)))
    return asset_facts, by_provider, grant_facts


def _in_scope_assets(rng, grant: GrantFacts, asset_facts, by_provider) -> list[AssetFacts]:
    scope = grant.scope
    if scope.kind == SCENARIO:
        pool = list(scope.assets)
    else:
        pool = [a for p in scope.providers for a in by_provider[p]
                if asset_facts[a].grade <= scope.max_grade and (scope.kind == COMPREHENSIVE
                                                               or asset_facts[a].domain == scope.domain)]
        pool = pool or list(by_provider[next(iter(scope.providers))])
    return [asset_facts[a] for a in rng.sample(pool, min(len(pool), rng.randint(1, 3)))]


def requests(rng, count, asset_facts, by_provider, grant_facts):
    """Return ``count`` decision requests (principal, action, assets, context), a tenth of them forbidden."""
    built = []
    outsider = next(iter(asset_facts.values()))
    for number in range(count):
        principal, grant = rng.choice(grant_facts)
        assets = _in_scope_assets(rng, grant, asset_facts, by_provider)
        group = 10
        if number % 10 == 0:
            assets = assets + [outsider]
        elif number % 10 == 5:
            group = 3
        context = Context(now=NOW, grant=grant, rows=rng.randint(1, 10_000), epsilon=0.1, group_size=group,
                          result_cells=rng.randint(1, 100))
        built.append((principal, Action(COMPUTE, "he-statistics"), assets, context))
    return built


def baseline_check(principal, action, assets, context) -> bool:
    """The bare lookups: the grant is the principal's, active, and covers every asset."""
    grant = context.grant
    if grant.consumer_id != principal.id or grant.status != "active":
        return False
    scope = grant.scope
    return all(scope.covers(a.id, a.provider_id, a.domain, a.grade) for a in assets)


def _per_call(function, batch) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for principal, action, assets, context in batch:
        start = clock()
        function(principal, action, assets, context)
        samples.append((clock() - start) / 1000)
    return samples


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the benchmark and return its report."""
    sizes = (100, 1_000, 10_000) if quick else (1_000, 10_000, 100_000)
    calls = 20_000 if quick else 200_000
    rng = random.Random(SEED)
    report = Report("pdp-decisions", f"decision point over {sizes[2]:,} active grants, {sizes[0]:,} consumers, "
                                     f"{sizes[1]:,} assets",
                    {"consumers": sizes[0], "assets": sizes[1], "grants": sizes[2], "decisions": calls, "seed": SEED})
    asset_facts, by_provider, grant_facts = population(rng, *sizes)
    batch = requests(rng, calls, asset_facts, by_provider, grant_facts)
    allowed = sum(decide(*request).allow for request in batch[:2000])
    pdx, base = [], []
    for start in range(0, calls, 10_000):  # interleave chunks so both arms see the same machine state
        chunk = batch[start:start + 10_000]
        pdx += _per_call(decide, chunk)
        base += _per_call(baseline_check, chunk)
    pdx_median, base_median = median(pdx), median(base)
    report.comparisons.append(Comparison(
        "decide(), median per decision", "µs", pdx_median, base_median, "bare grant + scope lookups",
        pdx_median / base_median,
        extra={"p90": percentile(pdx, 90), "p99": percentile(pdx, 99), "p99.9": percentile(pdx, 99.9),
               "max": max(pdx), "decisions_per_second": 1e6 / pdx_median}))
    met = "met" if pdx_median <= TARGET_MEDIAN_US else "MISSED"
    report.notes.append(f"absolute target: median ≤ {TARGET_MEDIAN_US:g} µs per decision — {met} "
                        f"({pdx_median:.2f} µs; p99 {percentile(pdx, 99):.2f} µs)")
    report.notes.append(f"{allowed / 20:.0f} % of the first 2,000 requests were allowed (a tenth carry a forbid)")
    return report
