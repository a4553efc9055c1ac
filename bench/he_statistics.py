"""he-statistics: private statistics over three providers' CSV files, against pandas on the pooled plaintext.

Three CSV files of synthetic enterprise rows (registered capital and VAT paid in 10,000 CNY, lognormal; employees,
an integer; industry, one of ten sectors) are written to a temporary folder from a seeded NumPy generator. The plan
asks for count, sum, mean, population and sample variance of the three numeric columns, a 20-bin histogram of
registered capital and per-industry counts, sums and means (10 groups).

The pdx arm runs the real path end to end, timed per part: each node loads its file with
``provider.datasets.load`` and calls ``provider.compute.statistics`` (partials + CKKS encryption under the
consumer's public context); the exchange adds the three bundles with ``privacy.he.add_ciphertexts``; the consumer
decrypts (``ConsumerKeys.decrypt``), decodes the exact fixed-point digits (``privacy.fixedpoint``) and calls
``aggregation.finish``. The nodes run one after another in this
process, so each is timed alone; in production they are separate machines working at the same time, so the
ratio uses the critical path (slowest node + exchange + consumer). The sequential sum is reported beside it. Key
generation happens once, before anything is timed.

The baseline arm: ``pandas.read_csv`` of the same three files, ``concat``, then the same statistics
(``agg(["count", "sum", "mean", "var"])``, ``np.histogram`` with the plan's edges, ``groupby().agg``). Both arms
must agree (relative 1e-6, counts exactly) before anything is timed. Peak memory: each arm runs once more in a
fresh process, and the benchmark reports how far its resident set (RSS, which counts SEAL's C++ allocations that
``tracemalloc`` cannot see) rises above what it was just before the arm started.
"""

from __future__ import annotations

import ctypes
import gc
import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench.harness import Comparison, Report, Target, interleave, median, profile_call, round_ratios
from privacy import aggregation, fixedpoint, he
from provider import compute, datasets

SEED = 2026
PROVIDERS = 3
COLUMNS = ("registered_capital", "employees", "vat_paid")
INDUSTRIES = {  # sector -> share of enterprises
    "wholesale-retail": 0.28, "leasing-business-services": 0.14, "manufacturing": 0.12, "science-technology": 0.10,
    "information-software": 0.08, "construction": 0.08, "accommodation-catering": 0.06,
    "transport-logistics": 0.05, "real-estate": 0.05, "agriculture": 0.04,
}
# 20 bins of 0.15 decades from 30,000 to 30 M CNY (in units of 10,000 CNY), wide enough that every bin holds at
# least MIN_GROUP_SIZE rows on every node (else the node refuses); rows outside the edges are not counted.
CAPITAL_EDGES = tuple(float(e) for e in np.geomspace(3.0, 3_000.0, 21))
MIN_GROUP_SIZE = 10
RTOL = 1e-6
TARGET = Target("<=", 1.25, "the issue: private statistics cost at most 1.25x pandas on the pooled plaintext")
BYTES_PER_MIB = 1024 * 1024


class Disagreement(AssertionError):
    """The two arms computed different statistics; nothing is timed."""


@dataclass(frozen=True)
class PdxRound:
    """One end-to-end pdx run: each node's load and compute seconds, the exchange's and the consumer's."""

    loads: tuple[float, ...]
    computes: tuple[float, ...]
    exchange: float
    consumer: float

    @property
    def nodes(self) -> tuple[float, ...]:
        return tuple(a + b for a, b in zip(self.loads, self.computes))

    @property
    def sequential(self) -> float:
        """Seconds with the nodes one after another, as this process ran them."""
        return sum(self.nodes) + self.exchange + self.consumer

    @property
    def critical_path(self) -> float:
        """Seconds with every node on its own machine: the slowest node, then the exchange and the consumer."""
        return max(self.nodes) + self.exchange + self.consumer


# --- the data and the plan -----------------------------------------------------------------------------------


