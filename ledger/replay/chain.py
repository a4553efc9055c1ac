"""Replay rule for the chain deployment entry (`pdx chain deploy`, see ledger.anchor). Pure."""

from __future__ import annotations

import re

from ledger.entries import SYSTEM_ACTOR
from ledger.replay.base import ReplayError, Rule, State

DEPLOYED = "chain.deployed"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)


def _deployed(state: State, entry: dict) -> None:
    body = entry["body"]
    if entry["actor"] != SYSTEM_ACTOR or entry["request"] is not None:
        raise ReplayError("chain-deployment", "a chain deployment is recorded by the exchange itself")
    if state.chain_deployments:
        raise ReplayError("chain-deployment", f"the log already recorded a deployment at entry "
                                              f"{state.chain_deployments[0][0]}; a second would split the record")
    for name in ("anchor", "registry", "sender"):
        if not isinstance(body[name], str) or not _ADDRESS.fullmatch(body[name]):
            raise ReplayError("malformed-entry", f"chain.deployed {name} {body[name]!r} is not an address")
    for name in ("chain_id", "block"):
        if type(body[name]) is not int or body[name] < 0:
            raise ReplayError("malformed-entry", f"chain.deployed {name} {body[name]!r} is not a number")
    state.chain_deployments.append((entry["seq"], body))


RULES: dict[str, Rule] = {DEPLOYED: _deployed}
SYSTEM_TYPES = frozenset({DEPLOYED})
