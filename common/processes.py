"""Running a helper server process (anvil, `pdx serve` in tests) until the caller is done with it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

POLL_SECONDS = 0.1


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(command: Sequence[str], ready: Callable[[], bool], *, what: str, timeout: float,
            env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start ``command``, wait until ``ready()`` is true, yield the process, and stop it when the block ends.

    Raises ``RuntimeError`` with the process's error output if it exits or is not ready within ``timeout`` seconds.
    """
    process = subprocess.Popen(list(command), env=None if env is None else dict(env), cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{what} did not start: {process.stderr.read()[-3000:]}")
            time.sleep(POLL_SECONDS)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
