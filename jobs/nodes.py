"""The seam between the exchange and provider nodes: one call sends a node its ticket, the grant's current status
statement and the job's payload, and returns the node's answer or a ``NodeFailure`` with a fixed problem code.

    NodeCall        what one provider is sent for one job or round
    NodeClient      the interface the runner and the federated rounds call (injected: ``runner.init_app(nodes=…)``)
    HttpNodeClient  the real one: verify the node's identity over a connection pinned to the checked address, then
                    POST ``/v1/jobs/run`` with the ticket and statement in headers (``catalog.nodes``)

Tests inject a client that calls the node's own Flask app in process (tests/nodes.py); a few attack tests and the
end-to-end ones use real `pdx node serve` processes through ``HttpNodeClient``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from protocol import grantstatus
from protocol.tickets import SignedTicket


class NodeFailure(Exception):
    """A provider node did not deliver a valid result; ``refused`` when the job's quota stays spent (anything but a
    verified node's refusal that cannot depend on the data); ``probe`` is the fixed code of a node's refusal that
    may depend on the data (a tracker's answer), counted towards the grant's refusal alerts."""

    def __init__(self, message: str, *, refused: bool = False, probe: str | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        self.probe = probe


@dataclass(frozen=True)
class NodeCall:
    """What one provider's node is sent for one job or round."""

    endpoint: str
    provider_id: str
    ticket: SignedTicket
    statement: grantstatus.Statement
    params: dict[str, Any]
    context: bytes | None
    weights: bytes | None = None

    def headers(self) -> dict[str, str]:
        """The ticket and the statement, which the node authenticates before it reads the body."""
        return {**self.ticket.to_headers(), **self.statement.to_headers()}

    def body(self) -> dict[str, Any]:
        """The job's parameters and the consumer's public context (and encrypted weights, for scoring)."""
        body: dict[str, Any] = {"params": self.params, "context": base64.b64encode(self.context or b"").decode()}
        if self.weights is not None:
            body["weights"] = base64.b64encode(self.weights).decode()
        return body


class NodeClient(Protocol):
    """Calls provider nodes."""

    def run(self, call: NodeCall, timeout: float) -> dict[str, Any]:
        """Return the node's answer ``{result, receipt, signature}``, or raise ``NodeFailure``."""


def answer_of(provider: str, status: int, answer: Any) -> dict[str, Any]:
    """Return a node's answer, or raise ``NodeFailure`` with the fixed code of its refusal (never its words).

    The quota is given back (``refused=False``) only when the verified node reports a known problem that says it
    could not run the job (``catalog.nodes.NODE_PROBLEMS``); an unknown answer or a refusal that may depend on the
    data keeps it spent, so no probe is free.
    """
    from catalog import nodes

    if status != 200:
        code, message, refund = nodes.node_problem(status, answer)
        raise NodeFailure(f"provider {provider} refused: {code}: {message}", refused=not refund,
                          probe=None if refund else code)
    if not isinstance(answer, dict):
        raise NodeFailure(f"provider {provider}'s node answered with something that is not a result", refused=True)
    return answer


class HttpNodeClient:
    """Provider nodes over HTTP, each once it proved it holds the provider's key, over a pinned connection."""

    def run(self, call: NodeCall, timeout: float) -> dict[str, Any]:
        """Send the node its call; an unreachable or unverified node keeps the job's quota spent."""
        from catalog import nodes

        provider = call.provider_id
        try:
            http = nodes.open_verified(call.endpoint, provider, timeout)
        except nodes.NodeError as exc:
            raise NodeFailure(f"provider {provider}'s node was not sent the job: {exc.code}: {exc}",
                              refused=True) from exc
        try:
            with http:
                response = http.post(f"{call.endpoint.rstrip('/')}/v1/jobs/run", json=call.body(),
                                     headers=call.headers(), timeout=timeout, allow_redirects=False)
            try:
                answer = response.json()
            except ValueError:
                answer = None
        except requests.RequestException as exc:
            raise NodeFailure(f"provider node {call.endpoint} of {provider} did not answer: {type(exc).__name__}",
                              refused=True) from exc
        return answer_of(provider, response.status_code, answer)
