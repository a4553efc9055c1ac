"""The chain through web3.py: deploy pdx's contracts, post anchors and grant statuses, read them back.

Any EVM JSON-RPC node works: anvil for development, Hyperledger Besu (QBFT) in production, eth-tester in tests.
Transactions are signed locally with the operator's chain key when one is given; a development node's unlocked
account is used otherwise. web3's errors are translated here into ``ChainUnavailable`` and ``ChainRefused``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, Web3Exception
from web3.middleware import ExtraDataToPOAMiddleware

from contracts import CHECKPOINT_ANCHOR, GRANT_REGISTRY, artifact
from ledger.anchor import ChainRefused, ChainUnavailable, records
from ledger.anchor.verify import AnchoredHead, ChainView, Flag, MirroredStatus

LOG_CHUNK_BLOCKS = 50_000  # read events in ranges a node will serve


@dataclass(frozen=True)
class Sent:
    """A mined transaction."""

    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class Pending:
    """A transaction sent and not yet known to be mined."""

    tx_hash: str
    what: str


@dataclass(frozen=True)
class GrantUpdate:
    """One GrantRegistry.Update."""

    grant_id: str
    terms_hash: bytes
    status: str
    valid_from: int
    valid_until: int
    ledger_seq: int

    def as_tuple(self) -> tuple:
        return (self.grant_id, self.terms_hash, records.STATUS_CODES[self.status], self.valid_from, self.valid_until,
                self.ledger_seq)


@dataclass(frozen=True)
class Addresses:
    """Where a deployment put the two contracts, and in which block."""

    anchor: str
    registry: str
    block_number: int


def load_account(key_file: str | Path) -> LocalAccount:
    """Return the chain account whose private key (hex, with or without 0x) is in ``key_file``."""
    text = Path(key_file).read_text(encoding="utf-8").strip()
    try:
        return Account.from_key(text if text.startswith("0x") else "0x" + text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{key_file} does not hold a secp256k1 private key in hex") from exc


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Translate web3's and the transport's errors while doing ``what`` into the chain error tree."""
    try:
        yield
    except ContractCustomError as exc:
        raise ChainRefused(f"{what}: the contract refused: {decode_error(exc.data)}") from exc
    except ContractLogicError as exc:
        raise ChainRefused(f"{what}: the contract refused: {exc.message or exc}") from exc
    except (Web3Exception, requests.RequestException, OSError) as exc:
        raise ChainUnavailable(f"{what}: {type(exc).__name__}: {str(exc)[:300]}") from exc
    except Exception as exc:
        data = _in_process_revert(exc)
        if data is None:
            raise
        raise ChainRefused(f"{what}: the contract refused: {decode_error(data)}") from exc


def _in_process_revert(exc: Exception) -> bytes | None:
    """Return the revert data of eth-tester's ``TransactionFailed`` (the in-process chain of the tests), which web3
    passes through instead of a JSON-RPC error; the EVM's ``Revert`` it wraps holds the raw bytes."""
    if type(exc).__name__ != "TransactionFailed":
        return None
    inner: BaseException | None = exc
    while inner is not None:
        if inner.args and isinstance(inner.args[0], bytes):
            return inner.args[0]
        inner = inner.__context__
    return b""


