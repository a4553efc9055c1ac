"""What every benchmark shares: interleaved timing, medians and percentiles, the result types, and the report.

A benchmark returns a ``Report`` of ``Comparison`` rows. A comparison is always a ratio against a baseline
measured in the same run (the machines are shared, so absolute numbers move from run to run; ratios of
interleaved measurements move much less), with the absolute medians kept beside it.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Target:
    """What the issue asks of a ratio: ``ratio <op> value``."""

    op: str  # ">=" or "<="
    value: float
    note: str = ""

    def met(self, ratio: float) -> bool:
        """Tell whether ``ratio`` meets the target."""
        return ratio >= self.value if self.op == ">=" else ratio <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}"


@dataclass(frozen=True)
class Comparison:
    """One measured ratio: the pdx figure against its same-run baseline, both medians, and the target if any."""

    metric: str
    unit: str
    value: float
    baseline: float
    baseline_name: str
    ratio: float
    target: Target | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.ratio)


@dataclass
class Report:
    """The outcome of one benchmark."""

    name: str
    title: str
    params: dict[str, object]
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    seconds: float = 0.0


def median(values: Sequence[float]) -> float:
    """Return the median of ``values``."""
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """Return the ``p``-th percentile (0–100) of ``values``, nearest-rank."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def timed(run: Callable[[], object]) -> float:
    """Return the seconds ``run()`` takes, after a garbage collection so earlier garbage is not billed to it."""
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def interleave(arms: Mapping[str, Callable[[], float]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run each arm once per round, rotating which goes first, and return every arm's samples.

    An arm returns its own measurement (seconds, or a rate). The first ``warmup`` rounds are run and dropped.
    """
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for number in range(warmup + rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            value = arms[name]()
            if number >= warmup:
                samples[name].append(value)
    return samples


def round_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Return the ratio of each round's pair of samples."""
    return [a / b for a, b in zip(numerator, denominator)]


def machine() -> dict[str, object]:
    """Describe the machine and the software a run measured."""
    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        wanted = ("Model name", "Architecture", "CPU(s)", "Thread(s) per core", "CPU MHz", "Hypervisor vendor")
        info["lscpu"] = {key.strip(): value.strip() for key, _, value in
                         (line.partition(":") for line in lscpu.splitlines()) if key.strip() in wanted}
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import cryptography

        info["cryptography"] = cryptography.__version__
    except ImportError:
        pass
    return info


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"


def render(reports: Sequence[Report]) -> str:
    """Return the reports as a readable table: ratios first, then the absolute medians."""
    header = ("benchmark", "metric", "ratio", "target", "met", "pdx", "baseline", "unit", "baseline is")
    rows = [header]
    for report in reports:
        for c in report.comparisons:
            met = "" if c.met is None else ("yes" if c.met else "NO")
            ratio = f"{c.ratio:.3f}" if c.ratio >= 0.001 else f"{c.ratio:.1e}"
            rows.append((report.name, c.metric, ratio, str(c.target or ""), met, _number(c.value),
                         _number(c.baseline), c.unit, c.baseline_name))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for report in reports:
        if report.notes or report.profile:
            lines.append("")
            lines.append(f"{report.name} ({report.seconds:.0f} s):")
            lines.extend(f"  - {note}" for note in report.notes)
        if report.profile:
            lines.append("")
            lines.extend(report.profile)
    return "\n".join(lines) + "\n"


def to_json(reports: Sequence[Report], quick: bool, seconds: float) -> dict[str, object]:
    """Return the results as a JSON-ready mapping."""
    benchmarks = []
    for report in reports:
        item = asdict(report)
        for comparison, row in zip(report.comparisons, item["comparisons"]):
            row["met"] = comparison.met
            row["target"] = None if comparison.target is None else asdict(comparison.target)
        benchmarks.append(item)
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": quick,
            "seconds": round(seconds, 1), "machine": machine(), "benchmarks": benchmarks}


def write_json(results: dict[str, object], path: Path) -> Path:
    """Write the results to ``path`` (creating its folder) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def profile_call(run: Callable[[], object], count: int, per: str, include: Callable[[str, str], bool],
                 top: int = 14) -> list[str]:
    """Profile ``run()`` and return the functions ``include(file, function)`` keeps, by cumulative time.

    Times are per item (``count`` items) and as a share of the whole call; shares nest (a caller includes its
    callees), so they do not add up to 100 %.
    """
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(run)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # {(file, line, function): (calls, ncalls, tottime, cumtime, callers)}
    rows = sorted(((cum, _short(file, function)) for (file, _, function), (_, _, _, cum, _) in stats.items()
                   if include(file, function)), reverse=True)[:top]
    scale, unit = 1e6, "µs"
    width = max((len(name) for _, name in rows), default=0)
    lines = [f"  {'(whole call)':<{width}}  100.0 %  {total * scale / count:8.1f} {unit}/{per}"]
    lines += [f"  {name:<{width}}  {100 * cum / total:5.1f} %  {cum * scale / count:8.1f} {unit}/{per}"
              for cum, name in rows]
    return lines


def _short(file: str, function: str) -> str:
    """Name a profiled function briefly: ``ledger/log.py:append``, ``sqlalchemy/orm/session.py:flush``, a C method."""
    if file == "~":
        return function.replace("cryptography.hazmat.bindings._rust.openssl.", "")
    for marker in ("/site-packages/", str(Path(__file__).resolve().parents[1]) + "/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{function}"
