"""CheckpointAnchor on an in-process chain (eth-tester): roles, the on-chain RFC 9162 consistency check (against
the Python verifier), flags and the views, driven through ``ledger.anchor.chain`` as the exchange drives them.
Fixtures in conftest.py; contracts as just deployed for every test (a snapshot rollback)."""

from __future__ import annotations

import re
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import ContractCustomError

from ledger.anchor import ChainRefused
from ledger.anchor.chain import Chain, Sent, decode_error
from ledger.merkle import MemoryTree, ProofError, leaf_hash, verify_consistency
from tests.unit.contract_chain import (
    ADMIN_ROLE,
    NEWCOMER,
    OPERATOR_ROLE,
    ORIGIN,
    REGULATOR_ROLE,
    TREE,
    Deployment,
    actor,
    grant,
    note,
    refused,
    unauthorized,
)

# --- roles -----------------------------------------------------------------------------------------------------


def test_the_deployer_operates_both_contracts_while_the_named_accounts_administer_and_regulate(deployed):
    anchor, registry = deployed.anchor.functions, deployed.registry.functions
    operator, admin, regulator = deployed.operator.sender, deployed.admin.sender, deployed.regulator.sender
    for contract in (anchor, registry):
        assert contract.hasRole(OPERATOR_ROLE, operator).call()
        assert contract.hasRole(ADMIN_ROLE, admin).call()
        assert not contract.hasRole(ADMIN_ROLE, operator).call()
        assert contract.getRoleAdmin(OPERATOR_ROLE).call() == ADMIN_ROLE
    assert anchor.hasRole(REGULATOR_ROLE, regulator).call()
    assert not anchor.hasRole(REGULATOR_ROLE, operator).call()


def test_an_outsider_can_neither_anchor_nor_record_grants_nor_flag(deployed):
    deployed.post(3)
    outsider = deployed.outsider
    with refused(unauthorized(outsider, OPERATOR_ROLE)):
        deployed.post(8, by=outsider)
    with refused(unauthorized(outsider, OPERATOR_ROLE)):
        deployed.record(grant("g-1", "active", 1), by=outsider)
    with refused(unauthorized(outsider, REGULATOR_ROLE)):
        outsider.flag(deployed.anchor_address, 0, "looks odd")
    assert deployed.anchor.functions.anchorCount().call() == 1
    assert deployed.registry.functions.updateCount().call() == 0


def test_the_operator_cannot_flag_an_anchor(deployed):
    deployed.post(3)
    with pytest.raises(ContractCustomError) as excinfo:
        deployed.anchor.functions.flag(0, "self-doubt").transact({"from": deployed.operator.sender})
    assert decode_error(excinfo.value.data) == unauthorized(deployed.operator, REGULATOR_ROLE)
    assert not deployed.anchor.functions.anchorAt(0).call()[5]


def test_the_admin_can_make_a_newcomer_an_operator_who_can_then_anchor(deployed, w3):
    newcomer = actor(w3, NEWCOMER)
    with refused(unauthorized(newcomer, OPERATOR_ROLE)):
        deployed.post(3, by=newcomer)
    deployed.admin.transact(deployed.anchor.functions.grantRole(OPERATOR_ROLE, newcomer.sender), "granting")
    deployed.post(3, by=newcomer)
    assert deployed.operator.latest_anchor(deployed.anchor_address).size == 3


def test_only_the_admin_can_grant_roles(deployed):
    operator = deployed.operator
    with refused(unauthorized(operator, ADMIN_ROLE)):
        operator.transact(deployed.anchor.functions.grantRole(REGULATOR_ROLE, operator.sender), "granting")


# --- anchors ---------------------------------------------------------------------------------------------------


def test_the_first_anchor_needs_no_proof_and_refuses_one(deployed):
    with refused("InconsistentWithPrevious(previousSize=0, proposedSize=5)"):
        deployed.post(5, proof=[TREE.root(4)])
    deployed.post(5, proof=[])
    assert deployed.anchor.functions.anchorCount().call() == 1


@pytest.mark.parametrize("size", [5, 3])
def test_a_tree_size_that_does_not_grow_is_refused_naming_both_sizes(deployed, size):
    deployed.post(5)
    with refused(f"SizeNotIncreasing(latestSize=5, proposedSize={size})"):
        deployed.post(size, proof=[])


def test_an_empty_tree_is_refused_before_and_after_the_first_anchor(deployed):
    with refused("EmptyTree()"):
        deployed.post(0, proof=[])
    deployed.post(5)
    with refused("EmptyTree()"):
        deployed.post(0, proof=[])


