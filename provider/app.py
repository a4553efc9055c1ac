"""The provider node's HTTP service: authenticate the ticket, compute locally within the ticket's limits, return
only ciphertexts, sign a receipt.

    POST /v1/jobs/run              headers PDX-Ticket, PDX-Ticket-Signature, PDX-Grant-Status,
                                   PDX-Grant-Status-Signature; body {params, context, [weights]}
                                   → {result, receipt, signature}
    GET  /v1/datasets/<name>/download   grade-1 (open) datasets only, as CSV
    GET  /v1/health
    GET  /v1/identity?nonce=…      the provider's key signs the exchange's nonce (protocol.identity)

A job call is authenticated before its body is read: the ticket's signature, issuer, addressee and times, and the
exchange's current statement that the ticket's grant is active (``protocol.grantstatus``), all from headers.
Without them the answer is 401 (or 403), and not a byte of the body — up to 64 MB — is parsed. Then the body is
parsed within ``common.jsonlimits`` and bound to the ticket (its parameters' and context's digests), and the
ticket's nonce is used up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from datetime import datetime, timezone
from typing import Any, Mapping

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from common import crypto, jsonlimits, webjson
from common.jsonlimits import JSONLimitError
from common.keyfiles import load as load_key
from common.vocab import ComputationKind
from ledger.entries import format_time
from privacy import he
from protocol import grantstatus, identity
from protocol.receipts import sign_receipt
from protocol.tickets import SignedTicket, TicketError, TicketVerifier, Unauthenticated
from provider import compute, federated, limits
from provider.config import NodeConfig
from provider.datasets import Dataset, load_all
from provider.record import NodeRecord

MAX_BODY_BYTES = 64 * 1024 * 1024  # an HE context and, for scoring, the encrypted weights


def _problem(status: int, title: str, detail: str) -> Response:
    response = jsonify({"type": f"urn:pdx:problem:node-{title.lower().replace(' ', '-')}", "title": title,
                        "status": status, "detail": detail})
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _malformed(exc: JSONLimitError) -> Response:
    return _problem(400, "Malformed body", str(exc))


def _bytes(body: Mapping[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(body[name], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise compute.ComputeError(f"{name} must be base64") from exc


def create_node_app(config: NodeConfig, datasets: Mapping[str, Dataset] | None = None) -> Flask:
    """Create the node service for ``config`` (datasets are mounted from the config unless given)."""
    app = Flask("pdx-provider-node")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json = webjson.BoundedJSONProvider(app)  # the job's body is parsed only once its ticket is authenticated
    key = load_key(config.key_file)
    exchange_key = crypto.load_public_key(config.exchange_public_key)
    mounted = dict(datasets if datasets is not None else load_all(list(config.mounts)))
    record = NodeRecord(config.state_dir)  # only once everything above is valid
    verifier = TicketVerifier(exchange_key, config.issuer, config.participant_id, record)
    app.extensions["pdx.node"] = {"record": record, "datasets": mounted}

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return _problem(error.code or 500, error.name, error.description or error.name)

    @app.get("/v1/health")
    def health():
        return {"status": "ok", "participant": config.participant_id,
                "datasets": {d.mount.name: d.rows for d in mounted.values()}}

    @app.get("/v1/identity")
    def prove_identity():
        try:
            return identity.answer(key, config.participant_id, request.args.get("nonce", ""))
        except identity.IdentityError as exc:
            return _problem(400, "Bad request", str(exc))

    @app.post("/v1/jobs/run")
    def run():
        started = time.perf_counter()
        now = datetime.now(timezone.utc)
        try:
            claims = verifier.authenticate(SignedTicket.from_headers(request.headers), now=now)
        except Unauthenticated as exc:
            response = _problem(401, "Unauthenticated", str(exc))
            response.headers["WWW-Authenticate"] = "PDX-Ticket"
            return response
        except TicketError as exc:
            return _problem(403, "Ticket refused", str(exc))
        try:
            grantstatus.verify(exchange_key, config.issuer, grantstatus.Statement.from_headers(request.headers),
                               claims, now)
        except grantstatus.StatusError as exc:
            return _problem(403, "Grant not current", str(exc))
        try:
            body = jsonlimits.loads(request.get_data())
        except JSONLimitError as exc:
            return _malformed(exc)
        if not isinstance(body, dict):
            return _problem(400, "Bad request", "the body must be a JSON object")
        try:
            context = _bytes(body, "context")
            claims = verifier.bind(claims, params=body.get("params"), context=context)
        except (TicketError, compute.ComputeError) as exc:
            return _problem(403, "Ticket refused", str(exc))
        try:
            he.require_public_context(context)
            datasets = [mounted[asset] for asset in claims["assets"] if asset in mounted]
            if len(datasets) != len(claims["assets"]):
                return _problem(404, "Not mounted", "this node does not mount every asset of the ticket")
            limits.enforce(claims, limits.planned_rows(claims["operation"], datasets, body["params"]), None)
            if claims["operation"] == ComputationKind.HE_STATISTICS:
                result, rows = compute.statistics(datasets, body["params"], claims["obligations"], context)
            elif claims["operation"] == ComputationKind.HE_SCORING:
                result, rows = compute.scores(datasets, body["params"], _bytes(body, "weights"), context)
            elif claims["operation"] == ComputationKind.FEDERATED_LEARNING:
                result, rows = federated.run(datasets, body["params"], claims["obligations"], context)
            else:
                return _problem(422, "Unsupported", f"this node does not run {claims['operation']}")
            limits.enforce(claims, rows, limits.result_cells(claims["operation"], result))
        except limits.LimitExceeded as exc:
            return _problem(403, "Limit exceeded", str(exc))
        except compute.BeyondExactRange as exc:
            return _problem(422, "Beyond exact range", str(exc))
        except (compute.ComputeError, federated.FederatedComputeError, he.HEError) as exc:
            return _problem(422, "Cannot compute", str(exc))
        served_at = datetime.now(timezone.utc)
        receipt = {"job": claims["job"], "provider": config.participant_id, "assets": claims["assets"],
                   "operation": claims["operation"], "rows_used": rows,
                   "result_sha256": hashlib.sha256(result).hexdigest(),
                   "wall_ms": round((time.perf_counter() - started) * 1000, 1), "served_at": format_time(served_at)}
        record.served(job=claims["job"], grant=claims["grant"], operation=claims["operation"],
                      assets=claims["assets"], rows=rows, result_sha256=receipt["result_sha256"], served_at=served_at)
        return {"result": base64.b64encode(result).decode(), "receipt": receipt,
                "signature": sign_receipt(key, receipt)}

    @app.get("/v1/datasets/<name>/download")
    def download(name: str):
        dataset = next((d for d in mounted.values() if d.mount.name == name), None)
        if dataset is None:
            return _problem(404, "Not found", f"no dataset {name}")
        if dataset.mount.grade != 1:
            return _problem(403, "Forbidden", f"dataset {name} is grade {dataset.mount.grade}: its rows never "
                                              f"leave this node")
        return Response(dataset.open_data(), mimetype="text/csv")

    return app
