"""Connections to provider nodes pinned to the address that was checked: no second DNS resolution.

``requests`` resolves a URL's host name itself when it connects, so a name checked against the operator's address
policy could resolve again, differently, a moment later (DNS rebinding) and send the call to 127.0.0.1 or
169.254.169.254. Here the name is resolved once, every address it gave is checked, and each connection of the
session goes to the first of them: the URL's host is replaced by that address, while the ``Host`` header (and, for
https, the SNI and the certificate's expected name) keep the endpoint's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter


class PinError(ValueError):
    """A request through a pinned session named another host than the one that was resolved and checked."""


@dataclass(frozen=True)
class Target:
    """A node endpoint's host name, port and the one checked address every connection to it uses."""

    scheme: str
    host: str
    port: int
    address: str

    @property
    def netloc(self) -> str:
        """The address and port as they go in a URL."""
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


class PinnedAdapter(HTTPAdapter):
    """A transport that connects to ``target.address`` whatever the host name in the request's URL."""

    def __init__(self, target: Target) -> None:
        self.target = target
        super().__init__(max_retries=0)
        if target.scheme == "https":
            self.poolmanager.connection_pool_kw.update(server_hostname=target.host, assert_hostname=target.host)

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        """Send ``request`` to the pinned address, with the endpoint's name as its ``Host``."""
        parts = urlsplit(request.url)
        if (parts.hostname or "").lower() != self.target.host.lower() or parts.scheme != self.target.scheme:
            raise PinError(f"a session pinned to {self.target.host} was asked for {parts.scheme}://{parts.hostname}")
        request.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
        request.url = urlunsplit((parts.scheme, self.target.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


def session(target: Target) -> requests.Session:
    """Return a session whose every request to ``target``'s scheme goes to its pinned address (nothing else)."""
    pinned = requests.Session()
    pinned.trust_env = False  # a proxy from the environment would resolve the name again
    for scheme in ("http://", "https://"):
        pinned.mount(scheme, PinnedAdapter(target))
    return pinned
