"""Shared fixtures: one sandbox for the whole session, reused when one is already running.

A sandbox this session started is stopped at the end unless SANDBOX_KEEP=1; one that was
already running is left as it was found.

With pytest-xdist (`make test` runs two workers) each test module stays on one worker, and the
modules that use what the whole sandbox shares -- its dump host container, the instance record's
profile association and metadata options, the resources phase 1 creates under the sandbox
inventory's names -- all run on the same worker, one after the other. Workers never stop the
sandbox: whoever started the run does (the Makefile)."""

from __future__ import annotations

import fcntl
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


# Modules that use the sandbox's shared parts (see the module docstring), relative to tests/.
SHARED = ("sandbox/", "molecule/", "integration/test_cron_cutover.py", "integration/test_credential_scan.py")


# About how long the long units take (seconds, from CI's --durations): the workers take the
# longest first, so that the short ones fill in at the end instead of one worker finishing a
# nine-minute module alone while the other idles. A unit not listed counts a second per test.
COST = {
    "shared-sandbox": 1500,
    "integration/test_rollback_order.py": 600,
    "integration/test_lynis.py": 560,
    "integration/test_imds_access.py": 530,
    "integration/test_static_keys.py": 430,
    "integration/test_rotation.py": 390,
    "integration/test_phase3.py": 310,
    "integration/test_sshd_crypto.py": 250,
    "integration/test_phase1.py": 250,
    "integration/test_phase2.py": 200,
    "integration/test_catch_up.py": 290,
    "integration/test_dms_provision.py": 100,
    "integration/test_dms_validate.py": 80,
    "dumpjob/test_dumpjob_retry.py": 80,
    "integration/test_static_keys_symlinks.py": 60,
    "dumpjob/test_dumpjob_anomaly.py": 40,
}


def pytest_xdist_make_scheduler(config, log):
    """xdist's module-wise scheduling, with every module in SHARED as one unit, longest unit first."""
    from xdist.scheduler import LoadScopeScheduling

    class SandboxScheduling(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "shared-sandbox" if module.removeprefix("tests/").startswith(SHARED) else module

        def _assign_work_unit(self, node) -> None:
            if not self.ordered:  # the queue is complete when the first unit is handed out
                units = sorted(self.workqueue.items(),
                               key=lambda unit: -COST.get(unit[0].removeprefix("tests/"), len(unit[1])))
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True
            super()._assign_work_unit(node)

    return SandboxScheduling(config, log)


@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    s = config.load()
    s.state.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Two workers must not both start it.
    with open(s.state / "pytest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = _sandbox_cmd("status").returncode != 0
        if started:
            proc = _sandbox_cmd("up")
            if proc.returncode != 0:
                pytest.fail(f"sandbox up failed:\n{proc.stdout}\n{proc.stderr}")
    box = Sandbox(s, _read_env(s.env_file), json.loads(s.state_file.read_text()))
    yield box
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if started and not worker and os.environ.get("SANDBOX_KEEP") != "1":
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
