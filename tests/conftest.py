"""Shared fixtures: one sandbox for the whole session, reused when one is already running.

A sandbox this session started is stopped at the end unless SANDBOX_KEEP=1; one that was
already running is left as it was found."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox import config, mariadb  # noqa: E402


@dataclass
class Sandbox:
    settings: config.Settings
    env: dict[str, str]
    state: dict

    @property
    def host(self) -> str:
        return self.settings.host

    def sql(self, statements: str, database: str | None = None) -> str:
        """Run SQL as MariaDB root (socket auth) and return the tab-separated rows."""
        return mariadb.sql(self.settings, statements, database)

    def client(self, service: str):
        """A boto3 client to moto, with the sandbox's non-secret tool credentials."""
        return boto3.client(service, endpoint_url=self.env["AWS_ENDPOINT_URL"],
                            region_name=self.env["AWS_DEFAULT_REGION"],
                            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")

    def exec(self, *argv: str, user: str = "root", check: bool = True, input: str | None = None):
        """Run a command inside the dump host container."""
        proc = subprocess.run(["podman", "exec", "-i", "--user", user, self.host, *argv],
                              capture_output=True, text=True, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"{shlex.join(argv)} in {self.host} failed ({proc.returncode}): {proc.stderr}")
        return proc


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


@pytest.fixture(scope="session")
def aws_env(sandbox) -> dict[str, str]:
    """os.environ plus the sandbox's AWS and MariaDB addresses, for child processes."""
    return {**os.environ, **sandbox.env}
