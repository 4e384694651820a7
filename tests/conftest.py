"""Shared fixtures: one sandbox for the whole session, reused when one is already running.

A sandbox this session started is stopped at the end unless SANDBOX_KEEP=1; one that was
already running is left as it was found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from sandboxtest import Sandbox, make_host, remove_host, run_playbook  # noqa: E402, F401

from sandbox import config  # noqa: E402


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value
    return env


def _sandbox_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=REPO, text=True, capture_output=True)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    s = config.load()
    started = _sandbox_cmd("status").returncode != 0
    if started:
        proc = _sandbox_cmd("up")
        if proc.returncode != 0:
            pytest.fail(f"sandbox up failed:\n{proc.stdout}\n{proc.stderr}")
    box = Sandbox(s, _read_env(s.env_file), json.loads(s.state_file.read_text()))
    yield box
    if started and os.environ.get("SANDBOX_KEEP") != "1":
        _sandbox_cmd("down")


@pytest.fixture(scope="module")
def fresh_host(sandbox, request):
    """A dump host of its own for one test module (named after it), in the legacy state."""
    name = f"{sandbox.host}-t-" + request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")[:40]
    box = make_host(sandbox, name)
    yield box
    if os.environ.get("SANDBOX_KEEP_HOSTS") != "1":
        remove_host(name)


@pytest.fixture(scope="session")
def aws_env(sandbox) -> dict[str, str]:
    """os.environ plus the sandbox's AWS and MariaDB addresses, for child processes."""
    return {**os.environ, **sandbox.env}
