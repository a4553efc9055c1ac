"""Against a real JSON-RPC node: anvil (npm @foundry-rs/anvil) on a free loopback port. The demo anchors and the
auditor verifies against the chain; a served exchange anchors in the background; the regulator flags an anchor;
the CLI shows the backlog."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from common import crypto
from contracts import anvil
from tests.servers import PDX, free_port, serving

pytestmark = pytest.mark.slow  # a real EVM node (anvil), the demo and a served exchange anchoring to it


@pytest.fixture(scope="module")
def chain_url():
    with anvil.running() as url:
        yield url


def _run(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PDX, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_demo_anchors_its_ledger_and_grants_and_the_auditor_verifies_them_against_the_chain(chain_url, tmp_path):
    env = {**os.environ, "PDX_INSTANCE_DIR": str(tmp_path / "instance"), "PDX_CHAIN_URL": chain_url}
    env.pop("PDX_DATABASE_URL", None)
    run = _run("demo", "--no-serve", "--port", str(free_port()), "--node-port", str(free_port()), env=env,
               cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    deployed = re.search(r"CheckpointAnchor (0x[0-9a-fA-F]{40}), GrantRegistry (0x[0-9a-fA-F]{40}); (\d+) grant", run.stdout)
    assert deployed and int(deployed.group(3)) == 3  # the bank's two grants and the institute's, active before deployment
    ledger = re.search(r"ledger: (\d+) entries, 3 jobs completed", run.stdout)
    anchored = re.search(r"the chain's (\d+) anchor\(s\) agree with the ledger \(the newest covers (\d+) entries\) "
                         r"and its registry's (\d+) grant status change\(s\)", run.stdout)
    assert anchored, run.stdout[-2000:]
    assert int(anchored.group(1)) >= 1 and anchored.group(2) == ledger.group(1) and anchored.group(3) == "3"


@pytest.fixture(scope="module")
def served_on_chain(chain_url, tmp_path_factory):
    """The demo exchange seeded (and its contracts deployed) by `pdx demo --seed-only`, served by `pdx serve`."""
    workdir = tmp_path_factory.mktemp("served-chain")
    env = {**os.environ, "PDX_INSTANCE_DIR": str(workdir / "instance"), "PDX_CHAIN_URL": chain_url,
           "PDX_CHAIN_INTERVAL_SECONDS": "1"}
    env.pop("PDX_DATABASE_URL", None)
    seeded = _run("demo", "--seed-only", env=env, cwd=workdir)
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    demo_dir = workdir / "instance" / "demo"
    env["PDX_DATABASE_URL"] = f"sqlite:///{demo_dir / 'demo.sqlite3'}"
    env["PDX_LOG_KEY_FILE"] = str(demo_dir / "log.key")
    anchor_address = re.search(r"CheckpointAnchor (0x[0-9a-fA-F]{40})", seeded.stdout).group(1)
    with serving(env, workers=2, extra=(), cwd=workdir) as url:
        yield {"url": url, "env": env, "workdir": workdir, "anchor": anchor_address,
               "tokens": json.loads((demo_dir / "tokens.json").read_text())["tokens"]}


def _status(served) -> dict:
    shown = _run("chain", "status", "--json", env=served["env"], cwd=served["workdir"])
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def _caught_up(served, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = _status(served)
        if status["anchored_size"] == status["ledger_size"] and status["pending_mirrors"] == 0:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


def test_a_served_exchange_anchors_in_the_background_and_a_regulator_verifies_it_with_the_cli(served_on_chain):
    served = served_on_chain
    status = _caught_up(served)
    assert status["deployed"] and status["confirmed_mirrors"] == 3 and status["failures"] == 0
    text = _run("chain", "status", env=served["env"], cwd=served["workdir"]).stdout
    assert f"anchored size    {status['ledger_size']}" in text and "0 anchor(s), 0 grant change(s)" in text
    exported = _export_and_verify(served)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert re.search(r"anchors\s+\d+ agree with the export \(newest covers \d+ entries; 0 entries not anchored",
                     exported.stdout)
    assert "3 status change(s) of 3 grant(s) each backed by its ledger entry" in exported.stdout


def test_the_regulator_flags_an_anchor_and_the_auditor_shows_the_flag(served_on_chain, tmp_path):
    served = served_on_chain
    _caught_up(served)
    key_file = tmp_path / "regulator.key"
    key_file.write_text(anvil.DEV_REGULATOR_KEY)
    flagged = _run("chain", "flag", "0", "--reason", "checkpoint shown to the bureau differs", "--chain",
                   served["env"]["PDX_CHAIN_URL"], "--anchor", served["anchor"], "--key-file", str(key_file),
                   env=served["env"], cwd=served["workdir"])
    assert flagged.returncode == 0, flagged.stderr
    again = _run("chain", "flag", "0", "--reason", "twice", "--chain", served["env"]["PDX_CHAIN_URL"], "--anchor",
                 served["anchor"], "--key-file", str(key_file), env=served["env"], cwd=served["workdir"])
    assert again.returncode != 0 and "AlreadyFlagged(index=0)" in again.stderr
    operator_key = tmp_path / "operator.key"
    operator_key.write_text(anvil.DEV_ACCOUNT_KEY)
    not_regulator = _run("chain", "flag", "0", "--reason", "x", "--chain", served["env"]["PDX_CHAIN_URL"], "--anchor",
                         served["anchor"], "--key-file", str(operator_key), env=served["env"], cwd=served["workdir"])
    assert not_regulator.returncode != 0 and "AccessControlUnauthorizedAccount" in not_regulator.stderr
    verified = _export_and_verify(served)
    assert verified.returncode == 0 and "FLAGGED       anchor 0" in verified.stdout
    assert "checkpoint shown to the bureau differs" in verified.stdout


def test_the_auditor_reports_an_export_the_chain_contradicts(served_on_chain, tmp_path):
    served = served_on_chain
    _caught_up(served)
    export_file = tmp_path / "ledger.jsonl"
    _export(served, export_file)
    # the operator's log key re-signs a rewritten history: the export verifies alone, the chain contradicts it
    rewritten = tmp_path / "rewritten.jsonl"
    _rewrite(served, export_file, rewritten)
    alone = _run("audit", "verify", str(rewritten), "--operator-key", _log_key(served), env=served["env"],
                 cwd=served["workdir"])
    assert alone.returncode == 0, alone.stdout
    against_chain = _run("audit", "verify", str(rewritten), "--operator-key", _log_key(served), "--chain",
                         served["env"]["PDX_CHAIN_URL"], "--anchor", served["anchor"], env=served["env"],
                         cwd=served["workdir"])
    assert against_chain.returncode == 1 and "[chain-root]" in against_chain.stdout
    assert "split view" in against_chain.stdout


def _log_key(served) -> str:
    from common.keyfiles import load

    return crypto.public_key_text(load(Path(served["env"]["PDX_LOG_KEY_FILE"])).public_key())


def _export(served, out: Path) -> None:
    regulator = served["tokens"]["regulator"]
    exported = _run("ledger", "export", "--out", str(out), "--url", served["url"], "--token", regulator,
                    env=served["env"], cwd=served["workdir"])
    assert exported.returncode == 0, exported.stderr


def _export_and_verify(served) -> subprocess.CompletedProcess:
    out = served["workdir"] / f"export-{time.monotonic_ns()}.jsonl"
    _export(served, out)
    return _run("audit", "verify", str(out), "--operator-key", _log_key(served), "--chain",
                served["env"]["PDX_CHAIN_URL"], "--anchor", served["anchor"], env=served["env"],
                cwd=served["workdir"])


def _rewrite(served, original: Path, out: Path) -> None:
    """Re-sign the export with the log key after moving its last (system) entry a microsecond later: a different
    history that the log key vouches for, with a fresh checkpoint over it."""
    from common.keyfiles import load
    from ledger import entries, merkle, notes

    key = load(Path(served["env"]["PDX_LOG_KEY_FILE"]))
    lines = [json.loads(line) for line in original.read_text(encoding="utf-8").splitlines()]
    header, records = lines[0], [line for line in lines if "seq" in line]
    last = entries.parse(records[-1]["entry"].encode())
    assert last["request"] is None, "the rewrite needs a system entry last"
    stamp = datetime.strptime(last["time"], "%Y-%m-%dT%H:%M:%S.%fZ") + timedelta(microseconds=1)
    last["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = entries.canonical(last)
    records[-1] = {"seq": last["seq"], "entry": data.decode(), "operator_sig": crypto.sign(key, entries.ENTRY_CONTEXT
                                                                                           + data)}
    tree = merkle.MemoryTree(merkle.leaf_hash(r["entry"].encode()) for r in records)
    checkpoint = notes.Checkpoint(header["origin"], len(records), tree.root())
    note = notes.note(checkpoint, [notes.sign_checkpoint(checkpoint, header["origin"], key)])
    rewritten = [header, *records, {"checkpoint": note}, {"end": {"entries": len(records), "checkpoints": 1}}]
    out.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in rewritten), encoding="utf-8")
