"""Benchmarks of pdx, run by ``python -m bench`` (see docs/benchmarks.md).

Machines here are shared and noisy, so no benchmark reports a bare number: each compares the pdx path with a
baseline measured in the same run, interleaved round by round, and reports the median ratio with the absolute
medians beside it.

    ledger-append   durable appends/s through create_app + unit_of_work, vs raw sqlite3 inserts of the same bytes
    ledger-proofs   proof latency from stored subtree hashes at 1M entries, vs the same proofs at 1k entries
    audit-verify    ledger.audit.verify_export of a 100k-entry export, vs bare SHA-256 + Ed25519 of its entries
    pdp-decisions   authorization.engine.decide over 100k grants, vs the bare grant and scope lookups
"""