PAIRS = [(1, 2), (1, 7), (2, 3), (3, 4), (4, 8), (5, 13), (7, 8), (8, 9), (15, 16), (16, 17), (6, 1000),
         (1, 1000), (512, 1000), (999, 1000)]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_an_honest_consistency_proof_is_accepted(deployed, first, second):
    deployed.post(first)
    deployed.post(second, TREE.consistency_proof(first, second))
    latest = deployed.operator.latest_anchor(deployed.anchor_address)
    assert (latest.index, latest.size, latest.root) == (1, second, TREE.root(second))


def test_each_anchor_is_proven_consistent_with_the_one_just_before_it(deployed):
    for size in (1, 2, 3, 4, 8, 9, 13, 300):
        deployed.post(size)
    with refused("InconsistentWithPrevious(previousSize=300, proposedSize=1000)"):
        deployed.post(1000, proof=TREE.consistency_proof(13, 1000))  # a proof from an older anchor
    deployed.post(1000)
    assert deployed.anchor.functions.anchorCount().call() == 9


def changed_leaf(index: int, size: int) -> MemoryTree:
    """Return the first ``size`` leaves of TREE with leaf ``index`` replaced."""
    leaves = [TREE.subtree_hash(i, i + 1) for i in range(size)]
    leaves[index] = leaf_hash(b"forged")
    return MemoryTree(leaves)


FORGERIES: dict[str, Callable[[int, int], tuple[bytes, list[bytes]]]] = {
    "a proof for a second tree with one appended leaf changed":
        lambda first, second: (TREE.root(second), changed_leaf(second - 1, second).consistency_proof(first, second)),
    "a history rewritten inside the anchored tree":
        lambda first, second: (changed_leaf(0, second).root(second),
                               changed_leaf(0, second).consistency_proof(first, second)),
    "a truncated proof": lambda first, second: (TREE.root(second), TREE.consistency_proof(first, second)[:-1]),
    "a proof with an extra node":
        lambda first, second: (TREE.root(second), TREE.consistency_proof(first, second) + [TREE.root(first)]),
    "no proof at all": lambda first, second: (TREE.root(second), []),
}


@pytest.mark.parametrize("first", [4, 5])
@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_proof_that_does_not_extend_the_anchored_tree_is_refused(deployed, forgery, first):
    deployed.post(first)
    root, proof = FORGERIES[forgery](first, 13)
    with refused(f"InconsistentWithPrevious(previousSize={first}, proposedSize=13)"):
        deployed.operator.post_anchor(deployed.anchor_address, 13, root, note(13), proof)
    assert deployed.operator.latest_anchor(deployed.anchor_address).size == first


def test_an_anchored_event_carries_index_size_root_and_checkpoint_hash(deployed):
    deployed.post(3)
    sent = deployed.post(8)
    [event] = deployed.events(deployed.anchor.events.Anchored, sent)
    assert dict(event) == {"index": 1, "treeSize": 8, "rootHash": TREE.root(8), "checkpointHash": note(8)}


def test_the_views_return_what_was_posted(deployed, w3):
    first, second = deployed.post(3), deployed.post(8)
    anchor = deployed.anchor.functions

    def stored(size: int, sent: Sent) -> tuple:
        timestamp = w3.eth.get_block(sent.block_number)["timestamp"]
        return (size, TREE.root(size), note(size), timestamp, sent.block_number, False)

    assert anchor.anchorCount().call() == 2
    assert tuple(anchor.anchorAt(0).call()) == stored(3, first)
    assert tuple(anchor.anchorAt(1).call()) == tuple(anchor.latest().call()) == stored(8, second)
    found, head = anchor.anchorOfSize(8).call()
    assert found and tuple(head) == stored(8, second)
    assert anchor.anchorOfSize(5).call()[0] is False
    assert deployed.operator.anchor_of_size(deployed.anchor_address, 5) is None
    assert deployed.operator.anchor_of_size(deployed.anchor_address, 3).root == TREE.root(3)


def test_before_the_first_anchor_there_is_no_latest_one(deployed):
    assert deployed.operator.latest_anchor(deployed.anchor_address) is None
    for call in (deployed.anchor.functions.latest(), deployed.anchor.functions.anchorAt(0)):
        with pytest.raises(ContractCustomError) as excinfo:
            call.call()
        assert decode_error(excinfo.value.data) == "NoSuchAnchor(index=0)"


def test_the_anchor_names_its_origin_registry_and_deployment_block(deployed):
    anchor = deployed.anchor.functions
    assert anchor.origin().call() == ORIGIN
    assert anchor.grantRegistry().call() == deployed.registry_address
    assert anchor.deployedBlock().call() == deployed.block_number
    # the registry is deployed first, and eth-tester mines one block per transaction
    assert deployed.registry.functions.deployedBlock().call() == deployed.block_number - 1


# --- flags -----------------------------------------------------------------------------------------------------


