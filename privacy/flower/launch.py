"""Run the pdx Flower app on this machine: a SuperLink and one SuperNode per partition on loopback, then tear down.

``train_on_flower(partitions, config)`` is the whole path for tests, benchmarks and a single-host trial: it starts

    flower-superlink --insecure --host 127.0.0.1 --port P --disable-runtime-dependency-installation
    flower-supernode --insecure --superlink 127.0.0.1:P --host 127.0.0.1 --port Q_i --node-config "data-path='…'"
    flwr run privacy/flower/app pdx-local --run-config run.toml --format json

with every port a free loopback port picked at start, waits for the ServerApp's result file, and always ends the
processes it started. Each process gets its own Flower home (``FLWR_HOME``) in a temporary directory, so nothing is
written under ``~``; telemetry and update checks are off and no dependency is installed at run time, so nothing
leaves the machine. Flower 1.42's SuperLink serves its Fleet, Control and ServerAppIo APIs on one HTTP port, and
each SuperNode its ClientAppIo API on another. On several hosts the same commands apply with TLS instead of
``--insecure`` (docs/flower.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from privacy.federated import Model, RoundLog, Standardizer, TrainingConfig
from privacy.flower import FederationFailed, FlowerError
from privacy.flower.settings import RunSettings

APP_DIR = Path(__file__).with_name("app")
FEDERATION = "pdx-local"
LOOPBACK = "127.0.0.1"
STARTUP_SECONDS = 180.0  # a loaded machine takes long to import Flower; a process that dies is reported at once
STOP_SECONDS = 5.0
LOG_TAIL_CHARS = 4000
QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",  # Flower otherwise posts usage events to its telemetry server
    "FLWR_DISABLE_UPDATE_CHECK": "1",  # ... and asks PyPI for a newer flwr
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # ... and may `uv sync` the app's dependencies
    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.25",  # each message starts a ClientApp process; default 1 s
}


@dataclass(frozen=True)
class FlowerResult:
    """A finished Flower run: the model, what each round reported, and how it was summed."""

    model: Model
    rounds: list[RoundLog]
    secure_aggregation: bool
    seconds: float


def save_partition(path: str | Path, features: np.ndarray, labels: np.ndarray) -> Path:
    """Write a node's rows as the ``.npz`` file its SuperNode reads (arrays ``X`` and ``y``)."""
    path = Path(path)
    np.savez(path, X=np.asarray(features, dtype=np.float64), y=np.asarray(labels, dtype=np.float64))
    return path


def train_on_flower(partitions: Sequence[str | Path], config: TrainingConfig, *,
                    secure_aggregation: bool = True, final_loss: bool = True, timeout: float = 600.0,
                    workdir: str | Path | None = None) -> FlowerResult:
    """Train on a loopback federation with one SuperNode per partition file; return the model and round log.

    With ``secure_aggregation=False`` the nodes are started with ``allow-plain-updates=true`` and the server sees
    every node's vector. ``workdir`` keeps the homes, logs and result (a temporary directory otherwise, removed).
    """
    if len(partitions) < 2:
        raise FlowerError("a federation needs at least two partitions")
    started = time.monotonic()
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="pdx-flower-"))
    settings = RunSettings(training=config, output_path=str((root / "result.json").resolve()),
                           secure_aggregation=secure_aggregation, final_loss=final_loss, min_nodes=len(partitions))
    try:
        with LocalFederation(root, partitions, allow_plain_updates=not secure_aggregation) as federation:
            document = federation.run(settings, timeout)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    return _result(document, time.monotonic() - started)


