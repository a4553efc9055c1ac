"""Replay rules for participants, keys and domains (as participants.rules states them). Pure."""

from __future__ import annotations

from datetime import timedelta

from common import crypto, key_vouch
from ledger.entries import SYSTEM_ACTOR, parse_time
from ledger.replay.base import (
    ACTIVE,
    API,
    KEY_ALGORITHM,
    NEUTRAL_ROLES,
    OPERATOR,
    PENDING,
    ROLES,
    SUSPENDED,
    Key,
    Participant,
    ReplayError,
    Route,
    Rule,
    State,
    body_as_recorded,
    enrolled,
    expect,
    ref,
    require_role,
    roles_of,
    route,
)

TIMESTAMP_SLACK = timedelta(seconds=5)  # an entry is stamped a moment after the exchange checked what it records
# entry type -> (statuses the participant may be in, status it leads to); as participants.rules
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "participant.admitted": (frozenset({PENDING}), ACTIVE),
    "participant.suspended": (frozenset({PENDING, ACTIVE}), SUSPENDED),
    "participant.reinstated": (frozenset({SUSPENDED}), ACTIVE),
}


def _genesis(state: State, entry: dict) -> None:
    if entry["seq"] != 0 or entry["actor"] != SYSTEM_ACTOR:
        raise ReplayError("genesis", f"log.genesis is entry 0 by {SYSTEM_ACTOR}; found entry {entry['seq']} by "
                                     f"{entry['actor']}")


def _enrolled(state: State, entry: dict) -> None:
    participant_id = ref(entry, "participant")
    roles, status = entry["body"]["roles"], entry["body"]["status"]
    if participant_id in state.participants:
        raise ReplayError("duplicate-participant", f"participant {participant_id} is already enrolled")
    if not (isinstance(roles, list) and roles and all(isinstance(role, str) for role in roles)
            and len(set(roles)) == len(roles) and set(roles) <= ROLES):
        raise ReplayError("roles", f"roles must be distinct known roles ({', '.join(sorted(ROLES))}), found {roles!r}")
    if NEUTRAL_ROLES.intersection(roles) and len(roles) > 1:
        raise ReplayError("roles", f"{', '.join(roles)}: operator and regulator take no other role")
    if entry["actor"] == SYSTEM_ACTOR:  # bootstrapping: the exchange enrols its first operator, active at once
        if state.operator_enrolled:
            raise ReplayError("bootstrap", "the exchange enrols a participant by itself only while it has no "
                                           "operator, and one was already enrolled")
        if roles != [OPERATOR] or status != ACTIVE:
            raise ReplayError("bootstrap", f"the exchange enrols by itself only its first operator, active; found "
                                           f"roles {roles} and status {status!r}")
    else:
        require_role(state, entry, OPERATOR)
        if status != PENDING:
            raise ReplayError("status", f"an enrolled participant starts {PENDING}, found {status!r}")
    state.participants[participant_id] = Participant(frozenset(roles), status)
    state.operator_enrolled = state.operator_enrolled or OPERATOR in roles


def _status_change(state: State, entry: dict) -> None:
    require_role(state, entry, OPERATOR)
    participant_id = ref(entry, "participant")
    if participant_id == entry["actor"]:
        raise ReplayError("self-status", f"operator {participant_id} changed its own status")
    participant = enrolled(state, participant_id)
    sources, target = TRANSITIONS[entry["type"]]
    if participant.status not in sources:
        raise ReplayError("transition", f"{entry['type']} applies to a participant that is "
                                        f"{' or '.join(sorted(sources))}; {participant_id} is {participant.status}")
    if entry["body"]["status"] != target:
        raise ReplayError("status", f"{entry['type']} leads to {target}, the entry says {entry['body']['status']!r}")
    participant.status = target


def _key_registered(state: State, entry: dict) -> None:
    owner, key_id = ref(entry, "participant"), ref(entry, "key")
    public_text, algorithm = entry["body"]["public_key"], entry["body"]["algorithm"]
    if owner != entry["actor"]:
        raise ReplayError("key-owner", f"{entry['actor']} registered a key for {owner}; keys are registered by "
                                       f"their owner")
    if algorithm != KEY_ALGORITHM or not isinstance(public_text, str):
        raise ReplayError("key", f"expected an {KEY_ALGORITHM} public key, found {algorithm!r}")
    try:
        public_key, fingerprint = crypto.load_public_key(public_text), crypto.key_fingerprint(public_text)
    except (crypto.BadKey, ValueError) as exc:
        raise ReplayError("key", f"public key {public_text!r} is not a raw Ed25519 key in base64: {exc}") from exc
    if fingerprint != key_id:
        raise ReplayError("key-id", f"key id {key_id} is not the SHA-256 of its public key ({fingerprint})")
    if key_id in state.keys:
        raise ReplayError("duplicate-key", f"key {key_id} was already registered at entry "
                                           f"{state.keys[key_id].registered}")
    _vouched(state, entry, owner, public_text)
    state.keys[key_id] = Key(owner, public_key, entry["seq"])


