"""What every request and response of the exchange passes through: bounded body parsing before any work, and
security headers on the way out (no sniffing, no framing, a content security policy, nothing cached)."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request

from common import webjson
from common.errors import MalformedBody
from common.jsonlimits import JSONLimitError

# An API answer is data, never a page: it may load nothing and be framed by no one.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The Swagger UI page loads its scripts and styles from this origin; its one inline script is allowed by hash.
DOCS_POLICY = ("default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
               "base-uri 'none'; form-action 'none'")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
FIXED_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                 "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin"}


def _refuse(exc: JSONLimitError) -> None:
    raise MalformedBody(str(exc), errors={"_body": [str(exc)]}, extra={"limit": exc.limit}) from exc


def script_hashes(page: bytes) -> list[str]:
    """Return the CSP source expressions ('sha256-…') of the inline scripts of an HTML page."""
    return [f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
            for script in INLINE_SCRIPT.findall(page)]


def _secure(response: Response) -> Response:
    for name, value in FIXED_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html" and not response.direct_passthrough:
        hashes = "".join(" " + source for source in script_hashes(response.get_data()))
        response.headers.setdefault("Content-Security-Policy", DOCS_POLICY.format(hashes=hashes))
    else:
        response.headers.setdefault("Content-Security-Policy", API_POLICY)
    # Tokens, grants and ledger entries are nobody's to keep in a cache; static Swagger assets may be.
    if not request.path.startswith("/api/docs/assets/"):
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Pragma", "no-cache")
    return response


def init_app(app: Flask) -> None:
    """Install bounded parsing of request bodies and the security headers on ``app``."""
    webjson.parse_bodies_first(app, _refuse)
    app.after_request(_secure)
