"""Provider nodes as the exchange reaches them: which addresses it may call, and the proof that a node holds its
provider's key, checked before the node is sent anything (a ticket, a plan, a context).

An endpoint may name only public addresses, plus what the operator's ``PDX_ALLOW_PRIVATE_NODES`` adds:

    none       public addresses only (a production exchange whose nodes are on the internet)
    loopback   and 127.0.0.0/8, ::1 (the default: `pdx demo` and the tests run nodes on this machine)
    private    and private ranges (10/8, 172.16/12, 192.168/16, fc00::/7 …): nodes on the operator's network
    all        and link-local, multicast and reserved ones (169.254.169.254, a cloud's metadata service …)

Addresses are checked when an endpoint is registered (literal addresses and ``localhost``), and resolved and
checked again before every call — resolved once: the identity challenge and the job go to the very address that
was checked (``catalog.pinned``), so a name that re-resolves elsewhere (DNS rebinding) changes nothing. Jobs run in worker threads without the app's context, so the app whose keys
and setting apply is bound when the catalog blueprint is registered (``bind``).

    NodeError
     ├── ForbiddenAddress   the endpoint names or resolves to an address the operator's policy refuses
     ├── Unreachable        the node did not answer the identity challenge
     └── Unverified         it answered, but without a proof signed by one of the provider's registered keys
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from typing import Iterable
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app, has_app_context
from sqlalchemy import select

from catalog import pinned
from common.db import get_database
from protocol import identity

PUBLIC, LOOPBACK, PRIVATE, OTHER = "public", "loopback", "private", "other"
ALLOWED: dict[str, frozenset[str]] = {
    "none": frozenset({PUBLIC}),
    "loopback": frozenset({PUBLIC, LOOPBACK}),
    "private": frozenset({PUBLIC, LOOPBACK, PRIVATE}),
    "all": frozenset({PUBLIC, LOOPBACK, PRIVATE, OTHER}),
}
SETTING = "PDX_ALLOW_PRIVATE_NODES"
MAX_PROOF_BYTES = 4096
_bound: Flask | None = None


class NodeError(Exception):
    """A node endpoint the exchange will not send a job to; ``code`` is a fixed problem code."""

    code = "node-error"


class ForbiddenAddress(NodeError):
    code = "node-address-forbidden"


class Unreachable(NodeError):
    code = "node-unreachable"


class Unverified(NodeError):
    code = "node-unverified"


def address_class(address: str) -> str:
    """Return which class of the policy an IP address falls in."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return OTHER
    return PUBLIC if ip.is_global else PRIVATE


