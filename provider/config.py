"""The node's configuration file (TOML): who the node is, whom it trusts, and what it mounts.

    participant_id = "prt_…"                  # the provider this node belongs to
    key_file = "node.key"                      # the provider's Ed25519 key: signs receipts
    exchange_public_key = "<base64>"           # the exchange's log key: verifies tickets
    issuer = "pdx.local/ledger"                # the exchange's ledger origin, named in tickets
    state_dir = "node-state"                   # the node's own record of jobs served and ticket nonces
    host = "127.0.0.1"
    port = 8701

    [[datasets]]
    asset = "ast_…"                            # the catalog asset this dataset serves
    name = "tax_filings"
    grade = 3
    source = "csv"                             # csv | parquet | sql
    location = "data/tax.csv"                  # file path, or a SQLAlchemy URL for sql
    table = "filings"                          # sql only
    id_column = "uscc"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provider.datasets import SOURCE_KINDS, DatasetError, Mount


@dataclass(frozen=True)
class NodeConfig:
    participant_id: str
    key_file: Path
    exchange_public_key: str
    issuer: str
    state_dir: Path
    host: str
    port: int
    mounts: tuple[Mount, ...]


def _require(data: dict[str, Any], name: str, where: str) -> Any:
    if name not in data:
        raise DatasetError(f"{where}: missing {name}")
    return data[name]


def parse(data: dict[str, Any], base: Path) -> NodeConfig:
    """Build a node configuration from parsed TOML; relative paths are relative to ``base``."""
    mounts = []
    for number, item in enumerate(data.get("datasets", []), 1):
        where = f"dataset {number}"
        kind = _require(item, "source", where)
        if kind not in SOURCE_KINDS:
            raise DatasetError(f"{where}: source must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
        location = str(_require(item, "location", where))
        if kind != "sql":
            location = str((base / location).resolve())
        grade = _require(item, "grade", where)
        if grade not in (1, 2, 3, 4):
            raise DatasetError(f"{where}: grade must be 1–4")
        mounts.append(Mount(asset=_require(item, "asset", where), name=_require(item, "name", where), grade=grade,
                            kind=kind, location=location, table=item.get("table"),
                            id_column=item.get("id_column")))
    return NodeConfig(participant_id=_require(data, "participant_id", "node"),
                      key_file=(base / _require(data, "key_file", "node")).resolve(),
                      exchange_public_key=_require(data, "exchange_public_key", "node"),
                      issuer=_require(data, "issuer", "node"),
                      state_dir=(base / data.get("state_dir", "node-state")).resolve(),
                      host=data.get("host", "127.0.0.1"), port=int(data.get("port", 8701)), mounts=tuple(mounts))


def load(path: Path) -> NodeConfig:
    """Read a node configuration file."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"cannot read node configuration {path}: {exc}") from exc
    return parse(data, Path(path).resolve().parent)
