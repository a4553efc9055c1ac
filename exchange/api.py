"""The REST API object: OpenAPI document, local Swagger UI assets, and the feature blueprints."""

from __future__ import annotations

from flask import Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from authorization.routes import blp as authorization_blp
from catalog.routes import blp as catalog_blp
from exchange.apidoc import ProblemResponsesPlugin
from exchange.health import blp as health_blp
from exchange.ledger_routes import blp as ledger_blp
from jobs.federated_routes import blp as federated_blp
from jobs.routes import blp as jobs_blp
from participants import services as participant_services
from participants.routes import blp as participants_blp
from web import auth
from web.problems import PdxApi
from web.schemas import Amount, Count, refuse_control_characters_in_url

SWAGGER_ASSETS = "/api/docs/assets/"

API_SETTINGS = {
    "API_TITLE": "pdx — public data exchange (公共数据授权运营平台)",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "v1/openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": SWAGGER_ASSETS,  # served from the swagger-ui-bundle package: no CDN
}


def init_app(app: Flask) -> PdxApi:
    """Register the API, its blueprints and the locally served Swagger UI assets on ``app``."""
    for key, value in API_SETTINGS.items():
        app.config.setdefault(key, value)
    auth.init_app(app, participant_services)  # tokens and keys are looked up in the participant registry
    app.before_request(refuse_control_characters_in_url)
    app.url_map.converters["count"] = Count
    api = PdxApi(app, spec_kwargs={"extra_plugins": [ProblemResponsesPlugin()], "components": {"securitySchemes": {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "an API token issued by pdx"}}}})
    api.register_field(Amount, *Amount.OPENAPI)
    for blueprint in (health_blp, participants_blp, catalog_blp, authorization_blp, jobs_blp, federated_blp,
                      ledger_blp):
        api.register_blueprint(blueprint)

    @app.get(SWAGGER_ASSETS + "<path:filename>")
    def swagger_assets(filename: str):
        return send_from_directory(swagger_ui_path, filename)

    return api
