"""Where logic lives (STYLE.md, "Where logic lives"): YAML orchestrates, Python owns the logic.
No task runs a Python program of this collection through command/shell/script/raw (a program of
the collection is a module in plugins/modules/, and dumpjob runs only through its modules), no
program ships as a role file, and no ledger or program output is parsed with from_json in Jinja
(state is read by an *_info module)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
YAML_FILES = sorted([*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml"),
                     *REPO.glob("playbooks/*.yml")])
RUNNERS = {"command", "shell", "script", "raw"}
# What a command line of ours looks like: a .py file, the dump program, a Python one-liner, a
# module of ours run with -m (pip and venv are the tools that install the program, not ours).
OUR_PROGRAM = re.compile(r"\.py\b|dumpjob_bin|/bin/dumpjob\b|-m\s+dumpjob\b|python3?\S*\s+-(c|m\s+(?!pip\b|venv\b))")


def _tasks(node):
    """Every task in a task list or play list, blocks and handlers included."""
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if any(k in node for k in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")):
            for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
                yield from _tasks(node.get(key) or [])
            if "block" in node:
                return
        if "name" in node or any("." in k or k in RUNNERS for k in node):
            yield node


def _strings(node):
    """The strings of a task's arguments, an argv list read as the command line it is."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _runner_args(task: dict):
    for key, value in task.items():
        if key.split(".")[-1] in RUNNERS:
            yield key, value


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_task_runs_a_program_of_the_collection(path):
    offenders = []
    for task in _tasks(yaml.safe_load(path.read_text()) or []):
        for module, args in _runner_args(task):
            text = " ".join(_strings([args, task.get("vars", {})]))
            if OUR_PROGRAM.search(text):
                offenders.append(f"{task.get('name', '?')} ({module})")
    assert offenders == [], f"{path.relative_to(REPO)}: run these through a module of plugins/modules/: {offenders}"


def test_no_program_ships_as_a_role_file():
    programs = [str(p.relative_to(REPO)) for p in REPO.glob("roles/*/files/**/*") if p.suffix == ".py"
                or (p.is_file() and p.read_bytes().startswith(b"#!"))]
    assert programs == []


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_json_parsed_in_jinja(path):
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if "from_json" in line and not line.lstrip().startswith("#")]
    assert lines == [], f"{path.relative_to(REPO)}: read state through an *_info module instead: {lines}"


def _named(text: str, module: str) -> bool:
    """Whether a module is named in text, also as `name(_info)` or by a `prefix_*` family."""
    base = module.removesuffix("_info")
    return (re.search(rf"\b{module}\b", text) is not None or f"{base}(_info)" in text
            or any(module.startswith(family) for family in re.findall(r"\b(\w+_)\*", text)))


@pytest.mark.parametrize("page", ["README.md", "docs/README.md"])
def test_every_module_is_on_the_maps(page):
    text = (REPO / page).read_text()
    missing = [p.stem for p in sorted(REPO.glob("plugins/modules/*.py")) if not _named(text, p.stem)]
    assert missing == [], f"{page} does not name these modules: {missing}"


def test_no_two_test_modules_share_a_name():
    # pytest imports test modules by basename (no packages under tests/): a second module of the
    # same name in another directory fails the whole run at collection.
    seen: dict[str, list[str]] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    assert [paths for paths in seen.values() if len(paths) > 1] == []
