"""The committed contract artifacts are what the pinned compiler makes of the committed sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from contracts import CHECKPOINT_ANCHOR, GRANT_REGISTRY, artifact

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def test_committed_artifacts_match_a_fresh_build_with_the_pinned_solc():
    node = shutil.which("node")
    assert node, "Node.js is needed to rebuild the contracts (the README's test command installs the npm packages)"
    assert (CONTRACTS / "node_modules" / "solc").is_dir(), "run `npm ci --prefix contracts` first"
    checked = subprocess.run([node, "build.mjs", "--check"], cwd=CONTRACTS, capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stderr
    assert "matches a fresh build" in checked.stdout


def test_artifacts_name_the_pinned_compiler_and_carry_abi_and_bytecode():
    lock = (CONTRACTS / "package.json").read_text()
    for name in (CHECKPOINT_ANCHOR, GRANT_REGISTRY):
        built = artifact(name)
        assert built["contractName"] == name
        assert built["compiler"]["version"].split("+")[0] in lock
        assert built["compiler"]["evmVersion"] == "paris"
        assert built["bytecode"].startswith("0x") and len(built["bytecode"]) > 1000
        assert {"anchor", "record"} & {item.get("name") for item in built["abi"]}
