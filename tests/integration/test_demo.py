"""`pdx demo --no-serve` walks the whole story with real processes: nodes, exchange, HE statistics and encrypted
scoring beside the plaintext truth, and the offline audit of the resulting ledger."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.servers import PDX, free_port

pytestmark = pytest.mark.slow  # the whole demo story: nine processes, HE jobs and a federated training


def test_the_demo_walks_the_story_and_every_encrypted_result_matches_the_truth(tmp_path):
    env = {**os.environ, "PDX_INSTANCE_DIR": str(tmp_path / "instance")}
    env.pop("PDX_DATABASE_URL", None)
    node_port = free_port()
    run = subprocess.run([*PDX, "demo", "--no-serve", "--port", str(free_port()), "--node-port", str(node_port)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    rows = re.findall(r"^  ([ABCDM])\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, re.MULTILINE)
    assert [r[0] for r in rows] == ["A", "B", "C", "D", "M"]
    assert all(r[1] == r[2] and r[3] == r[4] for r in rows)  # counts exact, means equal to 4 decimals
    scores = re.findall(r"P\(good\) = ([\d.]+)\s+plaintext ([\d.]+)", out)
    assert len(scores) == 5 and all(abs(float(a) - float(b)) < 1e-5 for a, b in scores)
    histogram = re.search(r"employees histogram (\[[^\]]*\]) vs (\[[^\]]*\])", out)
    assert histogram.group(1) == histogram.group(2)
    assert re.search(r"ledger: \d+ entries, 3 jobs completed, 1 federated training\(s\) of 11 rounds, verified "
                     r"offline by the auditor", out)
    rounds = re.findall(r"round +(\d+) +2550 rows from 3 cities +validation accuracy ([\d.]+)", out)
    assert [int(r[0]) for r in rounds] == list(range(1, 11))
    federated_accuracy, pooled = re.search(r"federated model: accuracy ([\d.]+); the same training on the pooled "
                                           r"plaintext rows: ([\d.]+)", out).groups()
    assert abs(float(federated_accuracy) - float(pooled)) <= 0.01
    assert (tmp_path / "instance" / "demo" / "risk-model-curve.png").read_bytes()[:4] == b"\x89PNG"
