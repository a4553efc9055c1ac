#!/usr/bin/env python3
"""Generate the configuration of pdx's Besu QBFT permissioned chain (许可链): keys, genesis, allowlists, node configs.

    python deploy/besu/make_network.py                 # writes deploy/besu/network/ for the default four validators
    python deploy/besu/make_network.py --out /tmp/net --validators a,b,c,d --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4

The folder it writes (README.md in this directory explains every file):

    genesis.json               QBFT genesis; extraData names the validators (验证节点); funds the accounts
    permissions_config.toml    nodes-allowlist (one enode per validator) and accounts-allowlist
    <validator>/key            the node's secp256k1 private key (hex, no 0x, mode 0600): its validator identity
    <validator>/key.pub        the node public key, the id in its enode URL
    <validator>/address        the validator address, as listed in extraData
    <validator>/config.toml    the node's Besu options; paths are those inside the container (see CONTAINER_ROOT)
    accounts/<name>.key        a transaction-signing account key (0x hex, mode 0600), e.g. the exchange's
    accounts/<name>.address    its address, allowlisted and funded in genesis

Only the standard library and eth_keys / rlp (installed with web3) are used; nothing contacts the network.

Errors: ``NetworkError`` (root) ─┬─ ``BadOptions``     the arguments contradict each other
                                 └─ ``OutputExists``   the output folder holds files and --force was not given
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import rlp
from eth_keys import keys
from eth_keys.constants import SECPK1_N

DEFAULT_OUT = Path(__file__).resolve().parent / "network"
DEFAULT_VALIDATORS = ("operator", "regulator", "provider1", "provider2")
DEFAULT_ACCOUNTS = ("operator", "regulator")
DEFAULT_RPC_NODE = "operator"
DEFAULT_CHAIN_ID = 20261128
P2P_PORT = 30303
RPC_PORT = 8545
# Where docker-compose.yml mounts the network folder; every path in a node's config.toml lives under it.
CONTAINER_ROOT = PurePosixPath("/network")
CONTAINER_DATA_PATH = PurePosixPath("/data")

# QBFT extraData = RLP([vanity, validators, vote, round, seals]) (Besu QbftExtraDataCodec.encodeFromAddresses).
EXTRA_VANITY = bytes(32)
NO_VOTE: tuple[bytes, ...] = ()  # an empty list: no validator vote in genesis
GENESIS_ROUND = b""  # writeIntScalar(0): the integer 0 is RLP's empty string, 0x80
NO_SEALS: tuple[bytes, ...] = ()  # an empty list: genesis has no commit seals
# The mixHash every BFT block carries ("...ctical byzantine fault tolerance"), as in Besu's QBFT genesis example.
BFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
QBFT_TIMING = {"blockperiodseconds": 2, "epochlength": 30000, "requesttimeoutseconds": 4}
# Free gas (zeroBaseFee, min-gas-price=0): the block gas limit only bounds work, so it is as large as Besu suggests.
GAS_LIMIT = "0x1fffffffffffff"
ACCOUNT_BALANCE_WEI = 10**9 * 10**18
RPC_APIS = ("ETH", "NET", "QBFT", "WEB3", "PERM", "TXPOOL")
SECRET_MODE = 0o600


class NetworkError(Exception):
    """Generating the network failed."""


class BadOptions(NetworkError):
    """The command-line options contradict each other."""


class OutputExists(NetworkError):
    """The output folder already holds files."""


@dataclass(frozen=True)
class KeyPair:
    """A secp256k1 key: Besu node keys and Ethereum account keys are the same kind of key."""

    private_hex: str  # 64 hex digits, no 0x
    public_hex: str  # 128 hex digits, no 0x: the enode id
    address: str  # 0x + 40 lowercase hex digits

    @classmethod
    def generate(cls) -> KeyPair:
        """Return a fresh key drawn uniformly from [1, n-1] with the secrets module."""
        scalar = secrets.randbelow(SECPK1_N - 1) + 1
        private = keys.PrivateKey(scalar.to_bytes(32, "big"))
        return cls(private.to_bytes().hex(), private.public_key.to_bytes().hex(), private.public_key.to_address())


@dataclass(frozen=True)
class Validator:
    """One validator node: its name (also its folder and compose service), the host peers dial, its node key."""

    name: str
    host: str
    key: KeyPair

    @property
    def enode(self) -> str:
        """Return the node's enode URL, as the allowlist and the other nodes' bootnodes name it."""
        return f"enode://{self.key.public_hex}@{self.host}:{P2P_PORT}"


@dataclass(frozen=True)
class Account:
    """An account allowed to send transactions (the exchange's, the regulator's), funded in genesis."""

    name: str
    key: KeyPair


@dataclass(frozen=True)
class Network:
    """Everything make_network writes, before it is written."""

    chain_id: int
    validators: tuple[Validator, ...]
    accounts: tuple[Account, ...]
    rpc_node: str


# --- pure: file contents ----------------------------------------------------------------------------------------


def qbft_extra_data(addresses: Sequence[str]) -> str:
    """Return the genesis extraData naming these validators, hex-encoded as Besu's genesis file expects."""
    validators = [bytes.fromhex(address.removeprefix("0x")) for address in addresses]
    return "0x" + rlp.encode([EXTRA_VANITY, validators, NO_VOTE, GENESIS_ROUND, NO_SEALS]).hex()