class LocalFederation:
    """A SuperLink and SuperNodes on loopback, as a context manager that always stops them."""

    def __init__(self, root: Path, partitions: Sequence[str | Path], *, allow_plain_updates: bool = False):
        self.root, self.allow_plain_updates = root, allow_plain_updates
        self.partitions = [Path(p).resolve() for p in partitions]
        if any("'" in str(p) for p in self.partitions):
            raise FlowerError("a partition path cannot contain a single quote (it is quoted in the node config)")
        self.bin = Path(sys.executable).parent
        self.processes: dict[str, subprocess.Popen] = {}
        self.port = 0

    def __enter__(self) -> LocalFederation:
        for tool in ("flower-superlink", "flower-supernode", "flwr"):
            if not (self.bin / tool).exists():
                raise FlowerError(f"{tool} is not installed next to {sys.executable} (pip install flwr==1.42.0)")
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._start_superlink()
            for index, partition in enumerate(self.partitions):
                self._start_supernode(index, partition)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def run(self, settings: RunSettings, timeout: float) -> dict:
        """Submit the app with ``settings`` as run config and return the ServerApp's result document."""
        output = Path(settings.output_path)
        output.unlink(missing_ok=True)
        run_config = self.root / "run_config.toml"
        run_config.write_text("".join(f"{key} = {_toml(value)}\n" for key, value in settings.to_run_config().items()),
                              encoding="utf-8")
        home = self._home("cli")
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "{FEDERATION}"\n\n[superlink.{FEDERATION}]\n'
            f'address = "{LOOPBACK}:{self.port}"\ninsecure = true\n', encoding="utf-8")
        deadline = time.monotonic() + timeout
        command = [str(self.bin / "flwr"), "run", str(APP_DIR), FEDERATION, "--run-config", str(run_config),
                   "--format", "json"]
        try:
            submitted = subprocess.run(command, env=self._env(home), cwd=self.root, capture_output=True, text=True,
                                       timeout=min(STARTUP_SECONDS, timeout), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise FederationFailed(f"`flwr run` did not return within {exc.timeout:g} s") from exc
        if submitted.returncode != 0:
            raise FederationFailed(f"`flwr run` failed ({submitted.returncode}): "
                                   f"{(submitted.stdout + submitted.stderr)[-LOG_TAIL_CHARS:]}")
        while not output.exists():
            self._require_alive()
            if time.monotonic() > deadline:
                raise FederationFailed(f"the run did not finish within {timeout:g} s\n{self.log_tails()}")
            time.sleep(0.2)
        document = json.loads(output.read_text(encoding="utf-8"))
        if document.get("status") != "finished":
            raise FederationFailed(f"the ServerApp failed: {document.get('error')}\n{self.log_tails()}")
        return document

    def stop(self) -> None:
        """End every process this federation started, and the processes they started."""
        processes = list(self.processes.values())
        self.processes.clear()
        _end(processes)

    def log_tails(self) -> str:
        """Return the end of each process's log, for an error message."""
        tails = []
        for log in sorted((self.root / "logs").glob("*.log")):
            tails.append(f"--- {log.name}\n{log.read_text(encoding='utf-8', errors='replace')[-LOG_TAIL_CHARS:]}")
        return "\n".join(tails)

    def _start_superlink(self) -> None:
        self.port = _free_port()
        self._spawn("superlink", [str(self.bin / "flower-superlink"), "--insecure", "--host", LOOPBACK,
                                  "--port", str(self.port), "--disable-runtime-dependency-installation"])
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _accepts(self.port):
            self._require_alive()
            if time.monotonic() > deadline:
                raise FederationFailed(f"the SuperLink did not listen within {STARTUP_SECONDS:g} s\n"
                                       f"{self.log_tails()}")
            time.sleep(0.1)

    def _start_supernode(self, index: int, partition: Path) -> None:
        node_config = f"data-path='{partition}'" + (
            " allow-plain-updates=true" if self.allow_plain_updates else "")
        self._spawn(f"supernode-{index}", [str(self.bin / "flower-supernode"), "--insecure",
                                           "--superlink", f"{LOOPBACK}:{self.port}", "--host", LOOPBACK,
                                           "--port", str(_free_port()), "--node-config", node_config])

    def _spawn(self, name: str, command: list[str]) -> None:
        with open(self.root / "logs" / f"{name}.log", "wb") as log:
            # A session of its own, so that stopping it reaches the SuperExec and app processes it starts.
            self.processes[name] = subprocess.Popen(command, env=self._env(self._home(name)), cwd=self.root,
                                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)

    def _home(self, name: str) -> Path:
        home = (self.root / "home" / name).resolve()
        home.mkdir(parents=True, exist_ok=True)
        return home

    def _env(self, home: Path) -> dict[str, str]:
        # SuperLink and SuperNodes start flower-superexec, flwr-serverapp and flwr-clientapp by name.
        return {**os.environ, **QUIET_ENV, "FLWR_HOME": str(home),
                "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}"}

    def _require_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise FederationFailed(f"{name} exited with code {process.returncode}\n{self.log_tails()}")


def _result(document: dict, seconds: float) -> FlowerResult:
    try:
        training = TrainingConfig.from_json(document["training"])
        model = Model(training.task, np.asarray(document["theta"], dtype=np.float64),
                      Standardizer.from_json(document["standardizer"]))
        rounds = [RoundLog(int(entry["round"]), list(entry["nodes"]), int(entry["rows"]),
                           {"loss": float(entry["loss"])} if "loss" in entry else {})
                  for entry in document["rounds"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise FederationFailed(f"the ServerApp's result is malformed: {exc!r}") from exc
    return FlowerResult(model, rounds, bool(document["secure_aggregation"]), seconds)


def _end(processes: list[subprocess.Popen]) -> None:
    """Stop processes we started, each in its own session: SIGTERM to every group, SIGKILL to what lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in processes:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass  # the group is empty: every member has exited
        deadline = time.monotonic() + STOP_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        processes = [process for process in processes if process.poll() is None]
        if not processes:
            return


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((LOOPBACK, port)) == 0


def _toml(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return repr(value)
