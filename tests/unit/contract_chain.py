"""Helpers for the contract tests (tests/unit/test_checkpoint_anchor.py, test_grant_registry.py): a node-like
eth-tester provider, a deployment of both contracts, accounts, and the expected revert texts."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Sequence

import pytest
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3
from web3.contract.contract import Contract

from ledger.anchor import ChainRefused
from ledger.anchor.chain import Chain, GrantUpdate, Sent
from ledger.anchor.records import checkpoint_hash, terms_hash
from ledger.merkle import MemoryTree, leaf_hash

ORIGIN = "exchange.example/ledger"
TREE = MemoryTree(leaf_hash(i.to_bytes(4, "big")) for i in range(1000))
TERMS = terms_hash({"purpose": "research", "dataset": "clinic-visits"})
FOREVER = (0, 2**63)
ADMIN_ROLE = bytes(32)  # AccessControl's DEFAULT_ADMIN_ROLE
OPERATOR_ROLE = keccak(text="OPERATOR_ROLE")
REGULATOR_ROLE = keccak(text="REGULATOR_ROLE")
ADMIN, REGULATOR, OUTSIDER, NEWCOMER = 1, 2, 3, 4  # eth-tester accounts; the operator is account 0


class NodeLikeTesterProvider(EthereumTesterProvider):
    """eth-tester answering a revert as a JSON-RPC node (anvil, Besu) does: error code 3 carrying the revert data,
    so these tests go through the same translation (web3's ContractCustomError) as a real node.

    web3's stock provider raises eth-tester's own TransactionFailed instead; chain.py handles that too (last test).
    """

    def make_request(self, method: Any, params: Any) -> Any:
        try:
            return super().make_request(method, params)
        except TransactionFailed as exc:
            data = _revert_data(exc.__context__)
            if data is None:
                raise
            return {"jsonrpc": "2.0", "id": 0,
                    "error": {"code": 3, "message": "execution reverted", "data": "0x" + data.hex()}}


def _revert_data(exc: BaseException | None) -> bytes | None:
    """Return the revert data eth-tester put in ``exc``: raw bytes (estimateGas) or their repr (eth_call)."""
    value = exc.args[0] if isinstance(exc, TransactionFailed) and exc.args else None
    if isinstance(value, Exception):  # py-evm's Revert, wrapped
        value = value.args[0] if value.args else None
    if isinstance(value, str) and value.startswith(("b'", 'b"')):
        value = ast.literal_eval(value)
    return value if isinstance(value, bytes) else None


@dataclass(frozen=True)
class Deployment:
    """Fresh contracts and the accounts that act on them."""

    w3: Web3
    anchor_address: str
    registry_address: str
    block_number: int
    operator: Chain
    admin: Chain
    regulator: Chain
    outsider: Chain

    @property
    def anchor(self) -> Contract:
        return self.operator.anchor_contract(self.anchor_address)

    @property
    def registry(self) -> Contract:
        return self.operator.registry_contract(self.registry_address)

    def post(self, size: int, proof: Sequence[bytes] | None = None, by: Chain | None = None) -> Sent:
        """Anchor TREE's head of ``size``; the proof defaults to the honest one from the latest anchor."""
        if proof is None:
            latest = self.operator.latest_anchor(self.anchor_address)
            proof = [] if latest is None else TREE.consistency_proof(latest.size, size)
        return (by or self.operator).post_anchor(self.anchor_address, size, TREE.root(size), note(size), proof)

    def record(self, *updates: GrantUpdate, by: Chain | None = None) -> Sent:
        """Record ``updates`` in one batch."""
        return (by or self.operator).record_grants(self.registry_address, updates)

    def events(self, event: Any, sent: Sent) -> list[Any]:
        """Return the arguments of each ``event`` the mined transaction ``sent`` emitted, in order."""
        receipt = self.w3.eth.get_transaction_receipt(sent.tx_hash)
        return [log["args"] for log in event().process_receipt(receipt)]

    def registry_state(self, *grant_ids: str) -> tuple:
        """Return everything a batch could change: highest seq, update count, the grants' records."""
        functions = self.registry.functions
        return (functions.highestSeq().call(), functions.updateCount().call(),
                [functions.statusOf(g).call() for g in grant_ids])


def note(size: int) -> bytes:
    return checkpoint_hash(f"{ORIGIN}\n{size}\n{TREE.root(size).hex()}\n")


def grant(grant_id: str, status: str, seq: int, window: tuple[int, int] = FOREVER) -> GrantUpdate:
    return GrantUpdate(grant_id, TERMS, status, window[0], window[1], seq)


def actor(w3: Web3, index: int) -> Chain:
    """Return a Chain sending as eth-tester account ``index``, signing locally with its key."""
    key = w3.provider.ethereum_tester.backend.account_keys[index]
    return Chain(w3, account=Account.from_key(key.to_bytes()))


def deploy(w3: Web3) -> Deployment:
    operator = Chain(w3)
    admin, regulator, outsider = actor(w3, ADMIN), actor(w3, REGULATOR), actor(w3, OUTSIDER)
    addresses = operator.deploy(ORIGIN, admin=admin.sender, regulator=regulator.sender)
    return Deployment(w3, addresses.anchor, addresses.registry, addresses.block_number, operator, admin, regulator,
                      outsider)


def refused(error: str) -> Any:
    """Expect chain.py to report that the contract refused with exactly ``error``."""
    return pytest.raises(ChainRefused, match=re.escape(f"the contract refused: {error}") + "$")


def unauthorized(who: Chain, role: bytes) -> str:
    return f"AccessControlUnauthorizedAccount(account={who.sender.lower()}, neededRole={role.hex()})"
