"""Parser bombs: junk bodies to every write endpoint of a served exchange and to a node's /v1/jobs/run.

Each answer is a problem (4xx, RFC 9457 JSON), never a server error. At the exchange, the bodies that break a
parsing limit are refused with 400 naming the limit, before authentication, signatures or schemas run. A node
authenticates first (the ticket travels in headers): without a ticket every body, however large or deep, is a 401
and is never parsed; with one, the bodies that break a limit are a 400.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests

from ledger import service
from protocol import tickets
from tests.attacks.served_scene import provider_node, send, served_env
from tests.servers import serving
from tests.support import node_headers

TEN_MB = 10 * 1024 * 1024
# (name, body, the parsing limit it breaks or None when it is well-formed JSON within the limits)
CORPUS = [
    ("array nested 1,000 deep", b"[" * 1000 + b"]" * 1000, "depth"),
    ("object nested 1,000 deep", b'{"a":' * 1000 + b"1" + b"}" * 1000, "depth"),
    ("array nested 100 deep", b"[" * 100 + b"]" * 100, "depth"),
    ("array nested 100,000 deep, unclosed", b"[" * 100_000, "depth"),
    ("integer of 4,301 digits", b'{"label": ' + b"9" * 4301 + b"}", "number-size"),
    ("integer of 100,000 digits", b'{"max_jobs": -' + b"1" * 100_000 + b"}", "number-size"),
    ("float of 5,000 digits", b'{"epsilon": 0.' + b"3" * 5000 + b"}", None),  # a float: it rounds
    ("integer of 101 digits", b'{"max_jobs": ' + b"1" * 101 + b"}", "number-size"),
    ("float overflowing to infinity", b'{"epsilon": 1e400}', "number-size"),
    ("NaN literal", b'{"epsilon": NaN}', "number-size"),
    ("Infinity literal", b'{"epsilon": Infinity}', "number-size"),
    ("-Infinity literal", b'[-Infinity]', "number-size"),
    ("invalid UTF-8", b'{"label": "\xff\xfe\xfd"}', "encoding"),
    ("UTF-16 body", '{"label": "x"}'.encode("utf-16"), "encoding"),
    ("lone high surrogate", b'{"label": "\\ud800"}', "unicode"),
    ("lone low surrogate in a key", b'{"\\udfff": 1}', "unicode"),
    ("truncated JSON", b'{"label": "x', "syntax"),
    ("not JSON at all", b"<xml/>", "syntax"),
    ("a 10 MB string", b'{"label": "' + b"a" * TEN_MB + b'"}', None),
    ("an array of 250,000 zeros", b"[" + b"0," * 250_000 + b"0]", "values"),
    ("200,000 empty objects", b"[" + b"{}," * 200_000 + b"{}]", "values"),
    ("null", b"null", None),
]


def _path(rule: str) -> str:
    """Fill a URL rule's parameters with plausible values (the ids need not exist: parsing comes first)."""
    path = rule.replace("<count:size>", "1").replace("<count:number>", "0")
    while "<" in path:
        start, end = path.index("<"), path.index(">")
        path = path[:start] + ("approve" if path[start:end].startswith("<any(") else "x1") + path[end + 1:]
    return path


def _write_endpoints(app) -> list[tuple[str, str]]:
    return sorted({(method, _path(rule.rule)) for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
                   for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}})


# One exchange and one node for the module: every junk body is refused before anything changes.
@pytest.fixture(scope="module")
def app(module_app):
    return module_app


@pytest.fixture(scope="module")
def client(module_client):
    return module_client


@pytest.fixture(scope="module")
def world(module_world):
    return module_world


@pytest.fixture(scope="module")
def exchange(app, world):
    """The exchange served with bad-credential lockout out of the way (this test is about parsing only)."""
    env = served_env(app, app.config["PDX_DATABASE_URL"], RATE_LIMIT_BAD_CREDENTIALS="1000000 per minute",
                     RATE_LIMIT="1000000 per minute")
    with serving(env, workers=2) as url:
        yield url


@pytest.fixture(scope="module")
def node(app, client, world, tmp_path_factory):
    """A provider's `pdx node serve` with one published asset."""
    with provider_node(app, client, world, tmp_path_factory.mktemp("node")) as (url, _state):
        yield url


