"""audit-verify: ``ledger.audit.verify_export`` of a 100k-entry export, against bare SHA-256 + Ed25519 of it.

The export is built in memory (``bench.synthetic_export``): a realistic mix of participant, key, asset and
domain entries, each signed by the operator and (all but the exchange's own) by its actor over the request
statement. The baseline is the cryptographic floor of any audit over the same export: for every entry
SHA-256(0x00 ‖ entry bytes) and the Ed25519 verification of every signature it carries, plus the checkpoints'
log signatures and the witness cosignature, with messages, raw signatures and public keys prepared beforehand.
The issue's target: the audit costs at most 1.5× that floor.
"""

from __future__ import annotations

import hashlib
import time

from bench import synthetic_export
from bench.harness import Comparison, Report, Target, interleave, median, profile_call, round_ratios, timed
from bench.synthetic_export import Export
from ledger import audit, merkle, notes

TARGET = Target("<=", 1.5, "the issue: auditing an export costs at most 1.5x bare SHA-256 + Ed25519 verification")
PROFILED_C = ("<method 'verify' of", "<built-in method _json", "<method 'digest' of")


def _profiled(file: str, function: str) -> bool:
    """Keep pdx's own functions and the C calls that are the audit's floor or its parsing."""
    return ("/ledger/" in file or "/common/" in file) and "<genexpr>" not in function \
        or file == "~" and function.startswith(PROFILED_C)


def bare(export: Export) -> None:
    """Hash every entry into its leaf and verify every signature of the export, and nothing else."""
    sha256, prefix = hashlib.sha256, merkle.LEAF_PREFIX
    operator_key = export.operator_key
    for check in export.checks:
        sha256(prefix + check.data).digest()
        operator_key.verify(check.operator_sig, check.operator_message)
        if check.actor_key is not None:
            check.actor_key.verify(check.actor_sig, check.actor_message)
    for point, signatures in export.signed_checkpoints:
        body = point.body().encode()
        for signature in signatures:
            if signature.name == synthetic_export.ORIGIN:
                operator_key.verify(signature.signature, body)
            else:
                message = notes.cosigned_message(point, notes.TIMESTAMP.unpack(signature.signature[:8])[0])
                export.witness_keys[signature.name].verify(signature.signature[8:], message)


def verify(export: Export) -> audit.AuditReport:
    """Audit the export as a regulator would, trusting the log key and the witness."""
    return audit.verify_export(export.lines, export.operator_key, export.witness_keys)


def _profile(export: Export) -> list[str]:
    lines = profile_call(lambda: verify(export), len(export.checks), "entry", _profiled)
    return [f"profile, one audit of {len(export.checks):,} entries (cProfile adds overhead to Python code):", *lines]


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the benchmark and return its report."""
    size = 10_000 if quick else 100_000
    rounds = 3
    report = Report("audit-verify", f"audit of a {size:,}-entry export",
                    {"entries": size, "rounds": rounds, "warmup_rounds": 0})
    started = time.perf_counter()
    export = synthetic_export.build_export(size)
    report.params["build_seconds"] = round(time.perf_counter() - started, 1)
    results: list[audit.AuditReport] = []  # an audit that fails raises AuditFailure: nothing false is timed
    signatures = sum(1 + (c.actor_key is not None) for c in export.checks)
    samples = interleave({"audit": lambda: timed(lambda: results.append(verify(export))),
                          "bare": lambda: timed(lambda: bare(export))}, rounds, warmup=0)
    result = results[-1]
    ratios = round_ratios(samples["audit"], samples["bare"])
    report.comparisons.append(Comparison(
        f"verify_export, {size:,} entries", "s", median(samples["audit"]), median(samples["bare"]),
        "bare SHA-256 + Ed25519 over the same entries", median(ratios), TARGET,
        {"audit_entries_per_s": size / median(samples["audit"]), "bare_entries_per_s": size / median(samples["bare"]),
         "ratio_min": min(ratios), "ratio_max": max(ratios), "signatures": signatures}))
    report.notes.append(f"{size:,} entries, {signatures:,} entry signatures, {len(export.signed_checkpoints)} "
                        f"checkpoints; {result.participants:,} participants, {result.keys:,} keys "
                        f"({result.revoked_keys:,} revoked), {result.assets:,} assets")
    report.notes.append("mix: " + ", ".join(f"{kind} {count:,}" for kind, count in
                                            sorted(export.types.items(), key=lambda item: -item[1])))
    report.notes.append(f"per entry: audit {median(samples['audit']) * 1e6 / size:.0f} µs, bare "
                        f"{median(samples['bare']) * 1e6 / size:.0f} µs; {rounds} rounds, arms rotated")
    if profile:
        report.profile += _profile(export)
    return report