def test_the_regulator_flags_an_anchor_with_a_public_reason(deployed):
    deployed.post(3)
    deployed.post(8)
    sent = deployed.regulator.flag(deployed.anchor_address, 0, "shown a different root for size 3")
    [event] = deployed.events(deployed.anchor.events.Flagged, sent)
    assert dict(event) == {"index": 0, "regulator": deployed.regulator.sender,
                           "reason": "shown a different root for size 3"}
    assert [deployed.anchor.functions.anchorAt(i).call()[5] for i in (0, 1)] == [True, False]


def test_an_anchor_cannot_be_flagged_twice(deployed):
    deployed.post(3)
    deployed.regulator.flag(deployed.anchor_address, 0, "first look")
    with refused("AlreadyFlagged(index=0)"):
        deployed.regulator.flag(deployed.anchor_address, 0, "second look")


def test_flagging_a_missing_anchor_is_refused(deployed):
    deployed.post(3)
    deployed.post(8)
    with refused("NoSuchAnchor(index=2)"):
        deployed.regulator.flag(deployed.anchor_address, 2, "not there")


def test_the_chain_view_lists_anchors_flags_and_grant_statuses_in_order(deployed):
    deployed.post(3)
    deployed.post(8)
    deployed.regulator.flag(deployed.anchor_address, 1, "disputed")
    deployed.record(grant("g-1", "active", 4), grant("g-2", "active", 6))
    deployed.record(grant("g-1", "revoked", 9))
    view = deployed.operator.view(deployed.anchor_address)
    assert (view.origin, view.registry_address) == (ORIGIN, deployed.registry_address)
    assert [(a.index, a.size, a.root, a.checkpoint_hash) for a in view.anchors] == [
        (0, 3, TREE.root(3), note(3)), (1, 8, TREE.root(8), note(8))]
    assert [(f.index, f.regulator, f.reason) for f in view.flags] == [(1, deployed.regulator.sender, "disputed")]
    assert [(s.grant_id, s.status, s.ledger_seq) for s in view.statuses] == [
        ("g-1", "active", 4), ("g-2", "active", 6), ("g-1", "revoked", 9)]


# --- the Solidity verifier against the Python one ----------------------------------------------------------------


def tampered(first: int, second: int, node: int, byte: int) -> dict[str, tuple[int, bytes, list[bytes]]]:
    """Return (size, root, proof) claims about TREE: the honest one and variations of it."""
    proof, root = TREE.consistency_proof(first, second), TREE.root(second)
    flipped = list(proof)
    hit = flipped[node % len(proof)]
    flipped[node % len(proof)] = hit[:byte] + bytes([hit[byte] ^ 1]) + hit[byte + 1:]
    return {
        "honest": (second, root, proof),
        "truncated": (second, root, proof[:-1]),
        "first node dropped": (second, root, proof[1:]),
        "extra node": (second, root, [*proof, root]),
        "one bit flipped": (second, root, flipped),
        "nodes reversed": (second, root, proof[::-1]),
        "claims the next size": (second + 1, TREE.root(second + 1), proof),
        "claims the next root": (second, TREE.root(second + 1), proof),
    }


def python_accepts(first: int, size: int, root: bytes, proof: list[bytes]) -> bool:
    try:
        verify_consistency(first, size, TREE.root(first), root, proof)
    except ProofError:
        return False
    return True


def chain_accepts(deployment: Deployment, size: int, root: bytes, proof: list[bytes]) -> bool:
    try:
        deployment.anchor.functions.anchor(size, root, note(size), proof).call({"from": deployment.operator.sender})
    except ContractCustomError as exc:
        assert decode_error(exc.data).startswith("InconsistentWithPrevious("), decode_error(exc.data)
        return False
    return True


sizes = st.integers(1, 299).flatmap(lambda first: st.tuples(st.just(first), st.integers(first + 1, 300)))


@settings(max_examples=40, deadline=None)
@given(sizes, st.integers(0, 63), st.integers(0, 31))
def test_the_on_chain_verifier_accepts_exactly_the_proofs_the_python_one_accepts(w3, pristine, pair, node, byte):
    (first, second), (deployment, snapshot) = pair, pristine
    w3.provider.ethereum_tester.revert_to_snapshot(snapshot)
    deployment.post(first, proof=[])
    claims = tampered(first, second, node, byte)
    on_chain = {name: chain_accepts(deployment, *claim) for name, claim in claims.items()}
    in_python = {name: python_accepts(first, *claim) for name, claim in claims.items()}
    assert in_python["honest"]
    assert on_chain == in_python


# --- the stock in-process provider -------------------------------------------------------------------------------


def test_a_revert_on_the_stock_eth_tester_provider_is_reported_as_chain_refused():
    chain = Chain(Web3(EthereumTesterProvider()))
    addresses = chain.deploy(ORIGIN)
    with pytest.raises(ChainRefused, match=re.escape("EmptyTree()")):
        chain.post_anchor(addresses.anchor, 0, TREE.root(1), note(1), [])
