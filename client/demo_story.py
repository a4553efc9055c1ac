"""The demo's live part: six provider nodes on loopback with seeded synthetic data, the exchange served, the
bank's story — homomorphic statistics and encrypted scoring beside the plaintext truth — and the institute's
federated training over three cities, then the offline audit."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import requests

from client.sdk import Consumer
from client.training import train
from common import processes
from privacy import federated
from privacy.aggregation import GroupBy, Histogram, StatisticsPlan
from privacy.federated import TrainingConfig
from provider import synthetic

NODES = ("market", "tax", "hrss")
CITIES = ("jinan", "qingdao", "yantai")  # the city data bureaus of the federated training
FIRMS = 2000
CITY_FIRMS = (700, 850, 1000)
RISK_CONFIG = TrainingConfig(rounds=10, local_epochs=5, learning_rate=0.5, l2=1e-3)


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
    for number, name in enumerate(CITIES):
        frames[name] = synthetic.risk_sample(number, CITY_FIRMS[number])
        frames[name].to_csv(folder / f"{name}.csv", index=False)
        asset = asset_ids[len(asset_ids) - len(CITIES) + number]
        (folder / f"{name}.toml").write_text(
            f'participant_id = "{participants[name]}"\nkey_file = "../keys/{name}.pem"\n'
            f'exchange_public_key = "{log_key}"\nissuer = "{issuer}"\nstate_dir = "{name}-state"\n'
            f'port = {ports[name]}\n\n[[datasets]]\nasset = "{asset}"\nname = "{asset}"\ngrade = 2\n'
            f'source = "csv"\nlocation = "{name}.csv"\nid_column = "uscc"\n', encoding="utf-8")
    return frames


def _answers(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            requests.get(url, timeout=10)
            return True
        except requests.RequestException:
            return False

    return probe


@contextmanager
def running(folder: Path, ports: dict[str, int], host: str, port: int, dev: bool = False) -> Iterator[str]:
    """Start the nodes and the exchange with this checkout's CLI; stop them all when the block ends.

    Each start waits for the health endpoint, watching the process, so a process that dies is reported at once
    and one that is merely slow (a loaded machine importing the scientific stack) is given minutes, not seconds.
    """
    started: list[subprocess.Popen] = []
    env = processes.checkout_env()
    try:
        for name in (*NODES, *CITIES):
            node = subprocess.Popen(processes.pdx_command("node", "serve", "--config", str(folder / f"{name}.toml")),
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append(node)
            processes.wait_ready(node, _answers(f"http://127.0.0.1:{ports[name]}/v1/health"),
                                 what=f"the {name} node (port {ports[name]})")
        exchange = subprocess.Popen(processes.pdx_command("serve", "--host", host, "--port", str(port), "--workers",
                                                          "2", *(["--dev"] if dev else [])),
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(exchange)
        processes.wait_ready(exchange, _answers(f"http://{host}:{port}/api/v1/health"),
                             what=f"the exchange (port {port})")
        yield f"http://{host}:{port}"
    finally:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
        for process in started:
            processes.stop(process)


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
    for uscc, probability, logit in zip(applicants, scores["probability"], logits):
        say(f"  {uscc}  P(good) = {probability:.6f}   plaintext {1 / (1 + np.exp(-logit)):.6f}")


def federated_story(institute: Consumer, frames: dict[str, pd.DataFrame], assets: list[str], grant: str,
                    participants: dict[str, str], plot: Path, say: Callable[[str], None]) -> None:
    """The institute trains an operating-risk model over the three cities' samples (联邦学习), each round's update
    encrypted at its node and summed at the exchange (every city in every round: there is no noise to hide one)."""
    features = list(synthetic.RISK_FEATURES)
    holdout = [synthetic.risk_sample(number, 200, seed=77) for number in range(len(CITIES))]
    validation = (np.vstack([h[features].to_numpy() for h in holdout]),
                  np.concatenate([h["abnormal"].to_numpy() for h in holdout]))
    say("\n联邦学习 federated training of an operating-risk model over Jinan, Qingdao and Yantai (rows stay home):")

    def progress(entry: dict) -> None:
        if not entry["leave_one_out"]:
            say(f"  round {entry['training_round']:>2}  {entry['rows']} rows from {len(entry['providers'])} cities  "
                f"validation accuracy {entry['metrics']['accuracy']:.4f}  log-loss {entry['metrics']['loss']:.4f}")

    result = train(institute, grant, assets, features=features, label="abnormal", config=RISK_CONFIG,
                   rows=sum(CITY_FIRMS), validation=validation, progress=progress)
    pooled = [(pd.concat([frames[c] for c in CITIES])[features].to_numpy(),
               pd.concat([frames[c] for c in CITIES])["abnormal"].to_numpy())]
    central = federated.train(pooled, RISK_CONFIG)
    say(f"  federated model: accuracy {federated.accuracy(result.model, *validation):.4f}; the same training on the "
        f"pooled plaintext rows: {federated.accuracy(central, *validation):.4f}")
    say("  contributions by leave-one-out need a differentially private training (without noise, two subsets' "
        "sums would show one city's update): not measured here")
    say(f"  training curve: {result.plot(str(plot), 'operating-risk model, federated over three cities')}")
