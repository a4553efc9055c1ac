"""A thin HTTP client of the exchange API that turns problem details into exceptions."""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.signing import SIGNED_METHODS, signature_headers

DEFAULT_URL = "http://127.0.0.1:5000"
TIMEOUT_SECONDS = 30


class ApiError(Exception):
    """The exchange answered with an error (a problem-details body) or could not be reached."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        detail = problem.get("detail") or problem.get("title") or "request failed"
        fields = "".join(f"\n  {name}: {'; '.join(msgs)}" for name, msgs in (problem.get("errors") or {}).items())
        super().__init__(f"{status}: {detail}{fields}")


class ExchangeClient:
    """Calls the exchange's REST API with a bearer token."""

    def __init__(self, base_url: str = DEFAULT_URL, token: str | None = None,
                 signing_key: Ed25519PrivateKey | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.signing_key = signing_key
        self._participant_id: str | None = None
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def participant_id(self) -> str:
        """Return the id of the participant the token belongs to (asked once)."""
        if self._participant_id is None:
            self._participant_id = self.request("GET", "/participants/me")["id"]
        return self._participant_id

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
                signing_key: Ed25519PrivateKey | None = None) -> Any:
        """Send a request to ``/api/v1{path}`` (signed when it changes state) and return the JSON answer."""
        headers = {}
        key = signing_key or self.signing_key
        if method.upper() in SIGNED_METHODS and key is not None:
            headers = signature_headers(key, actor=self.participant_id(), method=method,
                                        path=urlsplit(f"{self.base_url}/api/v1{path}").path, body=json)
        try:
            response = self.session.request(method, f"{self.base_url}/api/v1{path}", json=json, params=params,
                                            headers=headers, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise ApiError(0, {"detail": f"cannot reach the exchange at {self.base_url}: {exc}"}) from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:500]}
            raise ApiError(response.status_code, problem)
        return response.json() if response.content else None

    def stream(self, path: str) -> Iterator[str]:
        """GET ``/api/v1{path}`` and yield the answer's lines as they arrive (for the ledger export)."""
        try:
            response = self.session.get(f"{self.base_url}/api/v1{path}", stream=True, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise ApiError(0, {"detail": f"cannot reach the exchange at {self.base_url}: {exc}"}) from exc
        with response:
            if response.status_code >= 400:
                raise ApiError(response.status_code, response.json())
            response.encoding = "utf-8"  # JSON lines are UTF-8 whatever the Content-Type says
            yield from (line for line in response.iter_lines(decode_unicode=True) if line)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, signing_key: Ed25519PrivateKey | None = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {}, signing_key=signing_key)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)