def write_provider_csvs(folder: Path, rows: int, providers: int = PROVIDERS, seed: int = SEED) -> list[Path]:
    """Write one CSV of ``rows`` synthetic enterprises per provider and return their paths."""
    paths = []
    names, shares = list(INDUSTRIES), np.array(list(INDUSTRIES.values()))
    for number in range(providers):
        rng = np.random.default_rng([seed, number])
        frame = pd.DataFrame({  # providers differ a little, as regions do
            "registered_capital": np.round(rng.lognormal(math.log(100) + 0.2 * number, 1.2, rows), 4),
            "employees": np.maximum(1, np.rint(rng.lognormal(2.2, 1.1, rows))).astype(np.int64),
            "vat_paid": np.round(rng.lognormal(math.log(8), 1.4, rows), 4),
            "industry": np.array(names)[rng.choice(len(names), size=rows, p=shares / shares.sum())],
        })
        path = folder / f"provider-{number}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def statistics_plan() -> aggregation.StatisticsPlan:
    """Return the consumer's plan: three columns, a 20-bin capital histogram, a 10-sector group-by."""
    return aggregation.StatisticsPlan(
        columns=COLUMNS, histogram=aggregation.Histogram("registered_capital", CAPITAL_EDGES),
        group_by=aggregation.GroupBy("industry", tuple(INDUSTRIES)), min_group_size=MIN_GROUP_SIZE)


# --- the pdx arm ---------------------------------------------------------------------------------------------


def node(number: int, path: Path, params: dict[str, object], context: bytes) -> tuple[bytes, float, float]:
    """Act as provider node ``number``: mount the file, compute and encrypt; return the bundle and both timings."""
    start = time.perf_counter()
    dataset = datasets.load(datasets.Mount(f"ast_p{number}", f"enterprises-{number}", 3, "csv", str(path)))
    loaded = time.perf_counter()
    bundle, _ = compute.statistics([dataset], params, {"min-group-size": MIN_GROUP_SIZE}, context)
    return bundle, loaded - start, time.perf_counter() - loaded


def pdx_statistics(paths: list[Path], keys: he.ConsumerKeys,
                   plan: aggregation.StatisticsPlan) -> tuple[aggregation.Statistics, PdxRound]:
    """Run nodes, exchange and consumer once, and return the finished statistics and the timings."""
    gc.collect()
    context, params = keys.public_context(), {"plan": plan.to_dict()}
    bundles, loads, computes = [], [], []
    for number, path in enumerate(paths):  # each node's table is dropped when node() returns
        bundle, load_seconds, compute_seconds = node(number, path, params, context)
        bundles.append(bundle)
        loads.append(load_seconds)
        computes.append(compute_seconds)
    start = time.perf_counter()
    total = he.add_ciphertexts(context, bundles)
    added = time.perf_counter()
    result = aggregation.finish(plan, fixedpoint.decode(keys.decrypt(total), aggregation.layout(plan).size))
    done = time.perf_counter()
    return result, PdxRound(tuple(loads), tuple(computes), added - start, done - added)


# --- the baseline --------------------------------------------------------------------------------------------


def pandas_statistics(paths: list[Path], plan: aggregation.StatisticsPlan) -> dict[str, object]:
    """Pool the plaintext files with pandas and compute the same statistics."""
    pooled = pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)
    columns = list(plan.columns)
    described = pooled[columns].agg(["count", "sum", "mean", "var"])
    histogram, _ = np.histogram(pooled[plan.histogram.column].to_numpy(), bins=np.asarray(plan.histogram.edges))
    grouped = pooled.groupby(plan.group_by.column)[columns].agg(["count", "sum", "mean"])
    return {"described": described, "histogram": histogram, "grouped": grouped}


