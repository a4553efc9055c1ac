"""The Flower ServerApp: the passes of ``federated.train``, each one sum over the SuperNodes, and the result file.

Each pass sends one ``task.Instruction`` to every connected node and takes the sum of their contributions, either
through SecAgg+ (``SecAggPlusWorkflow``: the server unmasks only the sum) or, with ``secure-aggregation = false``,
in the clear (the server sees every node's vector and adds them). Both carry the vectors as ``codec`` digits, so
the sum is exact either way. The result, or the error that stopped the run, is written as JSON to the run
config's ``output-path`` (written whole, then renamed, so a reader never sees half a file).

Flower 1.42 provides SecAgg+ only as a legacy workflow: it needs a ``LegacyContext``, a legacy ``Strategy`` (here
one that hands out one instruction and keeps the results) and a client manager of ``GridClientProxy``s. Flower
loads ``app`` from this module, so it is built at import (it holds no connection, file or state).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.app.message_type import MessageType
from flwr.common import FitIns, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig, SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.strategy import Strategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid, ServerApp

from privacy.federated import RoundLog, initial_theta
from privacy.flower import FederationFailed
from privacy.flower.client_app import PASS_KEY, ROUND_KEY
from privacy.flower.codec import MAX_WEIGHT, LimbCodec
from privacy.flower.settings import RunSettings
from privacy.flower.task import LOSS, MOMENTS, TRAIN, Instruction, finish_loss, finish_moments, finish_train

REPLY_POLL_SECONDS = 0.1  # Flower's deployment Grid polls replies every 3 s; each pass has up to 4 exchanges
NODE_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class Total:
    """One pass's sum and the nodes it came from."""

    vector: np.ndarray
    nodes: list[int]


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the passes and write the result (or the error that stopped them) to the output path."""
    output_path = str(context.run_config.get("output-path", ""))
    try:
        result = train(PromptGrid(grid), context, RunSettings.from_run_config(context.run_config))
    except Exception as exc:
        if output_path:  # the launcher waits for this file; tell it why there is no model
            _write_json(output_path, {"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise
    _write_json(output_path, {"status": "finished", **result})


def train(grid: Grid, context: Context, settings: RunSettings) -> dict:
    """Return the trained model and per-round log, computed from one sum per pass."""
    nodes = _wait_for_nodes(grid, settings.min_nodes)  # the run's federation: nodes joining later are not asked
    if settings.secure_aggregation:
        sums: SecureSums | PlainSums = SecureSums(grid, context, settings, nodes)
    else:
        sums = PlainSums(grid, settings, nodes)
    total = sums.total(Instruction(MOMENTS))
    standardizer, rows = finish_moments(total.vector)
    logs = [RoundLog(0, _names(total.nodes), rows)]
    theta = initial_theta(standardizer.mean.size)
    for round in range(1, settings.training.rounds + 1):
        total = sums.total(Instruction(TRAIN, round, theta, standardizer))
        step = finish_train(total.vector)
        logs[-1].metrics["loss"] = step.previous_loss
        logs.append(RoundLog(round, _names(total.nodes), step.rows))
        theta = step.theta
    if settings.final_loss:
        total = sums.total(Instruction(LOSS, settings.training.rounds + 1, theta, standardizer))
        logs[-1].metrics["loss"] = finish_loss(total.vector)[0]
    return {"task": settings.training.task, "training": settings.training.to_json(),
            "secure_aggregation": settings.secure_aggregation, "theta": theta.tolist(),
            "standardizer": standardizer.to_json(),
            "rounds": [{"round": log.round, "nodes": log.providers, "rows": log.rows, **log.metrics} for log in logs]}


class SecureSums:
    """Sums taken with Flower's SecAgg+: the server unmasks only the total of the nodes' digits."""

    def __init__(self, grid: Grid, context: Context, settings: RunSettings, nodes: list[int]):
        self.grid, self.context, self.settings = grid, context, settings
        self.codec = LimbCodec.for_nodes(len(nodes))
        self.manager = SimpleClientManager()
        for node_id in nodes:
            self.manager.register(GridClientProxy(node_id=node_id, grid=grid, run_id=grid.run.run_id))

    def total(self, instruction: Instruction) -> Total:
        """Return the sum of every node's contribution to ``instruction``, through one SecAgg+ exchange."""
        codec = self.codec
        strategy = OneInstruction(_fit_ins(instruction, codec))
        legacy = LegacyContext(self.context, config=ServerConfig(num_rounds=1), strategy=strategy,
                               client_manager=self.manager)
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: instruction.round})
        legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord()
        workflow = SecAggPlusWorkflow(
            num_shares=self.settings.num_shares, reconstruction_threshold=self.settings.reconstruction_threshold,
            max_weight=MAX_WEIGHT, clipping_range=codec.clipping_range,
            quantization_range=codec.quantization_range, timeout=self.settings.stage_timeout)
        workflow(self.grid, legacy)
        if strategy.results is None:
            raise FederationFailed(f"SecAgg+ halted in the {instruction.kind} pass (round {instruction.round}): "
                                   f"too few nodes answered; failures: {strategy.failures!r}")
        contributors = [proxy.node_id for proxy, _ in strategy.results]
        _require(len(contributors), self.settings.min_nodes, instruction, strategy.failures)
        digit_means = parameters_to_ndarrays(strategy.results[0][1].parameters)[0]
        return Total(codec.decode_mean(digit_means, len(contributors)), contributors)


