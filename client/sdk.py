"""The consumer SDK: compute on providers' data without the data or the result ever being readable by anyone else.

The SDK makes a CKKS key pair per job; only the public context leaves this machine. Each provider node encrypts
its partial aggregates under that context, the exchange adds the ciphertexts without being able to read them, and
only here are they decrypted and finished into statistics.

Every call is submit → store → wait → ``result``: right after the exchange admits a job, its parameters and key
are written to the local job store (``client/jobstore.py``), so a result the call gave up waiting for stays
fetchable and decryptable later, by ``Consumer.result(job_id)`` or ``pdx job result <id>``.

    from client.sdk import Consumer
    from privacy.aggregation import StatisticsPlan
    bank = Consumer("http://127.0.0.1:5000", token, keys.load("bank.pem"))
    result = bank.statistics(grant_id, [tax_asset, hr_asset], StatisticsPlan(columns=("vat_paid",)), rows=40_000)
    result.columns            # pandas DataFrame: count, sum, mean, variance, sample_variance per column
    bank.result(result.job_id)  # the same result again, from the store, at any later time
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.http import DEFAULT_URL, ExchangeClient
from client.jobstore import JobStore
from common.vocab import ComputationKind, JobStatus
from privacy import aggregation, fixedpoint, release, scoring
from privacy.he import ConsumerKeys, sigmoid

POLL_SECONDS = 0.5
FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})


class JobFailed(Exception):
    """The exchange could not complete the job; the message is the recorded reason."""


class JobPending(JobFailed):
    """The job has not finished yet: its result can be fetched later (``Consumer.result``, `pdx job result`)."""


@dataclass(frozen=True)
class StatisticsResult:
    """Finished statistics as DataFrames, with the job they came from.

    Under differential privacy every figure is noised and post-processed (counts ≥ 0, means within the bounds);
    ``intervals`` then holds each figure's confidence interval and the Laplace scale of its noise, and ``noise``
    the calibration (ε share, sensitivity, scale) of every released statistic. Both are None for exact results.
    """

    job_id: str
    count: int
    columns: pd.DataFrame
    histogram: pd.DataFrame | None
    groups: pd.DataFrame | None
    statistics: aggregation.Statistics
    intervals: pd.DataFrame | None = None
    noise: pd.DataFrame | None = None


COLUMN_FIELDS = ["column", "count", "sum", "mean", "variance", "sample_variance"]


def _frames(plan: aggregation.StatisticsPlan, stats: aggregation.Statistics):
    # Built with its column names, so that a plan of counts only (no numeric column) gives an empty table.
    columns = pd.DataFrame(
        [{"column": name, "count": stats.count, "sum": c.sum, "mean": c.mean, "variance": c.variance,
          "sample_variance": c.sample_variance} for name, c in stats.columns.items()],
        columns=COLUMN_FIELDS).set_index("column")
    histogram = None
    if plan.histogram is not None:
        edges = list(plan.histogram.edges)
        histogram = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "count": list(stats.histogram)})
    groups = None
    if stats.groups:
        groups = pd.DataFrame([{"group": label, "count": g.count, **{f"sum_{c}": s for c, s in g.sums.items()},
                                **{f"mean_{c}": m for c, m in g.means.items()}}
                               for label, g in stats.groups.items()]).set_index("group")
    return columns, histogram, groups


def _statistics_result(job_id: str, record: Mapping[str, Any], values: np.ndarray, noise: Mapping[str, Any] | None
                       ) -> StatisticsResult:
    """Finish a statistics job from its decrypted fixed-point digits (post-processed with intervals when noised)."""
    plan = aggregation.StatisticsPlan.from_dict(record["params"]["plan"])
    total = fixedpoint.decode(values, aggregation.layout(plan).size)
    if noise is None:
        stats = aggregation.finish(plan, total)
        return StatisticsResult(job_id, stats.count, *_frames(plan, stats), stats)
    private = release.finish(plan, total, release.Release.from_json(noise))
    stats = private.statistics
    intervals = pd.DataFrame([{"statistic": i.statistic, "estimate": i.estimate, "low": i.low, "high": i.high,
                               "coverage": i.coverage, "at_least": i.at_least, "noise_scale": i.scale}
                              for i in private.intervals]).set_index("statistic")
    calibration = pd.DataFrame([{"statistic": s.name, "epsilon": s.epsilon, "sensitivity": s.sensitivity,
                                 "noise_scale": s.scale, "discrete": s.integer}
                                for s in private.release.statistics]).set_index("statistic")
    return StatisticsResult(job_id, stats.count, *_frames(plan, stats), stats, intervals, calibration)


def _scores_result(record: Mapping[str, Any], decrypted: np.ndarray) -> pd.DataFrame:
    """Finish a scoring job: the scores w·x + b by id (the plan's power-of-two shift undone) with their stated
    absolute error, and the probability for a logistic model (the sigmoid's slope is at most 1/4)."""
    ids = record["params"]["ids"]
    scores = np.ldexp(np.asarray(decrypted, dtype=np.float64)[:len(ids)], -int(record["shift"]))
    frame = pd.DataFrame({"id": list(ids), "score": scores, "error": float(record["error"])}).set_index("id")
    if record["logistic"]:
        frame["probability"] = sigmoid(frame["score"].to_numpy())
    frame.attrs["job_id"] = record["job_id"]
    frame.attrs["error_bound"] = float(record["error"])
    return frame


class Consumer:
    """A consumer's handle on the exchange: submits jobs, waits for them, decrypts and finishes the results.

    ``store`` is the local job store's folder (default ``$PDX_HOME/jobs`` or ``~/.pdx/jobs``).
    """

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None,
                 signing_key: Ed25519PrivateKey | None = None, *, store: Path | str | None = None) -> None:
        self.exchange = ExchangeClient(url, token, signing_key)
        self.store = JobStore(store)

    def _submit(self, body: dict[str, Any], keys: ConsumerKeys, record: dict[str, Any]) -> str:
        # The job is admitted (and charged) by the 201; until the store is written, a crash loses its key.
        job = self.exchange.post("/jobs", body)
        self.store.save(job["id"], {"exchange": self.exchange.base_url, "grant": body["grant"],
                                    "assets": body["assets"], "computation_kind": body["computation_kind"],
                                    **record}, keys)
        return job["id"]

    def result(self, job_id: str):
        """Return a stored job's finished result — ``StatisticsResult`` or a scores DataFrame — at any later time.

        Raises ``JobPending`` while it still runs and ``JobFailed`` with the recorded reason if it failed.
        """
        record, keys = self.store.load(job_id)
        status = self.exchange.get(f"/jobs/{job_id}")["status"]
        if status not in FINISHED:
            raise JobPending(f"job {job_id} is still {status}; fetch it later with `pdx job result {job_id}`")
        outcome = self.exchange.get(f"/jobs/{job_id}/result")
        if outcome["error"] is not None:
            raise JobFailed(outcome["error"])
        ciphertext = base64.b64decode(outcome["result"])
        if record["computation_kind"] == ComputationKind.HE_SCORING:
            return _scores_result(record, keys.decrypt_scores(ciphertext))
        return _statistics_result(job_id, record, keys.decrypt(ciphertext), outcome.get("release"))

    def wait(self, job_id: str, timeout: float, progress: Callable[[str, float], None] | None = None) -> dict:
        """Poll a job until it has completed or failed; ``progress`` is told its status and the seconds waited."""
        started = time.monotonic()
        while True:
            job = self.exchange.get(f"/jobs/{job_id}")
            waited = time.monotonic() - started
            if progress is not None:
                progress(job["status"], waited)
            if job["status"] in FINISHED:
                return job
            if waited > timeout:
                raise JobPending(f"job {job_id} is still {job['status']} after {timeout:.0f} s; its result stays "
                                 f"fetchable: `pdx job result {job_id}` or Consumer.result({job_id!r})")
            time.sleep(POLL_SECONDS)

    def statistics(self, grant: str, assets: Sequence[str], plan: aggregation.StatisticsPlan, *, rows: int,
                   epsilon: float = 0.0, bounds: Mapping[str, tuple[float, float]] | None = None,
                   timeout: float = 600, progress: Callable[[str, float], None] | None = None) -> StatisticsResult:
        """Run homomorphic statistics over the assets under a grant and return them, decrypted here.

        Under a grant with a privacy budget, ``epsilon`` is spent and each column needs ``bounds`` (values are
        clipped to them and Laplace noise is added by every node before encryption).
        """
        keys = ConsumerKeys()
        plan = release.centred(plan, bounds) if epsilon > 0 else plan
        shape = aggregation.layout(plan)
        params = {"plan": plan.to_dict(), **({"bounds": {c: list(b) for c, b in bounds.items()}} if bounds else {})}
        body = {"grant": grant, "assets": list(assets), "computation_kind": ComputationKind.HE_STATISTICS, "params": params,
                "context": base64.b64encode(keys.public_context()).decode(),
                "rows": rows, "epsilon": epsilon, "group_size": plan.min_group_size, "result_cells": shape.size}
        job_id = self._submit(body, keys, {"params": params, "epsilon": epsilon})
        self.wait(job_id, timeout, progress)
        return self.result(job_id)

    def score(self, grant: str, parts: Mapping[str, Sequence[str]], weights: Mapping[str, Sequence[float]],
              bias: float, ids: Sequence[str], *, logistic: bool = False,
              ranges: Mapping[str, tuple[float, float]] | None = None, timeout: float = 600,
              progress: Callable[[str, float], None] | None = None) -> pd.DataFrame:
        """Score the rows named by ``ids`` with a linear or logistic model whose features may live at several
        providers (``parts``: asset → its feature columns; ``weights``: asset → the weights of those columns).

        The weights are encrypted here; each node multiplies its plain columns by them, the exchange adds the
        partial scores, and only this process can decrypt the result. Each feature is scaled by its range: the
        ``minimum``/``maximum`` its asset declares, overridden by ``ranges`` (feature → (low, high)), else
        ``privacy.scoring.DEFAULT_RANGE``; a node refuses values beyond it. Returns ``score`` (w·x + b) and
        ``error`` (its stated absolute error bound, also in ``attrs["error_bound"]``) by id, and ``probability``
        (the sigmoid, within error/4) for a logistic model.
        """
        keys = ConsumerKeys()
        declared = {asset: scoring.declared_ranges(self.exchange.get(f"/assets/{asset}")["fields"]) for asset in parts}
        plan = scoring.plan(parts, weights, bias, scoring.resolve_ranges(parts, declared, ranges or {}),
                            poly_modulus_degree=keys.parameters.poly_modulus_degree,
                            scale_bits=keys.parameters.scale_bits)
        encrypted = {asset: keys.encrypt_weights(part.weights, part.bias) for asset, part in plan.parts.items()}
        assets = list(plan.parts)
        params = {"ids": [str(i) for i in ids], "parts": {
            asset: {"features": list(part.features), "exponents": list(part.exponents),
                    "weights_sha256": hashlib.sha256(encrypted[asset]).hexdigest()}
            for asset, part in plan.parts.items()}}
        payload = json.dumps({asset: base64.b64encode(blob).decode() for asset, blob in encrypted.items()})
        body = {"grant": grant, "assets": assets, "computation_kind": ComputationKind.HE_SCORING, "params": params,
                "context": base64.b64encode(keys.public_context()).decode(),
                "weights": base64.b64encode(payload.encode()).decode(), "rows": len(ids) * len(assets),
                "group_size": 1, "result_cells": len(ids)}
        job_id = self._submit(body, keys, {"params": {"ids": params["ids"]}, "logistic": logistic,
                                           "shift": plan.shift, "error": plan.error})
        self.wait(job_id, timeout, progress)
        return self.result(job_id)
