"""Starting helper processes: one that dies is reported with its exit code and error output, one that never
answers is stopped at its deadline, and the CLI command runs this checkout's code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common import processes


def test_a_process_that_dies_while_starting_is_reported_with_its_code_and_error_output():
    command = [sys.executable, "-c", "import sys; sys.stderr.write('no such dataset: tax.csv'); sys.exit(3)"]
    with pytest.raises(processes.NotStarted) as failed:
        with processes.running(command, lambda: False, what="the tax node", timeout=600):
            pass
    assert "the tax node did not start: it exited with code 3" in str(failed.value)
    assert "no such dataset: tax.csv" in str(failed.value)


def test_a_process_that_never_answers_is_killed_at_its_deadline():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with pytest.raises(processes.NotStarted, match="was not ready after 0 s"):
        processes.wait_ready(process, lambda: False, what="a silent server", timeout=0.0)
    assert process.poll() is not None


def test_the_cli_command_runs_this_checkouts_client(tmp_path):
    env = processes.checkout_env({"PATH": ""})
    code = "import client.cli, pathlib; print(pathlib.Path(client.cli.__file__).resolve().parents[1])"
    shown = subprocess.run([*processes.pdx_command()[:1], "-c", code], env=env, capture_output=True, text=True,
                           cwd=tmp_path, check=True)
    assert shown.stdout.strip() == str(processes.CHECKOUT)
    assert processes.pdx_command("ledger", "check")[1:] == ["-m", "client.cli", "ledger", "check"]
