"""Helpers for tests against the sandbox (imported by tests/conftest.py and by test modules:
`from sandboxtest import run_playbook`)."""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sandbox import config, mariadb  # noqa: E402


def collections_root() -> str:
    """A directory where `ansible_collections/jram/dumphost` is this checkout: the one `make
    setup` links, or else a temporary one made here (removed at exit)."""
    local = REPO / ".collections"
    if (local / "ansible_collections/jram/dumphost/galaxy.yml").resolve() == REPO / "galaxy.yml":
        return str(local)
    root = Path(tempfile.mkdtemp(prefix="jram-collections-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "ansible_collections" / "jram").mkdir(parents=True)
    (root / "ansible_collections" / "jram" / "dumphost").symlink_to(REPO)
    return str(root)


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


def make_host(sandbox: Sandbox, name: str, legacy: bool = True) -> Sandbox:
    """Start another dump host container from the sandbox image, in the legacy state (as the
    image is, with ``legacy=False``), and return a Sandbox view whose .host/.exec address it.
    Remove it with remove_host()."""
    from sandbox import host as sandbox_host

    remove_host(name)
    settings = dataclasses.replace(sandbox.settings, host=name)
    sandbox_host.podman("run", "-d", "--name", name, "--hostname", name, "--network", "host", "--systemd", "always",
                        *sandbox_host.RUN_OPTS, sandbox_host.IMAGE, "/sbin/init")
    sandbox_host.wait_booted(settings)
    if legacy:
        sandbox_host.provision(settings, sandbox.state)
    return Sandbox(settings, sandbox.env, sandbox.state)


def remove_host(name: str, imds_ports: tuple[int, ...] = ()) -> None:
    """Remove the container and the metadata rule set tables it loaded into this machine's network
    namespace (its rule file's, and the per-port tables of the emulator ports given)."""
    from sandbox import host as sandbox_host

    tables = sandbox_host.imds_tables(name, imds_ports)
    subprocess.run(["podman", "rm", "--force", "--time", "10", name], capture_output=True)
    sandbox_host.drop_imds_tables(tables)


def run_playbook(playbook: str, *args: str, host: str | None = None, env: dict | None = None, check: bool = True):
    """ansible-playbook from the repository root with the sandbox inventory, its dump host
    being the container `host` (default: the sandbox's); returns the CompletedProcess
    (stdout and stderr merged in .stdout)."""
    bin_dir = Path(sys.executable).parent
    full_env = {**os.environ, **(env or {}), **({"SANDBOX_HOST": host} if host else {}),
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1"}
    proc = subprocess.run([bin_dir / "ansible-playbook", "-i", str(REPO / "inventories" / "sandbox"),
                           str(REPO / playbook), *args],
                          cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{playbook} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-8000:]}")
    return proc


def run_module(main, args: dict, check: bool = False, diff: bool = True) -> dict:
    """Drive a module's main() in this process and return its JSON result; the exit code must
    match `failed`."""
    import contextlib
    import io
    import json

    import pytest
    from ansible.module_utils.common import warnings as module_warnings
    from ansible.module_utils.testing import patch_module_args

    # Each module run is its own process under Ansible; in one test process the warnings
    # AnsibleModule collects would carry over from one run to the next.
    module_warnings._global_warnings.clear()
    module_warnings._global_deprecations.clear()
    out = io.StringIO()
    with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}), \
            contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main()
    result = json.loads(out.getvalue())
    assert exc.value.code == (1 if result.get("failed") else 0)
    return result


RECAP = re.compile(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclasses.dataclass
class PlayRun:
    """One ansible-playbook run: its exit code, its output (stdout and stderr) and, when the
    caller timed it, when it started and ended (time.time())."""

    rc: int
    out: str
    started: float = 0.0
    ended: float = 0.0

    @property
    def changed(self) -> int:
        recaps = RECAP.findall(self.out)
        assert recaps, f"no PLAY RECAP in the output:\n{self.out[-3000:]}"
        return sum(int(r[1]) for r in recaps)

    @property
    def failed(self) -> int:
        return sum(int(r[3]) for r in RECAP.findall(self.out))

    @property
    def changed_tasks(self) -> list[str]:
        return re.findall(r"^changed: .*$", self.out, re.M)

    def one_line(self) -> str:
        return " ".join(self.out.split())
