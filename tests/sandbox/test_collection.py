"""The collection builds into a tarball without local state, and the sandbox inventory reaches
the host through the sandbox's own podman connection (nsenter, no host key), while SSH host keys
are checked."""

import json
import os
import re
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
    assert set(galaxy["dependencies"]) == {"amazon.aws", "community.aws"}
    runtime = yaml.safe_load((REPO / "meta/runtime.yml").read_text())
    assert runtime["requires_ansible"] and "dumphost" in runtime["action_groups"]
    modules = sorted(p.stem for p in (REPO / "plugins/modules").glob("*.py"))
    assert sorted(runtime["action_groups"]["dumphost"]) == modules


def test_sandbox_inventory_reaches_the_host(sandbox):
    proc = subprocess.run([BIN / "ansible", "-i", REPO / "inventories/sandbox", "dumphost",
                           "-m", "ansible.builtin.setup", "-a", "filter=ansible_date_time"],
                          capture_output=True, text=True, cwd=REPO,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                               "SANDBOX_HOST": sandbox.host})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tz: UTC" in proc.stdout


def sandbox_ansible(sandbox, *argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*argv], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={"PATH": f"{BIN}:/usr/bin:/bin", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                               "SANDBOX_HOST": sandbox.host, "HOME": "/root"}, **kwargs)


def test_the_sandbox_connection_runs_a_module_as_one_command_in_the_container(sandbox, tmp_path):
    """sandbox_podman pipes a module task to the container's Python as one command entered with
    nsenter (the collection's podman connection needs a podman mount and five podman execs), with
    the container's environment, capabilities and limits, and still transfers files for copy."""
    target = f"/root/pipelined-{tmp_path.name}"
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "dumphost", "gather_facts": False, "tasks": [
        {"name": "one module", "ansible.builtin.command": "cat /proc/self/status /proc/self/limits /etc/hostname",
         "changed_when": False, "register": "inside"},
        {"name": "environment", "ansible.builtin.command": "env", "changed_when": False, "register": "env_out"},
        {"name": "one transfer", "ansible.builtin.copy": {"content": "piped\n", "dest": target, "mode": "0600"}},
        {"name": "read back", "ansible.builtin.slurp": {"src": target}, "register": "back"},
        {"name": "check", "ansible.builtin.assert": {"that": ["back.content | b64decode == 'piped\\n'"]}},
        {"name": "clean", "ansible.builtin.file": {"path": target, "state": "absent"}},
        {"name": "show", "ansible.builtin.debug": {"msg": "{{ inside.stdout_lines + env_out.stdout_lines }}"}}]}]))
    proc = sandbox_ansible(sandbox, BIN / "ansible-playbook", "-vvv", "-i", REPO / "inventories/sandbox", playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "failed=0" in proc.stdout
    first = proc.stdout.split("TASK [one module]", 1)[1].split("TASK [environment]", 1)[0]
    commands = [line for line in first.splitlines() if "NSENTER" in line or "b'exec'" in line]
    assert len(commands) == 1 and "NSENTER" in commands[0] and "AnsiballZ" not in commands[0], first
    shown = " ".join(proc.stdout.split("TASK [show]", 1)[1].replace("\\t", " ").split())
    # what podman exec gives: the container's hostname, bounding set, limits and environment
    expected = subprocess.run(["podman", "exec", sandbox.host, "sh", "-c", "grep CapBnd /proc/self/status; env"],
                              capture_output=True, text=True, check=True).stdout.splitlines()
    assert "ggh-dumphost" in shown
    for line in expected:
        assert " ".join(line.split()) in shown, (line, shown)
    assert re.search(r"Max open files 20000 20000", shown), shown
    assert "container_uuid" not in shown


def test_the_sandbox_connection_refuses_a_paused_container(sandbox):
    """As podman exec does: a paused container (the tests' stopped instance) does not answer."""
    subprocess.run(["podman", "pause", sandbox.host], check=True, capture_output=True)
    try:
        proc = sandbox_ansible(sandbox, BIN / "ansible", "-i", REPO / "inventories/sandbox", "dumphost",
                               "-m", "ansible.builtin.command", "-a", "true")
    finally:
        subprocess.run(["podman", "unpause", sandbox.host], check=True, capture_output=True)
    assert proc.returncode != 0
    assert "is paused" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    again = sandbox_ansible(sandbox, BIN / "ansible", "-i", REPO / "inventories/sandbox", "dumphost",
                            "-m", "ansible.builtin.command", "-a", "true")
    assert again.returncode == 0, again.stdout + again.stderr


def test_host_keys_are_checked_and_the_sandbox_needs_no_exception():
    """From the repository root Ansible checks SSH host keys (production's inventory reaches the
    host over SSH); the sandbox's dump host is reached through podman, which has no host key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    proc = subprocess.run([BIN / "ansible-config", "dump", "--only-changed", "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    settings = {item["name"]: item for item in json.loads(proc.stdout) if "name" in item}
    assert settings["CONFIG_FILE"]["value"] == str(REPO / "ansible.cfg")
    assert settings["HOST_KEY_CHECKING"]["value"] is True, settings.get("HOST_KEY_CHECKING")
    inventory = yaml.safe_load((REPO / "inventories/sandbox/hosts.yml").read_text())
    for name, host in inventory["all"]["children"]["dumphost"]["hosts"].items():
        assert host["ansible_connection"] == "sandbox_podman", name
    for path in (REPO / "inventories").rglob("*.yml"):
        assert "host_key_checking" not in path.read_text(), f"{path} turns host key checking off"