class PlainSums:
    """Sums taken in the clear: the server receives every node's digits and adds them."""

    def __init__(self, grid: Grid, settings: RunSettings, nodes: list[int]):
        self.grid, self.settings, self.nodes = grid, settings, nodes
        self.codec = LimbCodec.for_nodes(len(nodes))

    def total(self, instruction: Instruction) -> Total:
        """Return the sum of every node's contribution to ``instruction``, each received in the clear."""
        codec = self.codec
        fit_ins = _fit_ins(instruction, codec)
        messages = [Message(content=compat.fitins_to_recorddict(fit_ins, True), dst_node_id=node_id,
                            message_type=MessageType.TRAIN, group_id=str(instruction.round))
                    for node_id in self.nodes]
        digits, contributors, failures = [], [], []
        for reply in self.grid.send_and_receive(messages, timeout=self.settings.stage_timeout):
            if reply.has_error():  # a node that refuses or fails is left out, as SecAgg+ leaves out a dropout
                failures.append(reply.error.reason)
                continue
            digits.append(parameters_to_ndarrays(compat.recorddict_to_fitres(reply.content, False).parameters)[0])
            contributors.append(reply.metadata.src_node_id)
        _require(len(contributors), self.settings.min_nodes, instruction, failures)
        return Total(codec.decode(np.sum(digits, axis=0), len(contributors)), contributors)


class OneInstruction(Strategy):
    """A legacy Strategy for one SecAgg+ exchange: the same instruction to every node, the results kept as data."""

    def __init__(self, instruction: FitIns):
        self.instruction = instruction
        self.results: list | None = None
        self.failures: list = []

    def initialize_parameters(self, client_manager):
        return None

    def configure_fit(self, server_round, parameters, client_manager):
        return [(proxy, self.instruction) for proxy in client_manager.all().values()]

    def aggregate_fit(self, server_round, results, failures):
        self.results, self.failures = list(results), list(failures)
        return None, {}

    def configure_evaluate(self, server_round, parameters, client_manager):
        return []

    def aggregate_evaluate(self, server_round, results, failures):
        return None, {}

    def evaluate(self, server_round, parameters):
        return None


class PromptGrid(Grid):
    """The run's Grid, polling for replies every ``REPLY_POLL_SECONDS`` instead of Flower's 3 s."""

    def __init__(self, grid: Grid):
        self._grid = grid

    def set_run(self, run) -> None:
        self._grid.set_run(run)

    @property
    def run(self):
        return self._grid.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return self._grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self._grid.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._grid.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        """Push the messages and return the replies that arrive before ``timeout`` seconds (all, if None)."""
        pending = set(self.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while pending and (deadline is None or time.monotonic() < deadline):
            arrived = list(self.pull_messages(pending))
            replies.extend(arrived)
            pending.difference_update(reply.metadata.reply_to_message_id for reply in arrived)
            if pending:
                time.sleep(REPLY_POLL_SECONDS)
        return replies


def _fit_ins(instruction: Instruction, codec: LimbCodec) -> FitIns:
    config = {PASS_KEY: instruction.kind, ROUND_KEY: instruction.round, **codec.to_config()}
    return FitIns(ndarrays_to_parameters(instruction.arrays()), config)


def _wait_for_nodes(grid: Grid, minimum: int) -> list[int]:
    deadline = time.monotonic() + NODE_WAIT_SECONDS
    while len(nodes := list(grid.get_node_ids())) < minimum:
        if time.monotonic() > deadline:
            raise FederationFailed(f"{len(nodes)} of the {minimum} SuperNodes needed connected within "
                                   f"{NODE_WAIT_SECONDS:g} s")
        time.sleep(0.2)
    return nodes


def _require(contributors: int, minimum: int, instruction: Instruction, failures: list) -> None:
    if contributors < minimum:
        raise FederationFailed(f"only {contributors} nodes contributed to the {instruction.kind} pass "
                               f"(round {instruction.round}); the run needs {minimum}; failures: {failures!r}")


def _names(node_ids: list[int]) -> list[str]:
    return [str(node_id) for node_id in sorted(node_ids)]


def _write_json(path: str, document: dict) -> None:
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(partial, target)
