"""Run the ledger benchmarks and print ratios against same-run baselines (docs/benchmarks.md).

    python -m bench [NAME ...] [--quick] [--profile] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench.harness import RESULTS_DIR, render, to_json, write_json

BENCHMARKS = {  # name -> module with run(quick, profile) -> Report
    "ledger-append": "bench.ledger_append",
    "ledger-proofs": "bench.ledger_proofs",
    "audit-verify": "bench.audit_verify",
    "pdp-decisions": "bench.pdp_decisions",
    "he-statistics": "bench.he_statistics",
    "he-scoring": "bench.he_scoring",
    "chain-anchoring": "bench.chain_anchoring",
    "federated-rounds": "bench.federated_rounds",
    "privacy-utility": "bench.privacy_utility",
    "settlement-statement": "bench.settlement_statement",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                     epilog=f"benchmarks: {', '.join(BENCHMARKS)}")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in under a minute")
    parser.add_argument("--profile", action="store_true", help="also profile the pdx path (ledger-append, audit-verify)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "latest.json",
                        help="where to write the JSON results (default: bench/results/latest.json)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table and write the JSON results."""
    args = parse_args(argv)
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    start = time.perf_counter()
    reports, failed = [], []
    for name in names:
        print(f"running {name}{' (quick)' if args.quick else ''} …", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            report = importlib.import_module(BENCHMARKS[name]).run(quick=args.quick, profile=args.profile)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            traceback.print_exc()
            failed.append(name)
            continue
        report.seconds = time.perf_counter() - began
        reports.append(report)
    seconds = time.perf_counter() - start
    print(render(reports), end="")
    path = write_json(to_json(reports, args.quick, seconds), args.json)
    print(f"\n{len(reports)} benchmark(s) in {seconds:.0f} s; results written to {path}")
    if failed:
        print(f"FAILED: {', '.join(failed)} (traceback above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