def _host(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ForbiddenAddress(f"node endpoint {endpoint!r} is not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ForbiddenAddress(f"node endpoint {endpoint!r} has an invalid port") from exc
    return parts.hostname, port


def _refuse(endpoint: str, address: str, policy: str) -> None:
    kind = address_class(address)
    if kind not in ALLOWED[policy]:
        raise ForbiddenAddress(f"node endpoint {endpoint} is a {kind} address ({address}), which "
                               f"{SETTING}={policy} does not allow; use a public address or ask the operator")


def check_address(endpoint: str, policy: str, *, resolve: bool = True) -> None:
    """Raise ``ForbiddenAddress`` if the endpoint names (or, with ``resolve``, resolves to) a refused address."""
    if resolve:
        target(endpoint, policy)
        return
    host, _port = _host(endpoint)
    try:
        _refuse(endpoint, str(ipaddress.ip_address(host)), policy)
        return
    except ValueError:
        pass  # a name, not a literal address
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        _refuse(endpoint, "127.0.0.1", policy)


def target(endpoint: str, policy: str) -> pinned.Target:
    """Resolve the endpoint's host once, refuse it unless every address it gave is allowed, and return the address
    all connections to it will use (``ForbiddenAddress``, or ``Unreachable`` when the name does not resolve)."""
    check_address(endpoint, policy, resolve=False)
    host, port = _host(endpoint)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unreachable(f"node endpoint {endpoint}: its host name does not resolve") from exc
    addresses = [sockaddr[0] for *_, sockaddr in found]
    if not addresses:
        raise Unreachable(f"node endpoint {endpoint}: its host name does not resolve")
    for address in addresses:
        _refuse(endpoint, address, policy)
    return pinned.Target(urlsplit(endpoint).scheme, host, port, addresses[0])


def verify(http: requests.Session, endpoint: str, provider_id: str, keys: Iterable[tuple[str, str]],
           timeout: float) -> str:
    """Challenge the node with a fresh nonce over ``http``; return the id of the provider key that signed its
    answer."""
    nonce = secrets.token_hex(16)
    try:
        with http.get(f"{endpoint.rstrip('/')}/v1/identity", params={"nonce": nonce}, timeout=timeout,
                          allow_redirects=False, stream=True) as response:
            raw = response.raw.read(MAX_PROOF_BYTES + 1, decode_content=True)
            status = response.status_code
    except requests.RequestException as exc:
        raise Unreachable(f"the node of {provider_id} at {endpoint} did not answer ({type(exc).__name__})") from exc
    if status != 200 or len(raw) > MAX_PROOF_BYTES:
        raise Unverified(f"the node of {provider_id} at {endpoint} gave no identity proof (HTTP {status})")
    try:
        proof = json.loads(raw)
    except ValueError as exc:
        raise Unverified(f"the node of {provider_id} at {endpoint} gave no identity proof") from exc
    for key_id, public_key in keys:
        try:
            identity.verify(public_key, provider_id, nonce, proof)
            return key_id
        except identity.IdentityError:
            continue
    raise Unverified(f"the node at {endpoint} did not prove it holds a registered key of {provider_id}")


def bind(app: Flask) -> None:
    """Make ``app`` the one whose setting and keys calls from worker threads use."""
    global _bound
    _bound = app


def _app() -> Flask:
    if has_app_context():
        return current_app._get_current_object()
    if _bound is None:
        raise RuntimeError("no exchange app is bound to reach provider nodes")
    return _bound


def policy() -> str:
    """Return the operator's address policy for nodes."""
    return _app().config[SETTING]


def provider_keys(provider_id: str) -> list[tuple[str, str]]:
    """Return the (id, public key) of each of the provider's registered, unrevoked keys."""
    from participants.models import ParticipantKey

    with _app().app_context(), get_database().sessionmaker() as session:
        rows = session.execute(select(ParticipantKey.id, ParticipantKey.public_key).where(
            ParticipantKey.participant_id == provider_id, ParticipantKey.revoked_at.is_(None)))
        return [(key_id, public_key) for key_id, public_key in rows]


def open_verified(endpoint: str, provider_id: str, timeout: float) -> requests.Session:
    """Resolve and check the endpoint's address once, then check the node's identity over a session pinned to that
    address; return the session, for the calls that follow (the caller closes it)."""
    http = pinned.session(target(endpoint, policy()))
    try:
        verify(http, endpoint, provider_id, provider_keys(provider_id), timeout)
    except BaseException:
        http.close()
        raise
    return http


def check_and_verify(endpoint: str, provider_id: str, timeout: float) -> str:
    """Check the endpoint's addresses and the node's identity; return the key id it proved."""
    with pinned.session(target(endpoint, policy())) as http:
        return verify(http, endpoint, provider_id, provider_keys(provider_id), timeout)


# What a verified node may answer instead of a result: problem type slug -> (HTTP status, what the consumer is
# told, whether the job's quota is given back). Nothing else a node says is passed on; a refusal that can depend
# on the data (cannot compute: a small group, a missing column) keeps the quota spent, so probing is never free.
NODE_PROBLEMS: dict[str, tuple[int, str, bool]] = {
    "node-ticket-refused": (403, "the node refused the job's ticket (expired, replayed, or for another node)", True),
    "node-unauthenticated": (401, "the node did not receive a ticket it could authenticate", True),
    "node-grant-not-current": (403, "the node had no current statement from the exchange that the job's grant is "
                                    "active", True),
    "node-not-mounted": (404, "the node does not mount every asset of the ticket", True),
    "node-unsupported": (422, "the node does not run this kind of computation", True),
    "node-bad-request": (400, "the node could not read the request", True),
    "node-cannot-compute": (422, "the node cannot compute this on its data: a group below the minimum size, a "
                                 "column or id it does not hold, or a value beyond its declared range (declare the "
                                 "range on the asset's field or pass ranges=)", False),
    "node-beyond-exact-range": (422, "a sum of the plan is beyond the exact range of encrypted sums (about 1e43): "
                                     "use coarser units for its large columns (e.g. thousands) or a shift near their "
                                     "mean", False),
    "node-limit-exceeded": (403, "the job reads or returns more than its ticket's limits allow (declare the rows "
                                 "and result cells it needs)", False),
}
PROBLEM_PREFIX = "urn:pdx:problem:"


def node_problem(status: int, answer: object) -> tuple[str, str, bool]:
    """Return the fixed code, message and refund of a node's error answer (an unknown one: no refund)."""
    if isinstance(answer, dict) and isinstance(answer.get("type"), str):
        slug = answer["type"].removeprefix(PROBLEM_PREFIX)
        known = NODE_PROBLEMS.get(slug)
        if known is not None and known[0] == status == answer.get("status"):
            return slug, known[1], known[2]
    return "node-error", f"the node failed (HTTP {status})", False
