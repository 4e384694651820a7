"""The collection builds into a tarball without local state, and the sandbox inventory reaches
the host through the podman connection."""

import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCAL_STATE = (".sandbox/", ".venv/", ".git/", ".collections/", ".pytest_cache/", ".ruff_cache/", "__pycache__/",
               ".ci/")


def test_galaxy_build_holds_no_local_state(tmp_path):
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, REPO],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    (tarball,) = tmp_path.glob("jram-dumphost-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names and "galaxy.yml" not in names
    assert "meta/runtime.yml" in names and "README.md" in names
    leaked = [n for n in names if any(f"/{p}" in f"/{n}/" or n.startswith(p.rstrip("/")) for p in LOCAL_STATE)]
    assert leaked == []
    assert not [n for n in names if n.split("/")[0] in ("sandbox", "tests", "bench")]


def test_galaxy_metadata():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"], galaxy["version"]) == ("jram", "dumphost", "0.1.0")
    assert {"amazon.aws", "community.aws", "community.general"} <= set(galaxy["dependencies"])
    runtime = yaml.safe_load((REPO / "meta/runtime.yml").read_text())
    assert runtime["requires_ansible"] and "dumphost" in runtime["action_groups"]


def test_sandbox_inventory_reaches_the_host(sandbox):
    proc = subprocess.run([BIN / "ansible", "-i", REPO / "inventories/sandbox", "dumphost",
                           "-m", "ansible.builtin.setup", "-a", "filter=ansible_date_time"],
                          capture_output=True, text=True, cwd=REPO,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                               "SANDBOX_HOST": sandbox.host})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tz: UTC" in proc.stdout
