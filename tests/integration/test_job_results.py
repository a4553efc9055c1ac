"""Results outlive the call that submitted the job: the SDK stores each job's key right after admission, so a
result is fetched and decrypted later (`Consumer.result`, `pdx job result`) even after the submitting call died;
and plans of counts only (no numeric column) finish end to end."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from client.cli import main
from client.sdk import Consumer, JobFailed
from privacy.aggregation import GroupBy, Histogram, StatisticsPlan
from tests.nodes import INDUSTRIES, ROWS


class Crash(Exception):
    """The consumer's process dies while it waits."""


def _crash(status: str, waited: float) -> None:
    raise Crash(status)


def _bank(net, store) -> Consumer:
    return Consumer(net["url"], net["consumer"].token, net["consumer"].key, store=store)


def test_a_statistics_result_is_decrypted_later_after_the_submitting_call_died(exchange_in_process, tmp_path):
    net = exchange_in_process
    store = tmp_path / "jobs"
    with pytest.raises(Crash):
        _bank(net, store).statistics(net["grant"](), net["assets"], StatisticsPlan(columns=("revenue",)), rows=ROWS * 2,
                                     progress=_crash)
    (job_id,) = [p.name for p in store.iterdir()]
    assert stat.S_IMODE((store / job_id / "key").stat().st_mode) == 0o600
    assert stat.S_IMODE((store / job_id).stat().st_mode) == 0o700
    later = _bank(net, store)  # a new process: only the store carries the key
    later.wait(job_id, timeout=300)
    result = later.result(job_id)
    pooled = np.concatenate([f["revenue"].to_numpy() for f in net["frames"]])
    assert result.job_id == job_id and result.count == pooled.size
    assert result.columns.loc["revenue", "mean"] == pytest.approx(pooled.mean(), rel=1e-6)


def test_pdx_job_result_prints_a_stored_result_as_a_table_and_as_json(exchange_in_process, pdx_home):
    net = exchange_in_process
    result = _bank(net, None).statistics(net["grant"](), net["assets"], StatisticsPlan(columns=("employees",)),
                                         rows=ROWS * 2)
    assert (pdx_home / "jobs" / result.job_id / "key").is_file()  # PDX_HOME places the default store
    arguments = ["job", "result", result.job_id, "--url", net["url"], "--token", net["consumer"].token]
    table = CliRunner().invoke(main, arguments)
    assert table.exit_code == 0, table.output
    assert f"{ROWS * 2} rows" in table.stdout and "employees" in table.stdout
    printed = CliRunner().invoke(main, [*arguments, "--json"])
    assert printed.exit_code == 0, printed.output
    body = json.loads(printed.stdout)
    assert body["count"] == ROWS * 2
    assert body["columns"]["employees"]["mean"] == pytest.approx(result.columns.loc["employees", "mean"])
    unknown = CliRunner().invoke(main, ["job", "result", "job_unknown", "--url", net["url"], "--token",
                                        net["consumer"].token])
    assert unknown.exit_code != 0 and "no job job_unknown" in unknown.output


def test_scores_are_fetched_again_by_their_job_id(exchange_in_process, tmp_path):
    net = exchange_in_process
    tax = net["assets"][0]
    bank = _bank(net, tmp_path / "jobs")
    ids = list(net["frames"][0]["uscc"][:20])
    scores = bank.score(net["grant"](min_group_size=1), {tax: ["revenue", "employees"]}, {tax: [0.01, 0.02]}, 0.5, ids)
    again = bank.result(scores.attrs["job_id"])
    assert list(again.index) == ids
    assert np.allclose(again["score"].to_numpy(), scores["score"].to_numpy())


def test_a_failed_job_stays_failed_when_fetched_later(exchange_in_process, tmp_path):
    net = exchange_in_process
    bank = _bank(net, tmp_path / "jobs")
    tiny = StatisticsPlan(columns=("revenue",), row_filter=(("uscc", "==", "91370000001"),))
    with pytest.raises(JobFailed, match="refused"):
        bank.statistics(net["grant"](), net["assets"], tiny, rows=ROWS * 2)
    (job_id,) = [p.name for p in (tmp_path / "jobs").iterdir()]
    with pytest.raises(JobFailed, match="refused"):
        bank.result(job_id)


def test_a_plan_of_counts_only_finishes_end_to_end(exchange_in_process, tmp_path):
    net = exchange_in_process
    plan = StatisticsPlan(histogram=Histogram("employees", (0, 100, 400)), group_by=GroupBy("industry", INDUSTRIES))
    result = _bank(net, tmp_path / "jobs").statistics(net["grant"](), net["assets"], plan, rows=ROWS * 2)
    pooled = np.concatenate([f["employees"].to_numpy() for f in net["frames"]])
    industries = np.concatenate([f["industry"].to_numpy() for f in net["frames"]])
    assert result.count == ROWS * 2 and result.columns.empty
    assert list(result.histogram["count"]) == list(np.histogram(pooled, bins=[0, 100, 400])[0])
    for industry in INDUSTRIES:
        assert result.groups.loc[industry, "count"] == int((industries == industry).sum())