def check_agreement(found: aggregation.Statistics, expected: dict[str, object]) -> float:
    """Raise ``Disagreement`` unless pdx matches pandas (counts exactly); return the largest relative difference."""
    worst = 0.0

    def same(what: str, pdx: float, pandas: float, exact: bool = False) -> None:
        nonlocal worst
        difference = abs(pdx - pandas) / abs(pandas) if pandas else abs(pdx)
        if (exact and pdx != pandas) or not difference <= RTOL:
            raise Disagreement(f"{what}: pandas gives {pandas!r}, pdx gives {pdx!r}")
        worst = max(worst, difference)

    described, grouped = expected["described"], expected["grouped"]
    for column, stats in found.columns.items():
        n = int(described.loc["count", column])
        same("count", found.count, n, exact=True)
        same(f"sum of {column}", stats.sum, float(described.loc["sum", column]))
        same(f"mean of {column}", stats.mean, float(described.loc["mean", column]))
        same(f"sample variance of {column}", stats.sample_variance, float(described.loc["var", column]))
        same(f"variance of {column}", stats.variance, float(described.loc["var", column]) * (n - 1) / n)
    for number, (pdx, pandas) in enumerate(zip(found.histogram, expected["histogram"])):
        same(f"histogram bin {number}", pdx, int(pandas), exact=True)
    for label, group in found.groups.items():
        for column in found.columns:
            same(f"count of {label}", group.count, int(grouped.loc[label, (column, "count")]), exact=True)
            same(f"sum of {column} in {label}", group.sums[column], float(grouped.loc[label, (column, "sum")]))
            same(f"mean of {column} in {label}", group.means[column], float(grouped.loc[label, (column, "mean")]))
    return worst


# --- peak memory in a fresh process --------------------------------------------------------------------------


