"""The demo's live part: three provider nodes on loopback with seeded synthetic data, the exchange served, and the
bank's story — homomorphic statistics and encrypted scoring beside the plaintext truth — then the offline audit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import requests

from client.sdk import Consumer
from privacy.aggregation import GroupBy, Histogram, StatisticsPlan
from provider import synthetic

PDX = str(Path(sys.executable).parent / "pdx")
NODES = ("market", "tax", "hrss")
FIRMS = 2000


def write_node_data(folder: Path, participants: dict[str, str], asset_ids: list[str], log_key: str, issuer: str,
                    ports: dict[str, int]) -> dict[str, pd.DataFrame]:
    """Write each node's CSV and TOML configuration into ``folder`` and return the data (the plaintext truth)."""
    firms = synthetic.enterprises(FIRMS)
    frames = {"market": firms[["uscc", "registered_capital", "industry"]].assign(
                  founded_on="2015-06-01", status="存续"),
              "tax": synthetic.tax_filings(firms), "hrss": synthetic.insurance(firms)}
    folder.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(NODES):
        frames[name].to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.toml").write_text(
            f'participant_id = "{participants[name]}"\nkey_file = "../keys/{name}.pem"\n'
            f'exchange_public_key = "{log_key}"\nissuer = "{issuer}"\nstate_dir = "{name}-state"\n'
            f'port = {ports[name]}\n\n[[datasets]]\nasset = "{asset_ids[number]}"\nname = "{asset_ids[number]}"\n'
            f'grade = {3 if name != "market" else 2}\nsource = "csv"\nlocation = "{name}.csv"\nid_column = "uscc"\n',
            encoding="utf-8")
    return frames


def _wait(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.3)


@contextmanager
def running(folder: Path, ports: dict[str, int], host: str, port: int, dev: bool = False) -> Iterator[str]:
    """Start the nodes and the exchange; stop them all when the block ends."""
    processes = []
    try:
        for name in NODES:
            node = subprocess.Popen([PDX, "node", "serve", "--config", str(folder / f"{name}.toml")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(node)
            _wait(f"http://127.0.0.1:{ports[name]}/v1/health", node, f"the {name} node")
        exchange = subprocess.Popen([PDX, "serve", "--host", host, "--port", str(port), "--workers", "2",
                                     *(["--dev"] if dev else [])],
                                    env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(exchange)
        _wait(f"http://{host}:{port}/api/v1/health", exchange, "the exchange")
        yield f"http://{host}:{port}"
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def story(bank: Consumer, frames: dict[str, pd.DataFrame], assets: list[str], grant: str, scoring_grant: str,
          say: Callable[[str], None]) -> None:
    """The bank's SME credit-scoring story, each result printed beside the plaintext truth."""
    tax, hrss = frames["tax"], frames["hrss"]
    plan = StatisticsPlan(columns=("vat_paid", "cit_paid"), group_by=GroupBy("credit_rating", synthetic.RATINGS),
                          min_group_size=20)
    result = bank.statistics(grant, [assets[1]], plan, rows=len(tax))
    truth = tax.groupby("credit_rating")["vat_paid"].agg(["count", "mean"])
    say("\n同态加密统计 HE statistics over the tax bureau's filings (the bank never sees a record):")
    say(f"  {'rating':<8}{'firms (HE)':>12}{'firms (truth)':>15}{'mean VAT (HE)':>16}{'mean VAT (truth)':>18}")
    for rating in synthetic.RATINGS:
        row = result.groups.loc[rating]
        say(f"  {rating:<8}{int(row['count']):>12}{int(truth.loc[rating, 'count']):>15}"
            f"{row['mean_vat_paid']:>16.4f}{truth.loc[rating, 'mean']:>18.4f}")
    plan = StatisticsPlan(columns=("insured_employees", "contribution_base"),
                          histogram=Histogram("insured_employees", (0, 5, 20, 100, 10_000)), min_group_size=20)
    result = bank.statistics(grant, [assets[2]], plan, rows=len(hrss))
    say("\n社保 social insurance (HE vs truth):")
    for column in plan.columns:
        row = result.columns.loc[column]
        say(f"  {column:<18} mean {row['mean']:.4f} vs {hrss[column].mean():.4f}   variance {row['variance']:.4f} "
            f"vs {hrss[column].var(ddof=0):.4f}")
    say(f"  employees histogram {list(result.histogram['count'])} vs "
        f"{[int(n) for n in np.histogram(hrss['insured_employees'], bins=[0, 5, 20, 100, 10_000])[0]]}")
    applicants = list(tax["uscc"].iloc[:5])
    parts = {assets[1]: ["vat_paid", "months_late"], assets[2]: ["insured_employees"]}
    weights = {assets[1]: [0.02, -0.8], assets[2]: [0.03]}
    scores = bank.score(scoring_grant, parts, weights, -0.5, applicants, logistic=True)
    logits = (-0.5 + tax.set_index("uscc").loc[applicants, ["vat_paid", "months_late"]].to_numpy() @ [0.02, -0.8]
              + hrss.set_index("uscc").loc[applicants, ["insured_employees"]].to_numpy() @ [0.03])
    say("\n加密评分 encrypted credit scoring of five applicants (features at two providers):")
    for uscc, probability, logit in zip(applicants, scores["score"], logits):
        say(f"  {uscc}  P(good) = {probability:.6f}   plaintext {1 / (1 + np.exp(-logit)):.6f}")
