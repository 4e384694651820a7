"""Bringing the sandbox up twice is harmless, and bringing it down leaves nothing running.
These stop the sandbox, so `make test` runs them last and on their own (marker `lifecycle`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sandbox import config, procs  # noqa: E402

pytestmark = pytest.mark.lifecycle


def _sandbox(*args):
    proc = subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=REPO, capture_output=True, text=True)
    return proc


def _container_started_at(name):
    proc = subprocess.run(["podman", "container", "inspect", "--format", "{{.State.StartedAt}}", name],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_up_twice_is_harmless_and_down_leaves_nothing():
    s = config.load()
    first = _sandbox("up")
    assert first.returncode == 0, first.stderr
    state = json.loads(s.state_file.read_text())
    pids = {name: procs.pid_alive(s.pidfile(name)) for name in ("mariadb", "moto", "imds")}
    started = _container_started_at(s.host)
    crontab = subprocess.run(["podman", "exec", s.host, "crontab", "-l", "-u", "ec2-user"],
                             capture_output=True, text=True).stdout

    second = _sandbox("up")
    assert second.returncode == 0, second.stderr
    assert json.loads(s.state_file.read_text()) == state
    assert {name: procs.pid_alive(s.pidfile(name)) for name in pids} == pids
    assert _container_started_at(s.host) == started
    assert subprocess.run(["podman", "exec", s.host, "crontab", "-l", "-u", "ec2-user"],
                          capture_output=True, text=True).stdout == crontab

    down = _sandbox("down")
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) still running"
    for port in (s.mariadb_port, s.moto_port, s.imds_port):
        assert not procs.port_open(port), f"port {port} still open"
    assert _container_started_at(s.host) is None
    leftover = subprocess.run(["pgrep", "-af", f"conmon.*{s.host}|mariadbd.*{s.state}|moto_server.*{s.moto_port}"],
                              capture_output=True, text=True).stdout
    assert leftover == ""
    assert not s.env_file.exists()
    assert _sandbox("status").returncode == 3
