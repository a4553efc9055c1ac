"""Fixtures of the contract tests: an in-process chain per module, one deployment and a snapshot to roll back to,
so each test (and each Hypothesis example) starts from contracts as just deployed."""

from __future__ import annotations

import pytest
from web3 import Web3

from tests.unit.contract_chain import Deployment, NodeLikeTesterProvider, deploy


@pytest.fixture(scope="module")
def w3() -> Web3:
    return Web3(NodeLikeTesterProvider())


@pytest.fixture(scope="module")
def pristine(w3: Web3) -> tuple[Deployment, int]:
    """One deployment, and the eth-tester snapshot of the chain just after it."""
    deployment = deploy(w3)
    return deployment, w3.provider.ethereum_tester.take_snapshot()


@pytest.fixture
def deployed(w3: Web3, pristine: tuple[Deployment, int]) -> Deployment:
    """Contracts as just deployed: the chain rolled back to the snapshot."""
    deployment, snapshot = pristine
    w3.provider.ethereum_tester.revert_to_snapshot(snapshot)
    return deployment
