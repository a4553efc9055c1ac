"""Fuzz every operation of the exchange's OpenAPI document with Schemathesis, as every role, signed.

The document is first checked to be valid OpenAPI 3.0. Then each operation gets generated requests, valid
(positive) and invalid (negative), with path parameters either generated or naming the scene's real resources,
sent as a participant of each role with its bearer token and an Ed25519 signature over the exact bytes sent, or
anonymously with whatever signature headers were generated. Every answer must be no server error, match the
response schema the document declares for its status, and have a status the operation declares explicitly
(``default`` does not count): an undeclared 4xx is a bug in the document.

Each integer path parameter is also sent at its documented maximum and one past it (a number too large for a
64-bit column once reached the database as a 500). The signature covers the percent-decoded path, as the
exchange reads it.

The budget is bounded (``MAX_EXAMPLES`` per operation and mode) and derandomized so CI replays the same cases.
Writes run after reads, and the destructive writes (suspensions, revocations, retiring) last, so the scene's
callers keep their standing for as long as possible.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import func, select

from common.db import Base, get_database
from tests.attacks.fuzz_scene import ANONYMOUS, ROLES, Scene, body_bytes, build, credentials
from tests.attacks.served_scene import served_env
from tests.servers import serving

OPENAPI_PATH = "/api/v1/openapi.json"
RULE_PARAMETER = re.compile(r"<(?:[^<>]*:)?([A-Za-z_]+)>")
MAX_EXAMPLES = 30
SERVED_MAX_EXAMPLES = 4
BOUND_EXAMPLES = 3
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
DESTRUCTIVE = ("suspend", "revoke", "retire", "reject", "{action}")
FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                         suppress_health_check=list(HealthCheck), print_blob=True)


class UndeclaredStatus(AssertionError):
    """An answer whose status the operation does not declare (``default`` aside)."""


def status_is_declared(ctx, response, case) -> bool | None:
    """Fail when the status is not one the operation lists explicitly: ``default`` documents 5xx only."""
    declared = {code for code in case.operation.responses.status_codes if code != "default"}
    if str(response.status_code) not in declared and response.status_code < 500:
        raise UndeclaredStatus(f"{case.operation.label} answered {response.status_code}, which it does not "
                               f"declare (declared: {', '.join(sorted(declared))})")
    return None


def problem_names_the_field(ctx, response, case) -> bool | None:
    """Fail when invalid input (400, 422) is refused without ``errors`` naming what was wrong."""
    if response.status_code in (400, 422) and not (response.json() or {}).get("errors"):
        raise AssertionError(f"{case.operation.label} refused input ({response.status_code}) naming no field: "
                             f"{response.text}")
    return None


CHECKS = [not_a_server_error, status_is_declared, content_type_conformance, response_schema_conformance,
          problem_names_the_field]


def permitted_roles(app) -> dict[tuple[str, str], tuple[str, ...]]:
    """The roles each operation admits (as ``authenticated`` records them), keyed by (METHOD, OpenAPI path)."""
    roles = {}
    for rule in app.url_map.iter_rules():
        path = RULE_PARAMETER.sub(r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            roles[(method, path)] = getattr(app.view_functions[rule.endpoint], "_pdx_roles", ()) or ROLES
    return roles


def _order(operation) -> tuple[int, int, str]:
    """Reads first, then writes, then the writes that take standing away (they would shadow the rest)."""
    write = operation.method.upper() != "GET"
    destructive = any(word in operation.path for word in DESTRUCTIVE)
    return (int(write), int(destructive), operation.label)


def _parameters(operation) -> list[dict[str, Any]]:
    """The operation's parameters as the document states them (its path item's too, not the security scheme)."""
    return [parameter.definition for parameter in operation.iter_parameters()
            if "x-original-security-type" not in parameter.definition]


def _can_be_invalid(operation) -> bool:
    """Whether some input can break the document: a body, a query or header parameter, a non-string path one."""
    return "requestBody" in operation.definition.raw or any(
        parameter["in"] != "path" or parameter.get("schema", {}).get("type") != "string"
        for parameter in _parameters(operation))


def _strategy(operation, scene: Scene, mode: GenerationMode):
    """Cases with generated path parameters, or with the scene's real resources in the path."""
    names = [parameter.name for parameter in operation.path_parameters]
    real = [operation.as_strategy(mode, path_parameters=values) for values in scene.path_parameter_sets(names)]
    return st.one_of(operation.as_strategy(mode), *real)


def _bounds(operation, scene: Scene) -> list[dict[str, Any]]:
    """Path parameters at and just past each integer path parameter's documented maximum, the rest real."""
    names = [parameter.name for parameter in operation.path_parameters]
    base = (scene.path_parameter_sets(names) or [{}])[0]
    found = []
    for parameter in _parameters(operation):
        maximum = parameter.get("schema", {}).get("maximum")
        if parameter["in"] == "path" and maximum is not None:
            found += [{**base, parameter["name"]: maximum}, {**base, parameter["name"]: maximum + 1}]
    return found


@dataclass(frozen=True)
class Target:
    """Where fuzzed requests go: the Flask app in-process (WSGI), or a served exchange over HTTP."""

    app: Any
    base_url: str | None = None

    def schema(self):
        """The document as the target serves it, its cases sent to the target."""
        if self.base_url is None:
            return schemathesis.openapi.from_wsgi(OPENAPI_PATH, self.app)
        return schemathesis.openapi.from_url(self.base_url + OPENAPI_PATH)


