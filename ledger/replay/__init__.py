"""Business replay of the ledger: rebuild participants, keys, assets, domains and grants entry by entry, and
refuse an entry the exchange's rules would not have allowed at its position in the log. Pure.

The rules are re-stated here rather than imported from ``exchange`` or ``authorization`` so that an auditor
needs nothing but the ledger package (no Flask, no SQLAlchemy). Every entry type has a rule in ``RULES`` (what
the entry may change, given the state before it) and, unless the exchange writes it by itself
(``SYSTEM_TYPES``), a route in ``ROUTES`` (which signed API request may cause it).

    ValueError
     └── ReplayError      an entry the rules do not allow where it stands; ``kind`` names the broken rule
"""

from __future__ import annotations

from typing import Any, Callable

from ledger.entries import SYSTEM_ACTOR, EntryError
from ledger.replay import catalog, chain, federated, grants, participants
from ledger.replay.base import ACTIVE, ReplayError, Route, Rule, State

__all__ = ["RULES", "ROUTES", "SYSTEM_TYPES", "ReplayError", "State", "apply", "check_route"]

RULES: dict[str, Rule] = {**participants.RULES, **catalog.RULES, **grants.RULES, **federated.RULES, **chain.RULES}
ROUTES: dict[str, Route] = {**participants.ROUTES, **catalog.ROUTES, **grants.ROUTES, **federated.ROUTES}
# Entry types the exchange writes by itself, without a signed request; each rule says when that is allowed.
SYSTEM_TYPES = frozenset({"log.genesis", "participant.enrolled", *grants.SYSTEM_TYPES, *federated.SYSTEM_TYPES,
                          *chain.SYSTEM_TYPES})


def apply(state: State, entry: dict) -> None:
    """Check one parsed entry against the rules and apply it to ``state``; raise ``ReplayError`` if it breaks one."""
    rule = RULES.get(entry["type"])
    if rule is None:
        raise ReplayError("unknown-type", f"entry type {entry['type']!r} is not one the exchange writes")
    actor = entry["actor"]
    if actor != SYSTEM_ACTOR:
        participant = state.participants.get(actor)
        if participant is None:
            raise ReplayError("unknown-actor", f"actor {actor} was never enrolled")
        if participant.status != ACTIVE:
            raise ReplayError("inactive-actor", f"actor {actor} is {participant.status}, expected active")
    _guarded(entry["type"], rule, state, entry)


def check_route(entry: dict, request: dict) -> None:
    """Raise ``ReplayError`` unless ``request`` is the API call that makes an entry of this type."""
    route = ROUTES.get(entry["type"])
    if route is None:
        raise ReplayError("request-route", f"no signed request makes a {entry['type']} entry")
    _guarded(entry["type"], route, entry, request)


def _guarded(entry_type: str, check: Callable[..., None], *args: Any) -> None:
    """Run a rule or route check, reporting a field of the wrong shape as the entry's fault, not the auditor's."""
    try:
        check(*args)
    except (KeyError, TypeError, AttributeError, ValueError, EntryError) as exc:
        if isinstance(exc, ReplayError):
            raise
        raise ReplayError("malformed-entry", f"{entry_type} entry has a missing or mistyped field ({exc!r})") \
            from exc
