"""Run anvil, the local EVM node from the npm package ``@foundry-rs/anvil`` (``npm ci --prefix contracts``).

Tests and benchmarks start it on a free loopback port; for the demo, start it yourself (``npx --prefix contracts
anvil``) and point PDX_CHAIN_URL at it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import requests

from common import processes

HERE = Path(__file__).resolve().parent
START_TIMEOUT_SECONDS = 90  # generous: a loaded machine is slow to start even a native binary
# anvil's first development account (from its default mnemonic): funded, and a known key, for development only
DEV_ACCOUNT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_REGULATOR_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # its second account


class AnvilMissing(RuntimeError):
    """anvil is not installed where the contracts' npm packages go."""


def binary() -> str:
    """Return the path of the anvil launcher installed by ``npm ci --prefix contracts``."""
    found = HERE / "node_modules" / ".bin" / "anvil"
    if found.exists():
        return str(found)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise AnvilMissing(f"anvil is not installed: run `npm ci --prefix {HERE}` (it installs @foundry-rs/anvil)")


def running(*, block_time: float | None = None, chain_id: int = 31337) -> contextlib.AbstractContextManager[str]:
    """Run anvil on a free loopback port until the block ends; yield its JSON-RPC URL once it answers.

    ``block_time`` mines a block every so many seconds, as a real network does; None mines each transaction at once.
    """
    port = processes.free_port()
    command = [binary(), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id), "--silent"]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                          timeout=2).raise_for_status()
            return True
        except requests.RequestException:
            return False

    @contextlib.contextmanager
    def node() -> Iterator[str]:
        with processes.running(command, answers, what="anvil", timeout=START_TIMEOUT_SECONDS):
            yield url

    return node()
