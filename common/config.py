"""Configuration of the exchange, read from the environment and overridable by ``create_app(config)``."""

from __future__ import annotations

import os
from typing import Any, Mapping

ENV_PREFIX = "PDX_"

# Every setting the exchange knows, with its default. Environment variables are PDX_<NAME>.
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # None: SQLite file under the instance folder
    "MAX_BODY_BYTES": 16 * 1024 * 1024,  # a job carries the consumer's public HE context (and encrypted weights)
    "INSTANCE_DIR": None,  # None: Flask's instance path
    "SQL_ECHO": False,
    "TRUSTED_PROXIES": 0,  # reverse proxies in front of the exchange whose X-Forwarded-* headers are trusted
    "LOG_KEY_FILE": None,  # None: log.key in the instance folder (created by `pdx init`)
    "LEDGER_ORIGIN": "pdx.local/ledger",  # the checkpoint origin line: set it to your exchange's host
    "SIGNATURE_WINDOW_SECONDS": 300,  # how far a signed request's time may be from the server's clock
    "JOB_WORKERS": 4,  # background threads per server process that run jobs on provider nodes
    "NODE_TIMEOUT_SECONDS": 120,  # how long a job waits for one provider node before it fails
    "JOB_RECOVERY_SECONDS": 60,  # how often a served exchange fails stranded jobs (tickets expired, nothing running)
    "ALLOW_PRIVATE_NODES": "loopback",  # node addresses allowed besides public ones: none, loopback, private, all
    "STATE_CHECK_INTERVAL_SECONDS": 300,  # how often a served exchange compares its tables with the ledger; 0: never
    "CHAIN_URL": None,  # an EVM JSON-RPC node (anvil, Besu …); None: the exchange anchors on no chain
    "CHAIN_KEY_FILE": None,  # the operator's chain account key (hex); None: the node's first unlocked account
    "CHAIN_GAS_PRICE": None,  # wei; 0 on a free-gas permissioned network; None: what the node suggests
    "CHAIN_INTERVAL_SECONDS": 10,  # how often checkpoints are anchored and grant changes mirrored (one batch each)
    "CHAIN_BATCH": 200,  # grant changes per registry transaction
    "CHAIN_RECEIPT_TIMEOUT_SECONDS": 60,  # how long a transaction may take to be mined before the round fails
    "CHAIN_MAX_BACKOFF_SECONDS": 300,  # the longest wait between retries while the chain fails
    "RATE_LIMIT_STORAGE": "memory://",  # counters per process; redis://127.0.0.1:6379/0 shares them between workers
    "RATE_LIMIT": "6000 per minute",  # per client (its token, or its address when it shows none)
    "RATE_LIMIT_BAD_CREDENTIALS": "30 per 10 minutes",  # 401 answers per address before it is locked out
    "RATE_LIMIT_KEY_PREFIX": "pdx",
    "ALERT_REFUSALS": 10,  # refused probes on one grant within the window that alert its providers and the regulator
    "ALERT_WINDOW_SECONDS": 3600,  # the window those refusals are counted in  # names the counters, so that exchanges sharing one Redis count apart
}

_INT_SETTINGS = {"MAX_BODY_BYTES", "TRUSTED_PROXIES", "SIGNATURE_WINDOW_SECONDS", "JOB_WORKERS",
                  "NODE_TIMEOUT_SECONDS", "JOB_RECOVERY_SECONDS", "CHAIN_INTERVAL_SECONDS", "CHAIN_BATCH", "CHAIN_RECEIPT_TIMEOUT_SECONDS",
                  "CHAIN_MAX_BACKOFF_SECONDS", "STATE_CHECK_INTERVAL_SECONDS", "ALERT_REFUSALS",
                 "ALERT_WINDOW_SECONDS"}
_OPTIONAL_INT_SETTINGS = {"CHAIN_GAS_PRICE"}
NODE_ADDRESS_POLICIES = ("none", "loopback", "private", "all")  # each allows what the one before does, and more
_BOOL_SETTINGS = {"SQL_ECHO"}


class ConfigError(ValueError):
    """A setting has a value the exchange cannot use."""


def _coerce(name: str, raw: str) -> Any:
    if name in _INT_SETTINGS | _OPTIONAL_INT_SETTINGS:
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name} must be an integer, got {raw!r}") from exc
    if name in _BOOL_SETTINGS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the settings: defaults, then PDX_* environment variables, then explicit overrides."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for name in DEFAULTS:
        raw = environ.get(ENV_PREFIX + name)
        if raw not in (None, ""):
            settings[name] = _coerce(name, raw)
    for name, value in (overrides or {}).items():
        name = name.removeprefix(ENV_PREFIX)
        settings[name] = _coerce(name, value) if isinstance(value, str) else value
    for name in _INT_SETTINGS:
        if not isinstance(settings[name], int) or isinstance(settings[name], bool):
            raise ConfigError(f"{ENV_PREFIX}{name} must be an integer, got {settings[name]!r}")
    if settings["MAX_BODY_BYTES"] <= 0:
        raise ConfigError(f"{ENV_PREFIX}MAX_BODY_BYTES must be positive")
    if settings["JOB_WORKERS"] < 0:
        raise ConfigError(f"{ENV_PREFIX}JOB_WORKERS cannot be negative")
    if settings["SIGNATURE_WINDOW_SECONDS"] <= 0:
        raise ConfigError(f"{ENV_PREFIX}SIGNATURE_WINDOW_SECONDS must be positive")
    if settings["STATE_CHECK_INTERVAL_SECONDS"] < 0:
        raise ConfigError(f"{ENV_PREFIX}STATE_CHECK_INTERVAL_SECONDS cannot be negative (0 turns the schedule off)")
    if settings["ALLOW_PRIVATE_NODES"] not in NODE_ADDRESS_POLICIES:
        raise ConfigError(f"{ENV_PREFIX}ALLOW_PRIVATE_NODES must be one of {', '.join(NODE_ADDRESS_POLICIES)}, got "
                          f"{settings['ALLOW_PRIVATE_NODES']!r}")
    if settings["TRUSTED_PROXIES"] < 0:
        raise ConfigError(f"{ENV_PREFIX}TRUSTED_PROXIES cannot be negative")
    for name in ("CHAIN_INTERVAL_SECONDS", "CHAIN_BATCH", "CHAIN_RECEIPT_TIMEOUT_SECONDS", "CHAIN_MAX_BACKOFF_SECONDS",
                 "JOB_RECOVERY_SECONDS", "ALERT_REFUSALS", "ALERT_WINDOW_SECONDS"):
        if settings[name] < 1:
            raise ConfigError(f"{ENV_PREFIX}{name} must be at least 1")
    gas_price = settings["CHAIN_GAS_PRICE"]
    if gas_price is not None and (not isinstance(gas_price, int) or isinstance(gas_price, bool) or gas_price < 0):
        raise ConfigError(f"{ENV_PREFIX}CHAIN_GAS_PRICE must be a non-negative integer (wei), got {gas_price!r}")
    return settings


def sqlite_url(instance_dir: str) -> str:
    """Return the URL of the embedded SQLite database inside ``instance_dir``."""
    return "sqlite:///" + os.path.join(os.path.abspath(instance_dir), "pdx.sqlite3")
