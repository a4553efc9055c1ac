"""Which node addresses each PDX_ALLOW_PRIVATE_NODES policy lets the exchange call."""

from __future__ import annotations

import pytest

from catalog import nodes
from common.config import ConfigError, load_settings

ENDPOINTS = {  # endpoint -> the least permissive policy that allows it
    "https://node.example.gov.cn:8443": None,  # a name: checked once resolved, before each call
    "http://8.8.8.8:8701": "none",
    "http://127.0.0.1:8701": "loopback",
    "http://localhost:8701": "loopback",
    "http://[::1]:8701": "loopback",
    "http://10.1.2.3:8701": "private",
    "http://192.168.0.9": "private",
    "http://[fd00::7]:8701": "private",
    "http://169.254.169.254/latest/meta-data": "all",
    "http://0.0.0.0:8701": "all",
    "http://[::ffff:169.254.169.254]": "all",
}
POLICIES = ("none", "loopback", "private", "all")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("policy", POLICIES)
def test_a_registered_endpoint_is_allowed_exactly_from_its_least_permissive_policy(endpoint, policy):
    least = ENDPOINTS[endpoint]
    if least is None or POLICIES.index(policy) >= POLICIES.index(least):
        nodes.check_address(endpoint, policy, resolve=False)
    else:
        with pytest.raises(nodes.ForbiddenAddress, match="PDX_ALLOW_PRIVATE_NODES"):
            nodes.check_address(endpoint, policy, resolve=False)


def test_localhost_and_its_subdomains_count_as_loopback_before_any_lookup():
    for endpoint in ("http://LOCALHOST:8701", "http://node.localhost:8701"):
        with pytest.raises(nodes.ForbiddenAddress, match="loopback"):
            nodes.check_address(endpoint, "none", resolve=False)


def test_the_default_allows_loopback_for_the_demo_and_an_unknown_policy_is_refused():
    assert load_settings(environ={})["ALLOW_PRIVATE_NODES"] == "loopback"
    with pytest.raises(ConfigError, match="ALLOW_PRIVATE_NODES"):
        load_settings(environ={"PDX_ALLOW_PRIVATE_NODES": "yes"})


@pytest.mark.parametrize("status, answer, expected", [
    (403, {"type": "urn:pdx:problem:node-ticket-refused", "status": 403, "detail": "x"}, ("node-ticket-refused", True)),
    (422, {"type": "urn:pdx:problem:node-cannot-compute", "status": 422}, ("node-cannot-compute", False)),
    (403, {"type": "urn:pdx:problem:node-ticket-refused", "status": 500}, ("node-error", False)),
    (500, "db_password=hunter2", ("node-error", False)),
    (502, None, ("node-error", False)),
])
def test_a_node_answer_becomes_a_fixed_code_and_only_known_refusals_give_the_quota_back(status, answer, expected):
    code, message, refund = nodes.node_problem(status, answer)
    assert (code, refund) == expected and "hunter2" not in message
