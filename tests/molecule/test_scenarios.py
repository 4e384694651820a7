"""The molecule scenarios, run inside `make test` against the shared sandbox.

Each runs `molecule test -s NAME` (create → prepare → converge → idempotence → check → verify
→ cleanup → destroy) and additionally asserts what molecule itself does not: the check-mode
run on the converged host reports no change."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.config import LEGACY_DB_PASSWORD

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _recaps(log: str, action: str) -> list[str]:
    """The PLAY RECAP host lines printed during one molecule action (molecule writes
    `default ➜ check: Executing` with colours, `[default > check] Executing` without)."""
    start = re.search(rf"(?:➜ |> ){action}\]?:? Executing", log)
    end = re.search(rf"(?:➜ |> ){action}\]?:? Executed", log)
    assert start and end, f"molecule's log has no {action} action"
    section = log[start.end():end.start()]
    return [line for line in section.splitlines() if re.search(r"\bok=\d+\s+changed=\d+", line)]


@pytest.mark.parametrize("scenario", ["default"])
def test_molecule_scenario(sandbox, aws_env, scenario, tmp_path):
    env = {**aws_env, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    # One stream, so molecule's action lines stand between the plays they announce.
    proc = subprocess.run([BIN / "molecule", "test", "-s", scenario], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1500)
    log = ANSI.sub("", proc.stdout)
    (tmp_path / "molecule.log").write_text(log)
    assert proc.returncode == 0, log[-6000:]
    # prepare runs phase 1 (which stores the DB password in Secrets Manager), converge phase 2,
    # all at -vvv: the password appears nowhere in the output.
    assert "TASK [" in log and LEGACY_DB_PASSWORD not in log
    for action in ("idempotence", "check"):
        recaps = _recaps(log, action)
        assert recaps, f"no play recap found for {action}"
        assert all(re.search(r"\bchanged=0\b", line) and re.search(r"\bfailed=0\b", line) for line in recaps), \
            f"{action}: {recaps}"
