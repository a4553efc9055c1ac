"""The Flower ClientApp a SuperNode runs for a provider node: its rows stay on the node, only sums leave.

Node config (``flower-supernode --node-config``):

    data-path            an ``.npz`` file with arrays ``X`` (rows × features) and ``y`` (labels or targets)
    allow-plain-updates  true to also answer runs without secure aggregation (default false: refuse them)

Each message is one pass of ``task``: the node rebuilds the instruction, computes its contribution over its own
rows and returns it as the codec's integer digits with num_examples = 1 (its row count travels inside the masked
vector, not in the clear). ``secaggplus_mod`` masks the digits; a message that is not part of SecAgg+ is refused
unless the node allows plain updates. Flower's SecAgg+ client side exists in 1.42 only for the legacy
``NumPyClient`` / ``client_fn`` interface, hence that interface here. Flower loads ``app`` from this module, so it
is built at import (it holds no connection, file or state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import Context, Message
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

from privacy.federated import TrainingConfig
from privacy.flower import FlowerError
from privacy.flower.codec import REPORTED_EXAMPLES, LimbCodec
from privacy.flower.settings import RunSettings
from privacy.flower.task import Instruction, contribution

DATA_PATH, ALLOW_PLAIN = "data-path", "allow-plain-updates"
PASS_KEY, ROUND_KEY = "pass", "round"


class ProviderNode(NumPyClient):
    """One provider node's rows and the training configuration of the run."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, config: TrainingConfig):
        self.features, self.labels, self.config = features, labels, config

    def fit(self, parameters: list[np.ndarray], config: dict) -> tuple[list[np.ndarray], int, dict]:
        """Return this node's contribution to the pass, as codec digits with the constant weight."""
        instruction = Instruction.from_parts(str(config[PASS_KEY]), int(config[ROUND_KEY]), list(parameters))
        vector = contribution(instruction, self.features, self.labels, self.config)
        return [LimbCodec.from_config(config).encode(vector)], REPORTED_EXAMPLES, {}



def load_partition(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the features and labels of a node's ``.npz`` partition (arrays ``X`` and ``y``)."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            return np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise FlowerError(f"cannot read the node's partition {path}: {exc!r}") from exc


def client_fn(context: Context) -> object:
    """Return the node's client for one message: its partition and the run's training configuration."""
    if DATA_PATH not in context.node_config:
        raise FlowerError(f"the SuperNode's node config has no {DATA_PATH}")
    settings = RunSettings.from_run_config(context.run_config)
    features, labels = load_partition(str(context.node_config[DATA_PATH]))
    return ProviderNode(features, labels, settings.training).to_client()


def secure_unless_allowed(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Run SecAgg+ on its messages; answer any other only where the node config allows plain updates."""
    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, call_next)
    if context.node_config.get(ALLOW_PLAIN) is True:
        return call_next(msg, context)
    raise FlowerError("this node sends its updates only through SecAgg+ (node config allow-plain-updates=false)")


app = ClientApp(client_fn=client_fn, mods=[secure_unless_allowed])
