"""Every role entry point that a playbook or a role calls has an argument spec of its own.

ansible-core validates a role's inputs against the entry of meta/argument_specs.yml named exactly
as the ``tasks_from`` it was called with (``main`` without one): ``tasks_from: validate.yml``
matches no ``validate`` entry, and the inputs would then be checked only when the role's ``main``
runs, maybe after another role changed the host. The behaviour (a bad input refused before the
first change) is shown on the sandbox by tests/integration/test_phase2.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTION = "jram.dumphost."
ROLE_ACTIONS = {f"{prefix}{verb}_role" for prefix in ("", "ansible.builtin.") for verb in ("import", "include")}


def _calls(node, where):
    """(role, entry point, where) of every role call in a parsed YAML document."""
    if isinstance(node, list):
        for item in node:
            yield from _calls(item, where)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in ROLE_ACTIONS and isinstance(value, dict):
                yield value["name"], value.get("tasks_from", "main"), where
            elif key == "roles" and isinstance(value, list):
                for role in value:
                    name = role if isinstance(role, str) else role.get("role", role.get("name"))
                    yield name, "main", where
            else:
                yield from _calls(value, where)


def role_calls() -> list:
    files = sorted((REPO / "playbooks").glob("*.yml")) + sorted((REPO / "roles").glob("*/tasks/*.yml"))
    found = []
    for path in files:
        found += _calls(yaml.safe_load(path.read_text()), str(path.relative_to(REPO)))
    return found


def test_the_walk_finds_the_calls_of_the_playbooks():
    calls = {(role, entry) for role, entry, _ in role_calls()}
    assert {("jram.dumphost.dumpjob", "validate"), ("jram.dumphost.cutover", "checks"),
            ("jram.dumphost.cutover", "validate"), ("jram.dumphost.harden", "main"),
            ("jram.dumphost.job_config", "main"), ("jram.dumphost.aws_identity", "main")} <= calls


@pytest.mark.parametrize("role, entry, where", role_calls())
def test_each_called_entry_point_has_an_argument_spec(role, entry, where):
    assert role.startswith(COLLECTION), f"{where}: role {role} is not this collection's: call it by its FQCN"
    specs = yaml.safe_load((REPO / "roles" / role[len(COLLECTION):] / "meta" / "argument_specs.yml").read_text())
    assert entry in specs["argument_specs"], (
        f"{where}: {role} is called with tasks_from: {entry}, which no entry of its meta/argument_specs.yml "
        f"({', '.join(specs['argument_specs'])}) names: its inputs are not checked when it is called")
