"""What the integration tests share: the paths they own on the dump host, the collection on
sys.path and on ANSIBLE_COLLECTIONS_PATH, and a runner for one module task through ansible-playbook.

Every path the tests create on the host is theirs alone (job names ``itest_*``, directories named
``jram-cutover-itest``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sandboxtest import collections_root

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LEDGER = "/var/lib/jram-cutover-itest/cutover.json"
ARCHIVE = "/var/lib/jram-cutover-itest/archive"
STUB_DIR = "/usr/local/libexec/jram-cutover-itest"
STUB = f"{STUB_DIR}/dumpjob"
FIRED_DIR = "/var/tmp/jram-cutover-itest"
FIRED = f"{FIRED_DIR}/fired.log"
OURS = ("/var/lib/jram-cutover-itest", STUB_DIR, FIRED_DIR)
# The user the new entries run as here: the tests' own, so that a role run creating the real
# dumpjob user at the same time is neither disturbed nor undone by the teardown.
CRON_USER = "jram-itest"
LEGACY_FILE = "/etc/cron.d/jram-itest-legacy"
# Files under /etc/cron.d the tests may create (and the teardown removes).
OUR_CRON_D = re.compile(r"^(dumpjob-itest_[a-z_]+|jram-itest-legacy)$")


COLLECTIONS = collections_root()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


class Ansible:
    """One task of a module per ansible-playbook run, against the sandbox inventory's dump host."""

    def __init__(self, sandbox, workdir: Path):
        self.sandbox = sandbox
        self.workdir = workdir
        self.env = {
            "PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "SANDBOX_HOST": sandbox.host,
            "ANSIBLE_NOCOLOR": "1",
        }
        self.count = 0

    def run(self, module: str, args: dict, check: bool = False, diff: bool = True) -> dict:
        self.count += 1
        playbook = self.workdir / f"task{self.count}.yml"
        playbook.write_text(json.dumps([{"hosts": "dumphost", "gather_facts": False,
                                         "tasks": [{"name": module, module: args}]}]))
        argv = [str(BIN / "ansible-playbook"), "-i", str(REPO / "inventories/sandbox"), "-l", "jram-dumphost",
                str(playbook)]
        argv += ["--check"] if check else []
        argv += ["--diff"] if diff else []
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=self.env)
        try:
            out = json.loads(proc.stdout)
            result = out["plays"][0]["tasks"][0]["hosts"]["jram-dumphost"]
        except (ValueError, KeyError, IndexError):
            raise AssertionError(f"ansible-playbook gave no task result ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}") from None
        assert (proc.returncode != 0) == bool(result.get("failed")), proc.stdout
        return result
