"""Training curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def training_curve(history: Sequence[dict[str, Any]], path: str | Path, title: str) -> str:
    """Write the validation metric and loss per round of a federated training; return the path written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    rounds = [entry.get("training_round", entry["round"]) for entry in history if not entry.get("leave_one_out")]
    main = [entry for entry in history if not entry.get("leave_one_out")]
    metric = next((name for name in ("accuracy", "r2") if main and name in main[0]["metrics"]), None)
    figure, left = pyplot.subplots(figsize=(7, 4), dpi=120)
    try:
        if metric is not None:
            left.plot(rounds, [e["metrics"][metric] for e in main], marker="o", color="tab:blue", label=metric)
            left.set_ylabel(metric, color="tab:blue")
        if main and "loss" in main[0]["metrics"]:
            right = left.twinx()
            right.plot(rounds, [e["metrics"]["loss"] for e in main], marker="s", color="tab:red", label="loss")
            right.set_ylabel("validation loss", color="tab:red")
        left.set_xlabel("round")
        left.xaxis.set_major_locator(MaxNLocator(integer=True))
        left.set_title(title)
        left.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        pyplot.close(figure)
    return str(path)