def genesis(network: Network, timestamp: int) -> dict[str, object]:
    """Return the QBFT genesis: London rules, free gas, the validators in extraData, the accounts funded."""
    config = {
        "chainId": network.chain_id,
        # London without Shanghai: pdx compiles its contracts for "paris" (no PUSH0), which London executes;
        # Shanghai would add nothing pdx uses and QBFT has needed Besu fixes for it (besu#5446).
        "berlinBlock": 0,
        "londonBlock": 0,
        "zeroBaseFee": True,
        "qbft": dict(QBFT_TIMING),
    }
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": hex(timestamp),
        "extraData": qbft_extra_data([validator.key.address for validator in network.validators]),
        "gasLimit": GAS_LIMIT,
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "alloc": {account.key.address.removeprefix("0x"): {"balance": hex(ACCOUNT_BALANCE_WEI)}
                  for account in network.accounts},
        "number": "0x0",
        "gasUsed": "0x0",
        "parentHash": "0x" + "00" * 32,
    }


def toml_value(value: object) -> str:
    """Return a TOML literal for a string, bool, int or list of those (JSON's string escapes are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_document(header: str, entries: dict[str, object]) -> str:
    """Return a flat TOML document: a comment header, then one key = value line per entry."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + "".join(f"{key} = {toml_value(value)}\n" for key, value in entries.items())


def permissions_config(network: Network) -> str:
    """Return permissions_config.toml: every validator's enode, and the accounts that may send transactions."""
    return toml_document(
        "Local permissioning, read by every node. Keep the copies of all parties identical.\n"
        "Addresses are lowercase: older Besu releases compared the allowlist as plain strings.",
        {
            "nodes-allowlist": [validator.enode for validator in network.validators],
            "accounts-allowlist": [account.key.address for account in network.accounts],
        },
    )


def node_config(network: Network, validator: Validator) -> str:
    """Return one node's config.toml; only the RPC node listens beyond its container's loopback."""
    root = CONTAINER_ROOT
    permissions = str(root / "permissions_config.toml")
    exposed = validator.name == network.rpc_node
    entries: dict[str, object] = {
        "identity": f"pdx-{validator.name}",
        "data-path": str(CONTAINER_DATA_PATH),
        "genesis-file": str(root / "genesis.json"),
        "node-private-key-file": str(root / validator.name / "key"),
        # The enterprise profile, with the sync mode and storage format its documentation pairs it with.
        "profile": "ENTERPRISE",
        "sync-mode": "FULL",
        "data-storage-format": "FOREST",
        "min-gas-price": 0,
        "p2p-port": P2P_PORT,
        "bootnodes": [other.enode for other in network.validators if other.name != validator.name],
        # Hostnames in enode URLs (compose service names) are an early-access Besu feature; "update" re-resolves
        # them on use, so a peer that starts later or gets a new IP is still found.
        "Xdns-enabled": True,
        "Xdns-update-enabled": True,
        "permissions-nodes-config-file-enabled": True,
        "permissions-nodes-config-file": permissions,
        "permissions-accounts-config-file-enabled": True,
        "permissions-accounts-config-file": permissions,
        "rpc-http-enabled": True,
        "rpc-http-host": "0.0.0.0" if exposed else "127.0.0.1",
        "rpc-http-port": RPC_PORT,
        "rpc-http-api": list(RPC_APIS),
        "host-allowlist": ["localhost", "127.0.0.1", validator.host] if exposed else ["localhost", "127.0.0.1"],
    }
    role = "serves JSON-RPC to the exchange" if exposed else "JSON-RPC on its own loopback only (for votes)"
    return toml_document(f"Besu validator {validator.name!r} of chain {network.chain_id}; {role}.", entries)


