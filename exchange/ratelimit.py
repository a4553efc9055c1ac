"""Rate limits (Flask-Limiter): a generous budget per client, and a lockout of an address that keeps
presenting bad credentials. Both answer 429 with Retry-After.

Counters live in ``PDX_RATE_LIMIT_STORAGE``: ``memory://`` (the default) counts per server process, so with
several gunicorn workers each counts on its own; ``redis://host:6379/0`` shares the counts between workers and
servers.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask, Response, current_app, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from common.config import ConfigError
from web import problems

EXTENSION_KEY = "pdx.limiter"
LOCKOUT_SCOPE = "bad-credentials"


def _client() -> str:
    """Count a caller by its token when it shows one (hashed: a counter key is no credential), else its address."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return "token:" + hashlib.sha256(header.encode("utf-8", "replace")).hexdigest()[:32]
    return "address:" + _address()


def _address() -> str:
    return request.remote_addr or "unknown"


def _bad_credentials(response: Response) -> bool:
    return response.status_code == 401


def _retry_after() -> int:
    limit = current_app.extensions[EXTENSION_KEY].current_limit
    reset_at = limit.window[0] if limit is not None else time.time() + 1  # when the breached window ends
    return max(1, math.ceil(reset_at - time.time()))


def _too_many(error: RateLimitExceeded) -> Response:
    seconds = _retry_after()
    if error.limit.scope == LOCKOUT_SCOPE:
        detail = (f"too many requests with bad credentials from this address ({error.limit.limit}); it is locked "
                  f"out for {seconds} s")
    else:
        detail = f"rate limit of {error.limit.limit} exceeded; retry in {seconds} s"
    return problems.problem(429, "too-many-requests", problems.TITLES["too-many-requests"], detail,
                            extra={"retry_after_seconds": seconds}, headers={"Retry-After": str(seconds)})


def _checked(setting: str, value: str) -> str:
    try:
        parse_many(value)
    except ValueError as exc:
        raise ConfigError(f"PDX_{setting} must be a rate such as '600 per minute', got {value!r}") from exc
    return value


def init_app(app: Flask, *, storage: str, limit: str, bad_credentials: str, key_prefix: str = "pdx") -> Limiter:
    """Limit every client to ``limit`` and lock an address out after ``bad_credentials`` 401 answers."""
    limiter = Limiter(
        key_func=_client, storage_uri=storage, strategy="fixed-window", headers_enabled=False, key_prefix=key_prefix,
        application_limits=[
            ApplicationLimit(_checked("RATE_LIMIT", limit), key_function=_client, scope="client"),
            ApplicationLimit(_checked("RATE_LIMIT_BAD_CREDENTIALS", bad_credentials), key_function=_address,
                             scope=LOCKOUT_SCOPE, deduct_when=_bad_credentials),
        ])
    limiter.init_app(app)
    app.extensions[EXTENSION_KEY] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many)
    return limiter