def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table = {}
    for name in (CHECKPOINT_ANCHOR, GRANT_REGISTRY):
        for item in artifact(name)["abi"]:
            if item["type"] == "error":
                types = [i["type"] for i in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                table[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


def decode_error(data: Any) -> str:
    """Return a contract's revert data as ``Name(arg=value, …)`` when the ABI knows the error."""
    if isinstance(data, dict):
        data = data.get("data", "")
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    else:
        raw = bytes.fromhex(str(data).removeprefix("0x")) if data else b""
    found = _error_table().get(raw[:4])
    if found is None:
        return f"unknown error data 0x{raw.hex()}"
    name, names, types = found
    try:
        values = abi_decode(types, raw[4:])
    except Exception:  # noqa: BLE001 - malformed revert data is reported as such, not raised
        return f"{name}(undecodable arguments 0x{raw[4:].hex()})"
    shown = ", ".join(f"{n}={v.hex() if isinstance(v, bytes) else v}" for n, v in zip(names, values))
    return f"{name}({shown})"


class Chain:
    """A connection to one chain, sending as one account."""

    def __init__(self, w3: Web3, account: LocalAccount | None = None, gas_price: int | None = None,
                 receipt_timeout: float = 60.0) -> None:
        self.w3 = w3
        self.account = account
        self.gas_price = gas_price
        self.receipt_timeout = receipt_timeout
        self._sender: str | None = None if account is None else account.address

    @classmethod
    def connect(cls, url: str, key_file: str | None = None, gas_price: int | None = None,
                timeout: float = 30.0, receipt_timeout: float = 60.0) -> Chain:
        """Connect to the JSON-RPC node at ``url`` (HTTP), sending with the key in ``key_file`` if given."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        # QBFT/Clique blocks carry validator data in extraData, longer than the 32 bytes web3 accepts by default
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        return cls(w3, None if key_file is None else load_account(key_file), gas_price, receipt_timeout)

    @property
    def sender(self) -> str:
        """Return the address transactions are sent from."""
        if self._sender is None:
            with translated("listing the node's accounts"):
                accounts = self.w3.eth.accounts
            if not accounts:
                raise ChainUnavailable("no chain key is configured (PDX_CHAIN_KEY_FILE) and the node has no unlocked "
                                       "account to send from")
            self._sender = accounts[0]
        return self._sender

    def chain_id(self) -> int:
        """Return the chain's id."""
        with translated("reading the chain id"):
            return self.w3.eth.chain_id

    def block_number(self) -> int:
        """Return the newest block's number."""
        with translated("reading the block number"):
            return self.w3.eth.block_number

    def anchor_contract(self, address: str) -> Contract:
        """Return the CheckpointAnchor at ``address``."""
        spec = artifact(CHECKPOINT_ANCHOR)
        return self.w3.eth.contract(address=to_checksum_address(address), abi=spec["abi"])

    def registry_contract(self, address: str) -> Contract:
        """Return the GrantRegistry at ``address``."""
        spec = artifact(GRANT_REGISTRY)
        return self.w3.eth.contract(address=to_checksum_address(address), abi=spec["abi"])

    # --- writing ---------------------------------------------------------------------------------------

    def deploy(self, origin: str, admin: str | None = None, regulator: str | None = None) -> Addresses:
        """Deploy a GrantRegistry and a CheckpointAnchor naming it; the sender gets the operator role.

        ``admin`` (default: the sender) holds the roles' admin role; ``regulator`` may flag anchors.
        """
        admin = to_checksum_address(admin or self.sender)
        regulator = to_checksum_address(regulator) if regulator else "0x" + "00" * 20
        registry, _ = self._deploy(GRANT_REGISTRY, admin, self.sender)
        anchor, block_number = self._deploy(CHECKPOINT_ANCHOR, admin, self.sender, regulator, origin, registry)
        return Addresses(anchor, registry, block_number)

    def _deploy(self, name: str, *args: Any) -> tuple[str, int]:
        spec = artifact(name)
        factory = self.w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        what = f"deploying {name}"
        with translated(what):
            tx = factory.constructor(*args).build_transaction(self._base_tx())
            sent = self.wait(Pending(self._send(tx), what))
            return self.w3.eth.get_transaction_receipt(sent.tx_hash)["contractAddress"], sent.block_number

    def post_anchor(self, address: str, size: int, root: bytes, checkpoint_hash: bytes,
                    proof: Sequence[bytes]) -> Sent:
        """Anchor the tree head (size, root) with the consistency proof from the latest anchor."""
        call = self.anchor_contract(address).functions.anchor(size, root, checkpoint_hash, list(proof))
        return self.transact(call, f"anchoring tree size {size}")

    def record_grants(self, address: str, updates: Sequence[GrantUpdate]) -> Sent:
        """Record grant status changes, in ledger order, in one transaction."""
        call = self.registry_contract(address).functions.record([u.as_tuple() for u in updates])
        return self.transact(call, f"mirroring {len(updates)} grant status change(s)")

    def flag(self, address: str, index: int, reason: str) -> Sent:
        """Flag anchor ``index`` as disputed (the sender needs the regulator role)."""
        return self.transact(self.anchor_contract(address).functions.flag(index, reason), f"flagging anchor {index}")

    def transact(self, call: ContractFunction, what: str) -> Sent:
        """Send a contract call as a transaction and wait until it is mined; raise if it reverts."""
        return self.wait(self.submit(call, what))

    def next_nonce(self) -> int:
        """Return the sender's next nonce, counting its transactions still waiting to be mined."""
        with translated("reading the sender's nonce"):
            return self.w3.eth.get_transaction_count(self.sender, "pending")

    def submit(self, call: ContractFunction, what: str, nonce: int | None = None) -> Pending:
        """Send a contract call as a transaction without waiting for it; a call that would revert raises here."""
        with translated(what):
            tx = call.build_transaction(self._base_tx(nonce))  # estimates gas: a revert surfaces here, decoded
            return Pending(self._send(tx), what)

    def wait(self, pending: Pending) -> Sent:
        """Wait until a submitted transaction is mined; raise if it reverted or took too long."""
        with translated(pending.what):
            receipt = self.w3.eth.wait_for_transaction_receipt(pending.tx_hash, timeout=self.receipt_timeout,
                                                               poll_latency=0.05)
        if receipt["status"] != 1:
            raise ChainRefused(f"{pending.what}: transaction {pending.tx_hash} reverted in block "
                               f"{receipt['blockNumber']}")
        return Sent(pending.tx_hash, receipt["blockNumber"], receipt["gasUsed"])

    def _base_tx(self, nonce: int | None = None) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": self.sender,
                              "nonce": self.w3.eth.get_transaction_count(self.sender, "pending") if nonce is None
                              else nonce}
        if self.gas_price is not None:
            tx["gasPrice"] = self.gas_price
        return tx

    def _send(self, tx: dict[str, Any]) -> str:
        if self.account is not None:
            tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        else:
            tx_hash = self.w3.eth.send_transaction(tx)
        return "0x" + bytes(tx_hash).hex().removeprefix("0x")

    # --- reading ---------------------------------------------------------------------------------------

    def latest_anchor(self, address: str) -> AnchoredHead | None:
        """Return the newest anchor, or None before the first."""
        contract = self.anchor_contract(address)
        with translated("reading the latest anchor"):
            count = contract.functions.anchorCount().call()
            if count == 0:
                return None
            found = contract.functions.latest().call()
        return _head(count - 1, found)

    def anchor_of_size(self, address: str, size: int) -> AnchoredHead | None:
        """Return the anchor of tree size ``size``, if there is one."""
        with translated(f"reading the anchor of size {size}"):
            found, head = self.anchor_contract(address).functions.anchorOfSize(size).call()
        return _head(None, head) if found else None

    def highest_mirrored_seq(self, address: str) -> int:
        """Return the highest ledger sequence number the registry has recorded."""
        with translated("reading the registry's highest sequence number"):
            return self.registry_contract(address).functions.highestSeq().call()

    def view(self, anchor_address: str) -> ChainView:
        """Read everything the auditor compares: anchors, flags and the registry's status changes."""
        anchor = self.anchor_contract(anchor_address)
        with translated(f"reading the anchor contract at {anchor_address}"):
            if not self.w3.eth.get_code(anchor.address):
                raise ChainRefused(f"there is no contract at {anchor_address} on chain {self.w3.eth.chain_id}")
            registry = self.registry_contract(anchor.functions.grantRegistry().call())
            start = min(anchor.functions.deployedBlock().call(), registry.functions.deployedBlock().call())
            end = self.w3.eth.block_number
            anchors = [_head(e["args"]["index"], (e["args"]["treeSize"], e["args"]["rootHash"],
                                                  e["args"]["checkpointHash"], 0, e["blockNumber"], False))
                       for e in _events(anchor.events.Anchored, start, end)]
            flags = [Flag(e["args"]["index"], e["args"]["regulator"], e["args"]["reason"], e["blockNumber"])
                     for e in _events(anchor.events.Flagged, start, end)]
            statuses = [MirroredStatus(a["grantId"], records.STATUS_NAMES[a["status"]], bytes(a["termsHash"]),
                                       a["validFrom"], a["validUntil"], a["ledgerSeq"], e["blockNumber"])
                        for e in _events(registry.events.GrantStatusChanged, start, end) for a in [e["args"]]]
            return ChainView(chain_id=self.w3.eth.chain_id, anchor_address=anchor.address,
                             registry_address=registry.address, origin=anchor.functions.origin().call(),
                             anchors=tuple(anchors), flags=tuple(flags), statuses=tuple(statuses),
                             block_number=end)


def _events(event: Any, start: int, end: int) -> Iterator[Any]:
    for first in range(start, end + 1, LOG_CHUNK_BLOCKS):
        yield from event.get_logs(from_block=first, to_block=min(first + LOG_CHUNK_BLOCKS - 1, end))


def _head(index: int | None, found: Sequence[Any]) -> AnchoredHead:
    size, root, checkpoint_hash, _anchored_at, block_number, flagged = found
    return AnchoredHead(index=index, size=size, root=bytes(root), checkpoint_hash=bytes(checkpoint_hash),
                        block_number=block_number, flagged=flagged)
