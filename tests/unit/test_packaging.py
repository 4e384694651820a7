"""The collection as it ships: the tarball `ansible-galaxy collection build` makes holds what an
operator runs and none of the development bed; the execution-environment metadata names only the
modules' runtime Python needs; every declared collection dependency is used; the changelog has a
release for the version being built."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Paths (top level or any depth for the state directories) that must stay out of the tarball.
KEPT_OUT = ("requirements.txt", "inventories/sandbox", "tests", "sandbox", "molecule", "bench", "scripts",
            "Makefile", "ansible.cfg", ".venv", ".git", ".collections", ".sandbox", "dist", "build")
STATE = re.compile(r"(^|/)(\.sandbox[^/]*|\.venv|\.git|\.pytest_cache|\.ruff_cache|__pycache__|[^/]*\.egg-info)(/|$)")
DEV_TOOLS = {"ansible", "ansible-core", "ansible-lint", "molecule", "moto", "pytest", "flask", "ruff", "yamllint",
             "antsibull-changelog", "pylint"}
RUNTIME_IMPORTS = {"boto3": "boto3", "botocore": "botocore", "pymysql": "pymysql"}


@pytest.fixture(scope="module")
def tarball_names(tmp_path_factory) -> list:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", out, REPO],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = out.glob("jram-dumphost-*.tar.gz")
    with tarfile.open(tarball) as tar:
        return tar.getnames()


def test_tarball_holds_the_collection_and_none_of_the_development_bed(tarball_names):
    names = tarball_names
    for needed in ("MANIFEST.json", "FILES.json", "meta/runtime.yml", "meta/execution-environment.yml",
                   "meta/ee-requirements.txt", "plugins/modules/deadline_alarm.py", "roles/dumpjob/tasks/main.yml",
                   "src/dumpjob/config.py", "pyproject.toml", "inventories/production/hosts.yml",
                   "changelogs/changelog.yaml", "README.md"):
        assert needed in names, needed
    leaked = [n for n in names if any(n == p or n.startswith(f"{p}/") for p in KEPT_OUT)]
    leaked += [n for n in names if STATE.search(n) or n.endswith(".pyc")]
    assert leaked == []


def test_ee_metadata_lists_only_runtime_requirements():
    ee = yaml.safe_load((REPO / "meta/execution-environment.yml").read_text())
    assert ee["version"] == 1 and set(ee["dependencies"]) == {"python"}
    lines = [line.strip() for line in (REPO / ee["dependencies"]["python"]).read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    names = {re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0].lower() for line in requirements}
    assert names == set(RUNTIME_IMPORTS) and not names & DEV_TOOLS
    assert all(">=" in line and "==" not in line for line in requirements)  # floors, not a freeze
    assert "botocore>=1.43.38" in requirements   # deadline_alarm's EvaluationWindow
    # each is imported by a shipped module or module_utils
    plugins = "\n".join(p.read_text() for p in (REPO / "plugins").rglob("*.py"))
    for module in RUNTIME_IMPORTS.values():
        assert re.search(rf"^\s*(import|from) {module}\b", plugins, re.M), module


def test_declared_collection_dependencies_are_used():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    used = "\n".join(p.read_text(errors="replace") for top in ("plugins", "roles", "playbooks")
                     for p in (REPO / top).rglob("*") if p.is_file() and p.suffix in (".py", ".yml", ".yaml", ".j2"))
    for dependency in galaxy["dependencies"]:
        assert f"{dependency}." in used, f"{dependency} is declared in galaxy.yml but nothing uses it"
    assert "community.general" not in galaxy["dependencies"]


def test_changelog_has_a_release_for_the_version_built():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    changelog = yaml.safe_load((REPO / "changelogs/changelog.yaml").read_text())
    assert galaxy["version"] in changelog["releases"], "run make release before make build"
    assert f"v{galaxy['version']}" in (REPO / "CHANGELOG.rst").read_text()