def _vouched(state: State, entry: dict, owner: str, public_text: str) -> None:
    """Check the endorsement or operator approval a registration carries, against the log so far.

    Only the exchange's very first key, its bootstrapped operator's, comes with neither. An approval is used once
    because it names one key, and a key id is registered once (``duplicate-key``).
    """
    endorsement, approval = entry["body"].get("endorsement"), entry["body"].get("approval")
    if endorsement is None and approval is None:
        if state.keys or OPERATOR not in roles_of(state, owner):
            raise ReplayError("key-unvouched", f"key {ref(entry, 'key')} of {owner} is registered with neither an "
                                               f"endorsement by one of its keys nor an operator's approval; only "
                                               f"the first key of the exchange, its operator's, needs none")
        return
    try:
        if endorsement is not None:
            key_vouch.check_endorsement(owner, public_text, endorsement, _live_key(state, owner, endorsement["key"]))
        if approval is not None:
            operator = approval["operator"]
            active = OPERATOR in roles_of(state, operator) and state.participants[operator].status == ACTIVE
            key_vouch.check_approval(owner, public_text, approval, operator_active=active,
                                     operator_key=_live_key(state, operator, approval["key"]),
                                     approved_at=parse_time(approval["approved_at"]),
                                     now=parse_time(entry["time"]), slack=TIMESTAMP_SLACK)
    except key_vouch.VouchRefused as exc:
        raise ReplayError(f"{exc.vouch}-{exc.reason}", f"key {ref(entry, 'key')} of {owner}: {exc}") from exc


def _live_key(state: State, owner: str, key_id: str) -> str | None:
    """Return the base64 public key ``key_id`` if the log so far registers it to ``owner`` and has not revoked it."""
    key = state.keys.get(key_id)
    if key is None or key.owner != owner or key.revoked is not None:
        return None
    return crypto.public_key_text(key.public_key)


def _key_revoked(state: State, entry: dict) -> None:
    owner, key_id = ref(entry, "participant"), ref(entry, "key")
    if entry["actor"] != owner and OPERATOR not in roles_of(state, entry["actor"]):
        raise ReplayError("forbidden", f"{entry['actor']} revoked a key of {owner}; only the owner or an "
                                       f"operator may")
    key = state.keys.get(key_id)
    if key is None or key.owner != owner:
        raise ReplayError("unknown-key", f"key {key_id} is not a registered key of {owner}")
    if key.revoked is not None:
        raise ReplayError("revoked-key", f"key {key_id} was already revoked at entry {key.revoked}")
    key.revoked = entry["seq"]



def _domain_added(state: State, entry: dict) -> None:
    require_role(state, entry, OPERATOR)
    code = entry["body"]["code"]
    if not isinstance(code, str) or ref(entry, "domain") != code:
        raise ReplayError("malformed-entry", f"domain.added must reference the domain code it adds, {code!r}")
    if code in state.domains:
        raise ReplayError("duplicate-domain", f"domain {code} was already added")
    state.domains.add(code)



def _key_registration(entry: dict, request: dict) -> None:
    expect(request, "POST", f"{API}/participants/me/keys")
    if request["key"] != ref(entry, "key"):
        raise ReplayError("request-key", f"a key registration is signed by the key it registers, "
                                         f"{ref(entry, 'key')}; found key {request['key']}")




def _key_revocation(entry: dict, request: dict) -> None:
    owner, key_id = ref(entry, "participant"), ref(entry, "key")
    paths = [f"{API}/participants/{owner}/keys/{key_id}/revoke"]
    if owner == entry["actor"]:
        paths.append(f"{API}/participants/me/keys/{key_id}/revoke")
    expect(request, "POST", *paths)



RULES: dict[str, Rule] = {
    "log.genesis": _genesis,
    "participant.enrolled": _enrolled,
    **{entry_type: _status_change for entry_type in TRANSITIONS},
    "key.registered": _key_registered,
    "key.revoked": _key_revoked,
    "domain.added": _domain_added,
}

ROUTES: dict[str, Route] = {
    "participant.enrolled": route("POST", f"{API}/participants"),
    "participant.admitted": route("POST", API + "/participants/{}/admit", "participant"),
    "participant.suspended": route("POST", API + "/participants/{}/suspend", "participant"),
    "participant.reinstated": route("POST", API + "/participants/{}/reinstate", "participant"),
    "key.registered": _key_registration,
    "key.revoked": _key_revocation,
    "domain.added": body_as_recorded(route("POST", f"{API}/domains"), "eu_theme"),
}