def peak_memory(prepare: Callable[..., Callable[[], object]], *args: object) -> dict[str, float]:
    """Return, in MiB, how far a fresh process's resident set rises while running ``prepare(*args)()``.

    ``prepare`` (a module-level function, so it can be sent to the child) does the untimed setup and returns the
    work. The child returns its freed heap to the system (glibc ``malloc_trim``) and resets its peak RSS (Linux
    ``/proc/self/clear_refs``) just before the work, so setup does not count. RSS includes native allocations
    (SEAL, the CSV parser) that ``tracemalloc`` does not see.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_peak_in_child, prepare, args).result()


def _peak_in_child(prepare: Callable[..., Callable[[], object]], args: tuple[object, ...]) -> dict[str, float]:
    work = prepare(*args)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand setup's freed heap back, so the work cannot hide in it
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    work()
    peak = _status_kib("VmHWM")
    return {"before_mib": before / 1024, "peak_mib": peak / 1024, "rise_mib": (peak - before) / 1024}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _prepare_pdx(paths: list[Path]) -> Callable[[], object]:
    keys, plan = he.ConsumerKeys(), statistics_plan()
    return lambda: pdx_statistics(paths, keys, plan)


def _prepare_pandas(paths: list[Path]) -> Callable[[], object]:
    plan = statistics_plan()
    return lambda: pandas_statistics(paths, plan)


def _profiled(file: str, function: str) -> bool:
    """Keep pdx's own functions, pandas' CSV reader and the C calls of TenSEAL and NumPy."""
    return ("/privacy/" in file or "/provider/" in file or file.endswith("readers.py") and function == "read_csv"
            or file == "~" and ("_tenseal_cpp" in function or "numpy" in function)) and "<genexpr>" not in function


def _profile(path: Path, keys: he.ConsumerKeys, plan: aggregation.StatisticsPlan, rows: int) -> list[str]:
    lines = profile_call(lambda: node(0, path, {"plan": plan.to_dict()}, keys.public_context()), 1, "node",
                         _profiled)
    return [f"profile, one node over {rows:,} rows (cProfile adds overhead to Python code; NumPy's elementwise "
            "comparisons are not calls, so they show only in their caller):", *lines]


# --- the run -------------------------------------------------------------------------------------------------


def run(quick: bool = False, profile: bool = False) -> Report:
    """Run the benchmark and return its report."""
    rows = 100_000 if quick else 1_000_000
    rounds = 3 if quick else 5
    plan = statistics_plan()
    report = Report("he-statistics", f"private statistics over {PROVIDERS} providers × {rows:,} rows vs pandas",
                    {"providers": PROVIDERS, "rows_per_provider": rows, "columns": list(COLUMNS),
                     "histogram_bins": plan.histogram.bins, "groups": len(plan.group_by.labels),
                     "vector_slots": aggregation.layout(plan).size, "rounds": rounds, "seed": SEED})
    with tempfile.TemporaryDirectory(prefix="pdx-bench-he-statistics-") as folder:
        started = time.perf_counter()
        paths = write_provider_csvs(Path(folder), rows)
        report.params["generate_seconds"] = round(time.perf_counter() - started, 1)
        report.params["csv_mib_per_provider"] = round(paths[0].stat().st_size / BYTES_PER_MIB, 1)
        started = time.perf_counter()
        keys = he.ConsumerKeys()
        report.params["keygen_seconds_untimed"] = round(time.perf_counter() - started, 2)

        # The check doubles as the warm-up round of both arms.
        found, _ = pdx_statistics(paths, keys, plan)
        worst = check_agreement(found, pandas_statistics(paths, plan))

        pdx_rounds: list[PdxRound] = []

        def pdx_arm() -> float:
            pdx_rounds.append(pdx_statistics(paths, keys, plan)[1])
            return pdx_rounds[-1].critical_path

        def pandas_arm() -> float:
            gc.collect()
            start = time.perf_counter()
            pandas_statistics(paths, plan)
            return time.perf_counter() - start

        samples = interleave({"pdx": pdx_arm, "pandas": pandas_arm}, rounds, warmup=0)
        memory = {"pdx": peak_memory(_prepare_pdx, paths), "pandas": peak_memory(_prepare_pandas, paths)}
        if profile:
            report.profile += _profile(paths[0], keys, plan, rows)

    critical, sequential, pooled = samples["pdx"], [r.sequential for r in pdx_rounds], samples["pandas"]
    parts = {"slowest_node_s": median([max(r.nodes) for r in pdx_rounds]),
             "node_load_s": median([x for r in pdx_rounds for x in r.loads]),
             "node_compute_s": median([x for r in pdx_rounds for x in r.computes]),
             "exchange_s": median([r.exchange for r in pdx_rounds]),
             "consumer_s": median([r.consumer for r in pdx_rounds])}
    ratios = round_ratios(critical, pooled)
    report.comparisons += [
        Comparison("critical path (slowest node + exchange + consumer)", "s", median(critical), median(pooled),
                   "pandas read_csv ×3 + concat + stats", median(ratios), TARGET,
                   {**parts, "ratio_min": min(ratios), "ratio_max": max(ratios)}),
        Comparison("sequential (3 nodes in turn + exchange + consumer)", "s", median(sequential), median(pooled),
                   "pandas read_csv ×3 + concat + stats", median(round_ratios(sequential, pooled))),
        Comparison("peak RSS rise, whole arm in a fresh process", "MiB", memory["pdx"]["rise_mib"],
                   memory["pandas"]["rise_mib"], "pandas, the same", memory["pdx"]["rise_mib"] /
                   memory["pandas"]["rise_mib"], extra={"pdx_before_mib": memory["pdx"]["before_mib"],
                                                       "pandas_before_mib": memory["pandas"]["before_mib"]}),
    ]
    report.notes.append(f"both arms agree before timing: counts exactly, every other number within "
                        f"{worst:.1e} relative (required ≤ {RTOL:g})")
    report.notes.append(f"per node: load {parts['node_load_s']:.3f} s (datasets.load), compute "
                        f"{parts['node_compute_s']:.3f} s (partials + encrypt); exchange {parts['exchange_s']:.3f} s, "
                        f"consumer {parts['consumer_s']:.3f} s (decrypt + finish)")
    report.notes.append(f"{rounds} measured rounds after the checked warm-up round, arms rotated; ConsumerKeys "
                        f"made once, untimed ({report.params['keygen_seconds_untimed']} s)")
    report.notes.append("peak memory: each arm once in a fresh process, nodes one after another (each node's table "
                        "dropped after it), RSS peak minus RSS just before the arm")
    return report