@dataclass
class Coverage:
    """What a fuzz run did: operations, cases, answers per (operation, status), refused signatures."""

    operations: int = 0
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    refused_signatures: list[str] = field(default_factory=list)

    def record(self, case, who: str, response) -> None:
        self.cases += 1
        self.statuses[(case.operation.label, response.status_code)] += 1
        # A negative case may leave a signature header out; a signature that was sent must verify.
        if who != ANONYMOUS and response.status_code == 401 and "does not verify" in response.json()["detail"]:
            self.refused_signatures.append(f"{case.operation.label} as {who}: {response.json()['detail']}")

    def answered(self, predicate) -> set[str]:
        return {label for (label, status), count in self.statuses.items() if predicate(status)}


def row_counts(app) -> tuple[int, ...]:
    """How many rows each table holds (one query)."""
    counts = select(*(select(func.count()).select_from(table).scalar_subquery()
                      for table in Base.metadata.sorted_tables))
    with app.app_context(), get_database().engine.connect() as connection:
        return tuple(connection.execute(counts).one())


def _send(target: Target, scene: Scene, case, who: str):
    """Send ``case`` as ``who``: the body serialized once, and those very bytes signed and sent.

    In process, a write the exchange refuses (4xx) must leave every table as it was.
    """
    kwargs = case.as_transport_kwargs()
    raw = body_bytes(kwargs)
    # The signature covers the path as the exchange reads it: percent-decoded.
    path = unquote(urlsplit(kwargs["url"]).path if "url" in kwargs else kwargs["path"])
    headers = {} if who == ANONYMOUS else credentials(scene.callers[who], case.method, path, raw)
    watched = target.base_url is None and case.method.upper() != "GET"
    before = row_counts(target.app) if watched else None
    response = case.call(headers=headers, **({} if raw is None else {"data": raw}))
    case.validate_response(response, checks=CHECKS)
    if watched and 400 <= response.status_code < 500:
        assert row_counts(target.app) == before, f"{case.operation.label} refused ({response.status_code}) " \
                                                 f"but changed the tables: {response.text}"
    return response


def fuzz(target: Target, scene: Scene, *, max_examples: int = MAX_EXAMPLES) -> Coverage:
    """Fuzz every operation of the document; fail on the first answer a check refuses."""
    schema = target.schema()
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    coverage = Coverage(operations=len(operations))
    permitted = permitted_roles(target.app)
    for operation in operations:
        admitted = st.sampled_from(permitted[(operation.method.upper(), operation.path)])
        # Half the cases go to a caller the operation admits, so that they reach past the role check.
        anyone = st.one_of(admitted, st.sampled_from((*ROLES, ANONYMOUS)))
        runs = [(_strategy(operation, scene, mode), anyone, max_examples) for mode in GenerationMode
                if mode is GenerationMode.POSITIVE or _can_be_invalid(operation)]
        runs += [(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=values), admitted, BOUND_EXAMPLES)
                 for values in _bounds(operation, scene)]
        for cases, callers, examples in runs:

            @settings(FUZZ_SETTINGS, max_examples=examples)
            @given(case=cases, who=callers)
            def one(case, who):
                coverage.record(case, who, _send(target, scene, case, who))

            one()
    return coverage


def test_the_openapi_document_is_valid_openapi_3(client):
    document = client.get(OPENAPI_PATH).get_json()
    assert document["openapi"].startswith("3.0")
    validate(document)


def _operations(document) -> int:
    return sum(1 for item in document["paths"].values() for method in item if method in HTTP_METHODS)


@pytest.mark.sql  # refused writes must change no table on every backend
def test_every_operation_survives_signed_fuzzing_by_every_role(app, client, world, public_context):
    scene = build(client, world, public_context)
    coverage = fuzz(Target(app), scene)
    assert coverage.operations == _operations(client.get(OPENAPI_PATH).get_json())
    # The hook signs what is sent: no request signed by a scene caller is refused for its signature, except a key
    # registration, which must be signed by the key it registers (a generated one).
    assert [refused for refused in coverage.refused_signatures if "/me/keys" not in refused] == []
    # The fuzzing reaches past authentication and roles: operations of every kind succeed at least once.
    succeeded = coverage.answered(lambda status: status < 300)
    assert {"POST /api/v1/participants", "POST /api/v1/participants/me/tokens", "POST /api/v1/domains",
            "GET /api/v1/grants/{grant_id}", "GET /api/v1/jobs/{job_id}", "GET /api/v1/ledger/export"} <= succeeded
    print(f"fuzzed {coverage.operations} operations, {coverage.cases} cases, {len(succeeded)} operations succeeded")


def test_a_served_exchange_survives_a_smaller_signed_fuzzing(app, client, world, public_context, database_url):
    scene = build(client, world, public_context)
    with serving(served_env(app, database_url), workers=2) as url:
        coverage = fuzz(Target(app, url), scene, max_examples=SERVED_MAX_EXAMPLES)
    assert coverage.operations == _operations(client.get(OPENAPI_PATH).get_json())
    assert [refused for refused in coverage.refused_signatures if "/me/keys" not in refused] == []
