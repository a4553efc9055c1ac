"""pdx's Solidity contracts, compiled: ``artifact(name)`` gives the ABI and bytecode committed under ``build/``.

The sources are in ``src/``; ``npm ci && npm run build`` in this folder rebuilds ``build/`` with the pinned solc,
and the test suite fails if the committed artifacts differ from a fresh build. Python needs no Node to use them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CHECKPOINT_ANCHOR = "CheckpointAnchor"
GRANT_REGISTRY = "GrantRegistry"


@cache
def artifact(name: str) -> dict[str, Any]:
    """Return the compiled artifact of contract ``name``: contractName, abi, bytecode, compiler."""
    text = resources.files(__package__).joinpath("build", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)
