"""The state the replay rebuilds, the error it raises, and helpers shared by the rule modules. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.vocab import AssetStatus, ParticipantStatus, Role
from ledger.entries import body_digest as digest
from ledger.errors import LedgerError

PROVIDER, CONSUMER, REGULATOR, OPERATOR = Role.PROVIDER, Role.CONSUMER, Role.REGULATOR, Role.OPERATOR
ROLES = frozenset({PROVIDER, CONSUMER, REGULATOR, OPERATOR})
NEUTRAL_ROLES = frozenset({REGULATOR, OPERATOR})  # separation of duties: never combined with another role
PENDING, ACTIVE, SUSPENDED = ParticipantStatus.PENDING, ParticipantStatus.ACTIVE, ParticipantStatus.SUSPENDED
PUBLISHED, RETIRED = AssetStatus.PUBLISHED, AssetStatus.RETIRED
GRADES = range(1, 5)
KEY_ALGORITHM = "ed25519"


class ReplayError(LedgerError, ValueError):
    """An entry breaks a rule of the exchange at its position in the log."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Participant:
    """An enrolled participant as the log has made it so far."""

    roles: frozenset[str]
    status: str


@dataclass(slots=True)
class Key:
    """A registered public key: its owner, the key itself, and the entries that registered and revoked it."""

    owner: str
    public_key: Ed25519PublicKey
    registered: int
    revoked: int | None = None


@dataclass(slots=True)
class Asset:
    """A published (or since retired) asset and the fields a grant over it relies on."""

    provider: str
    status: str
    grade: int
    scope: tuple[Any, ...]
    pending_endpoint: str | None = None  # a node endpoint change the operator has not decided yet


@dataclass
class State:
    """Everything the log has established up to some entry; records change in place as entries apply."""

    participants: dict[str, Participant] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    assets: dict[str, Asset] = field(default_factory=dict)
    domains: set[str] = field(default_factory=set)
    sources: dict[str, str] = field(default_factory=dict)  # data-element code -> its published source asset
    operator_enrolled: bool = False
    grants: dict[str, Any] = field(default_factory=dict)  # grant id -> ledger.replay.grants.Grant
    chain_deployments: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (seq, chain.deployed body)


Rule = Callable[[State, dict], None]
Route = Callable[[dict, dict], None]
API = "/api/v1"


def ref(entry: dict, name: str) -> str:
    """Return the one id of kind ``name`` the entry references."""
    ids = entry["refs"].get(name)
    if not (isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], str)):
        raise ReplayError("malformed-entry", f"{entry['type']} must reference exactly one {name}, found {ids!r}")
    return ids[0]


def roles_of(state: State, actor: str) -> frozenset[str]:
    participant = state.participants.get(actor)
    return frozenset() if participant is None else participant.roles


def require_role(state: State, entry: dict, role: str) -> None:
    if role not in roles_of(state, entry["actor"]):
        raise ReplayError("forbidden", f"{entry['type']} needs an actor with the role {role}; "
                                       f"{entry['actor']} has {sorted(roles_of(state, entry['actor'])) or 'none'}")


def enrolled(state: State, participant_id: str) -> Participant:
    participant = state.participants.get(participant_id)
    if participant is None:
        raise ReplayError("unknown-participant", f"participant {participant_id} was never enrolled")
    return participant



def expect(request: dict, method: str, *paths: str) -> None:
    if request["method"] != method or request["path"] not in paths:
        raise ReplayError("request-route", f"expected a request {method} {' or '.join(paths)}, found "
                                           f"{request['method']} {request['path']}")


def route(method: str, template: str, *names: str) -> Route:
    """Return a route check for ``method template``, the template filled with the entry's referenced ids."""

    def check(entry: dict, request: dict) -> None:
        expect(request, method, template.format(*(ref(entry, name) for name in names)))

    return check


def body_as_recorded(check_route: Route, *optional: str) -> Route:
    """Return ``route`` also requiring that the signed body is the entry's body (``optional`` null fields may
    have been left out of the request: the API fills them in)."""

    def check(entry: dict, request: dict) -> None:
        check_route(entry, request)
        body = entry["body"]
        sent = {digest(body), digest({name: value for name, value in body.items()
                                      if not (name in optional and value is None)})}
        if request["body_sha256"] not in sent:
            raise ReplayError("request-body", f"the request's body digest {request['body_sha256']} is not that of "
                                              f"the recorded body {body!r}")

    return check