def _is_problem(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").startswith("application/problem+json") and \
        response.json()["status"] == response.status_code


def _verdict(response: requests.Response, limit: str | None) -> str | None:
    """Return what is wrong with an answer to a junk body, or None when it is a proper refusal."""
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text[:200]}"
    if not _is_problem(response):
        return f"not a problem document: {response.text[:200]}"
    if limit is not None and (response.status_code != 400 or response.json().get("limit") != limit):
        return f"expected 400 naming the limit {limit}, got {response.status_code} {response.json()}"
    return None


def test_junk_bodies_to_every_write_endpoint_are_problems_never_server_errors(app, world, exchange):
    endpoints = _write_endpoints(app)
    assert len(endpoints) >= 20
    wrong = []
    for name, body, limit in CORPUS:
        for token in (None, world.operator.token):
            for method, path in endpoints:
                verdict = _verdict(send(exchange, method, path, token=token, raw=body), limit)
                if verdict is not None:
                    wrong.append((name, method, path, token is not None, verdict))
    assert wrong == []


def test_a_body_over_the_size_limit_is_refused_before_parsing(world, exchange):
    response = send(exchange, "POST", "/api/v1/grants", token=world.operator.token,
                    raw=b'{"label": "' + b"a" * (17 * 1024 * 1024) + b'"}')
    assert response.status_code == 413 and _is_problem(response)


def _ticket_headers(app, node: str) -> dict[str, str]:
    """A ticket for the node (and the grant statement beside it), as the exchange would send it."""
    with app.app_context():
        log = service.identity()
    provider = requests.get(f"{node}/v1/health", timeout=10).json()["participant"]
    signed = tickets.issue(log.key, issuer=log.origin, job="job_bomb", grant="grt_bomb", provider=provider,
                           assets=["ast_bomb"], operation="he-statistics", params_sha256=tickets.digest({}),
                           context_sha256=None, obligations={}, now=datetime.now(timezone.utc))
    return node_headers(app, signed.claims, signed.signature)


def test_junk_bodies_to_a_nodes_job_endpoint_are_problems_never_server_errors(app, node):
    ticketed = {"Content-Type": "application/json", **_ticket_headers(app, node)}
    answers = {name: requests.post(f"{node}/v1/jobs/run", data=body, timeout=60, headers=ticketed)
               for name, body, _ in CORPUS}
    anonymous = {name: requests.post(f"{node}/v1/jobs/run", data=body, timeout=60,
                                     headers={"Content-Type": "application/json"}) for name, body, _ in CORPUS}
    wrong = {name: answer.text[:200] for name, answer in [*answers.items(), *anonymous.items()]
             if answer.status_code >= 500 or not _is_problem(answer)}
    assert wrong == {}
    malformed = {name for name, answer in answers.items() if answer.json()["type"] == "urn:pdx:problem:node-malformed-body"}
    assert malformed == {name for name, _, limit in CORPUS if limit is not None}
    # without a ticket nothing is parsed: every body is the same 401, whatever limit it would have broken
    assert {answer.json()["type"] for answer in anonymous.values()} == {"urn:pdx:problem:node-unauthenticated"}


@pytest.mark.parametrize("name, body", [
    ("50 MB string", b'{"params": "' + b"a" * (50 * 1024 * 1024) + b'"}'),
    ("array nested 1,000,000 deep", b"[" * 1_000_000 + b"]" * 1_000_000),
])
def test_an_unauthenticated_bomb_to_a_node_is_refused_before_it_is_parsed(app, node, name, body):
    forged = _ticket_headers(app, node)
    forged[tickets.SIGNATURE_HEADER] = forged[tickets.SIGNATURE_HEADER][::-1]  # not the exchange's signature
    answers = [requests.post(f"{node}/v1/jobs/run", data=body, timeout=120, headers=headers)
               for headers in ({"Content-Type": "application/json"}, {"Content-Type": "application/json", **forged})]
    alive = requests.get(f"{node}/v1/health", timeout=10)
    for answer in answers:
        assert answer.status_code == 401 and _is_problem(answer), answer.text[:200]
        assert answer.json()["type"] == "urn:pdx:problem:node-unauthenticated"  # not node-malformed-body: unparsed
    assert alive.status_code == 200
