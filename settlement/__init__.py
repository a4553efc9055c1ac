"""Settlement (pure): exact money, prices, revenue sharing and a period's statement (可计量, 收益分配).

- ``money``: ``Money`` in integer fen with an explicit currency, rounding only where named, largest-remainder
  allocation;
- ``pricing``: price terms (per job, per rows, per ε, per period), the purpose rule (公益 is free), the
  government-guided ceiling (政府指导价), the operator's fee rate and its maximum allowed revenue (最高准许收入);
- ``sharing``: how a joint job's payout pool is split among its providers (rows, equal, contribution);
- ``shapley``: contribution scores — exact Shapley values, Monte Carlo with a recorded seed and error bound;
- ``statement``: a period's charges, payouts and fee, vectorized over integer fen.

The package imports only the standard library, NumPy, pandas and ``common.errors``; the ledger entries, API and CLI
that use it come in the next step (docs/settlement.md).
"""
