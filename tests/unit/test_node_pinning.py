"""DNS rebinding against node calls: a name checked against the address policy must not be resolved again when
the exchange connects, or it could point at 127.0.0.1 or 169.254.169.254 by then. ``socket.getaddrinfo`` stands
in for a rebinding DNS server: the name gives a checked address first and another one afterwards."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from catalog import nodes, pinned

NAME = "rebind.test"


class Recorder:
    """An HTTP service on ``address`` that records the Host header of every request."""

    def __init__(self, address: str, port: int = 0) -> None:
        self.hosts: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                recorder.hosts.append(self.headers.get("Host", ""))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def services():
    """The node on 127.0.0.1 and, on the same port of 127.0.0.2, what the name rebinds to (the metadata service)."""
    node = Recorder("127.0.0.1")
    inside = Recorder("127.0.0.2", node.port)
    yield node, inside
    node.close()
    inside.close()


@pytest.fixture
def rebinding(monkeypatch):
    """Make ``NAME`` resolve to ``answers[0]`` once, then to ``answers[1]``; return the list of its lookups."""
    real, lookups = socket.getaddrinfo, []
    answers = ["127.0.0.1", "127.0.0.2"]

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(lookups), 1)]
        lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_an_unpinned_call_resolves_the_name_again_and_reaches_what_it_rebinds_to(services, rebinding):
    node, inside = services
    url = f"http://{NAME}:{node.port}/v1/identity"
    nodes.check_address(url, "loopback")  # the check sees 127.0.0.1
    requests.get(url, timeout=10)  # what the exchange used to do: requests resolves on its own
    assert inside.hosts == [f"{NAME}:{node.port}"] and rebinding[1] == ["127.0.0.1", "127.0.0.2"]


def test_a_pinned_session_connects_only_to_the_checked_address(services, rebinding):
    node, inside = services
    endpoint = f"http://{NAME}:{node.port}"
    target = nodes.target(endpoint, "loopback")
    assert target.address == "127.0.0.1"
    with pinned.session(target) as http:
        for _ in range(3):
            assert http.get(f"{endpoint}/v1/identity", timeout=10, allow_redirects=False).status_code == 200
    assert node.hosts == [f"{NAME}:{node.port}"] * 3  # the node still sees its own name
    assert inside.hosts == []
    assert rebinding[1] == ["127.0.0.1"]  # resolved once, at the check


@pytest.mark.parametrize("refused, policy", [("169.254.169.254", "private"), ("127.0.0.1", "none"),
                                             ("10.0.0.7", "loopback")])
def test_a_name_resolving_to_a_refused_address_is_refused_before_any_connection(rebinding, refused, policy):
    rebinding[0][0] = refused
    with pytest.raises(nodes.ForbiddenAddress, match=refused):
        nodes.target(f"http://{NAME}:8701", policy)


def test_a_pinned_session_refuses_a_request_for_another_host(services, rebinding):
    node, _inside = services
    with pinned.session(nodes.target(f"http://{NAME}:{node.port}", "loopback")) as http:
        with pytest.raises(pinned.PinError):
            http.get(f"http://elsewhere.test:{node.port}/", timeout=10)
    assert node.hosts == []


def test_an_https_pin_keeps_the_name_for_sni_and_the_certificate():
    adapter = pinned.PinnedAdapter(pinned.Target("https", "node.example", 443, "203.0.113.9"))
    assert adapter.poolmanager.connection_pool_kw["server_hostname"] == "node.example"
    assert adapter.poolmanager.connection_pool_kw["assert_hostname"] == "node.example"
