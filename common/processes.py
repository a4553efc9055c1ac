"""Running a helper server process (a node, anvil, `pdx serve` in the demo and in tests) until the caller is done.

A process counts as started once its readiness probe answers; the wait polls the process too, so one that dies
early is reported at once with its exit code and the end of its error output, and the deadline is generous
because a loaded machine may take many seconds to import the scientific stack.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Callable, Iterator, Mapping, Sequence

POLL_SECONDS = 0.2
START_TIMEOUT_SECONDS = 180.0  # a node imports pandas, TenSEAL and OpenDP: tens of seconds on a busy 2-core machine
STOP_TIMEOUT_SECONDS = 20.0
ERROR_TAIL_CHARS = 3000
# The checkout this module was imported from: child processes run its CLI, not a `pdx` found on PATH.
CHECKOUT = Path(__file__).resolve().parents[1]


class NotStarted(RuntimeError):
    """A helper process exited, or did not become ready, before its deadline."""


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pdx_command(*args: str) -> list[str]:
    """Return the command line running this checkout's CLI with this interpreter (never another install's `pdx`)."""
    return [sys.executable, "-m", "client.cli", *args]


def checkout_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``env`` (default: this process's environment) with this checkout first on PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    rest = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part and part != str(CHECKOUT)]
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), *rest])
    return env


def wait_ready(process: subprocess.Popen, ready: Callable[[], bool], *, what: str,
               timeout: float = START_TIMEOUT_SECONDS, errors: IO[str] | None = None) -> None:
    """Return once ``ready()`` is true; kill ``process`` and raise ``NotStarted`` if it exits or times out first."""
    started = time.monotonic()
    while not ready():
        code = process.poll()
        waited = time.monotonic() - started
        if code is not None or waited > timeout:
            if code is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            cause = f"exited with code {code}" if code is not None else f"was not ready after {timeout:.0f} s"
            raise NotStarted(f"{what} did not start: it {cause} (waited {waited:.1f} s){_tail(errors)}")
        time.sleep(POLL_SECONDS)


def stop(process: subprocess.Popen) -> None:
    """Terminate ``process``, killing it if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def running(command: Sequence[str], ready: Callable[[], bool], *, what: str,
            timeout: float = START_TIMEOUT_SECONDS, env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start ``command``, wait until ``ready()`` is true, yield the process, and stop it when the block ends.

    Raises ``NotStarted`` with the process's error output if it exits or is not ready within ``timeout`` seconds.
    The error output goes to a temporary file, never a pipe nobody reads, so a chatty server cannot block on it.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errors:
        process = subprocess.Popen(list(command), env=None if env is None else dict(env), cwd=cwd,
                                   stdout=subprocess.DEVNULL, stderr=errors, text=True)
        try:
            wait_ready(process, ready, what=what, timeout=timeout, errors=errors)
            yield process
        finally:
            stop(process)


def _tail(errors: IO[str] | None) -> str:
    if errors is None:
        return ""
    errors.flush()
    errors.seek(0)
    text = errors.read()[-ERROR_TAIL_CHARS:]
    return f"; its error output ends:\n{text}" if text.strip() else "; it wrote no error output"