# --- generating and writing -------------------------------------------------------------------------------------


def parse_names(text: str) -> tuple[str, ...]:
    """Return the comma-separated names in text, stripped, refusing blanks."""
    names = tuple(part.strip() for part in text.split(","))
    if not all(names):
        raise BadOptions(f"empty name in {text!r}")
    return names


def plan_network(validators: Sequence[str], hosts: Sequence[str], accounts: Sequence[str], rpc_node: str,
                 chain_id: int) -> Network:
    """Return a network with fresh keys, after checking that the options agree."""
    if len(set(validators)) != len(validators) or len(set(accounts)) != len(accounts):
        raise BadOptions("validator and account names must be unique")
    if len(hosts) != len(validators):
        raise BadOptions(f"{len(validators)} validators but {len(hosts)} hosts")
    if rpc_node not in validators:
        raise BadOptions(f"the RPC node {rpc_node!r} is not one of the validators {', '.join(validators)}")
    if chain_id <= 0:
        raise BadOptions(f"chain id must be positive, found {chain_id}")
    return Network(
        chain_id=chain_id,
        validators=tuple(Validator(name, host, KeyPair.generate()) for name, host in zip(validators, hosts)),
        accounts=tuple(Account(name, KeyPair.generate()) for name in accounts),
        rpc_node=rpc_node,
    )


def prepare_output(out: Path, force: bool) -> None:
    """Make out an empty folder; with force, replace an earlier output of this script, never anything else."""
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise OutputExists(f"{out} is not empty; pass --force to replace the network it holds (and its keys)")
        if not (out / "genesis.json").is_file():
            raise OutputExists(f"{out} holds no genesis.json, so it is not a network folder; refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def write_secret(path: Path, text: str) -> None:
    """Create path readable by its owner only, from the first byte (no window with a wider mode)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)


def write_network(network: Network, out: Path, timestamp: int) -> None:
    """Write every file of the network into the empty folder out."""
    (out / "genesis.json").write_text(json.dumps(genesis(network, timestamp), indent=2) + "\n", encoding="utf-8")
    (out / "permissions_config.toml").write_text(permissions_config(network), encoding="utf-8")
    for validator in network.validators:
        folder = out / validator.name
        folder.mkdir()
        write_secret(folder / "key", validator.key.private_hex)
        (folder / "key.pub").write_text("0x" + validator.key.public_hex + "\n", encoding="ascii")
        (folder / "address").write_text(validator.key.address + "\n", encoding="ascii")
        (folder / "config.toml").write_text(node_config(network, validator), encoding="utf-8")
    accounts = out / "accounts"
    accounts.mkdir(mode=0o700)
    for account in network.accounts:
        write_secret(accounts / f"{account.name}.key", "0x" + account.key.private_hex + "\n")
        (accounts / f"{account.name}.address").write_text(account.key.address + "\n", encoding="ascii")


def summary(network: Network, out: Path) -> str:
    """Return what was generated, for the terminal."""
    lines = [f"wrote {out} (chain id {network.chain_id})"]
    lines += [f"  validator {v.name:<10} {v.key.address}  {v.enode}" for v in network.validators]
    lines += [f"  account   {a.name:<10} {a.key.address}  accounts/{a.name}.key" for a in network.accounts]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description="Generate pdx's Besu QBFT network folder (keys are fresh).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--validators", default=",".join(DEFAULT_VALIDATORS),
                        help="comma-separated validator names (default: %(default)s)")
    parser.add_argument("--hosts", help="comma-separated host of each validator, in the same order "
                                        "(default: the validator names, i.e. docker-compose service names)")
    parser.add_argument("--accounts", default=",".join(DEFAULT_ACCOUNTS),
                        help="comma-separated accounts to fund and allowlist (default: %(default)s)")
    parser.add_argument("--rpc-node", default=DEFAULT_RPC_NODE,
                        help="the validator serving JSON-RPC to the exchange (default: %(default)s)")
    parser.add_argument("--chain-id", type=int, default=DEFAULT_CHAIN_ID, help="chain id (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing network folder, destroying its keys")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the network folder; return the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        validators = parse_names(args.validators)
        hosts = parse_names(args.hosts) if args.hosts else validators
        network = plan_network(validators, hosts, parse_names(args.accounts), args.rpc_node, args.chain_id)
        prepare_output(args.out, args.force)
    except NetworkError as error:
        print(f"make_network: {error}", file=sys.stderr)
        return 1
    write_network(network, args.out, int(time.time()))
    print(summary(network, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
