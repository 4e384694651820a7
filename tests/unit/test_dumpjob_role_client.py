"""The dumpjob role's input checks and its mysqldump client choice, run by ansible-playbook against
localhost (nothing is installed: refusals stop before any change, the rest runs in check mode).

The production host is Amazon Linux 2023 (dnf) and this machine is Debian, so the RedHat side is
shown here with the OS family overridden: the package list it installs (mariadb105 by default,
MySQL's client with dumpjob_mysql_client) and the signed dnf repository it would add, in check
mode with a private repository directory. Installing from the repository happens on the
production host only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MYSQL_REPO = {"baseurl": "https://repo.mysql.com/yum/mysql-8.4-community/el/9/$basearch/",
              "gpgkey": "https://repo.mysql.com/RPM-GPG-KEY-mysql-2023"}


def play(tmp_path: Path, tasks: list, extra: dict, *args: str, **play_keys) -> subprocess.CompletedProcess:
    """One play of `tasks` against localhost; results as JSON (one line per message)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "role check", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks, **play_keys}]))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
           "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run([str(bin_dir / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
                           "-e", json.dumps({"ansible_python_interpreter": sys.executable, **extra}), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


VALIDATE = [{"name": "Check", "ansible.builtin.import_role": {"name": "jram.dumphost.dumpjob",
                                                               "tasks_from": "validate.yml"}}]


def failure(proc: subprocess.CompletedProcess) -> str:
    """The msg of the failed task (the JSON result after 'FAILED! => ')."""
    assert proc.returncode != 0, proc.stdout[-3000:]
    line = next(line for line in proc.stdout.splitlines() if "FAILED! => " in line)
    return json.loads(line.split("FAILED! => ", 1)[1])["msg"]


@pytest.mark.parametrize("name", ["MYSQL_PWD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                  "AWS_SHARED_CREDENTIALS_FILE", "mysql_pwd", "Aws_Shared_Credentials_File"])
def test_credential_variables_are_refused_by_name_with_one_line(tmp_path, name):
    extra = {"dumpjob_environment": {"AWS_REGION": "ap-northeast-1", name: "/root/.aws/credentials"}}
    msg = failure(play(tmp_path, VALIDATE, extra))
    assert "\n" not in msg
    assert msg.startswith(f"dumpjob_environment: {name} must not be set") and f"remove {name} from" in msg, msg


@pytest.mark.parametrize("client, words", [
    ({"baseurl": MYSQL_REPO["baseurl"]}, "baseurl and gpgkey must each be"),
    ({**MYSQL_REPO, "gpgcheck": False}, "unknown key(s) gpgcheck"),
    ({**MYSQL_REPO, "package": "mysql client; rm"}, "package must be a package name"),
    ({**MYSQL_REPO}, "it is for the RedHat family (dnf); this host is Debian"),
])
def test_a_bad_mysql_client_source_is_refused_with_one_line(tmp_path, client, words):
    facts = {"os_family": "Debian" if "Debian" in words else "RedHat"}
    msg = failure(play(tmp_path, VALIDATE, {"dumpjob_mysql_client": client, "ansible_facts": facts}))
    assert "\n" not in msg and msg.startswith("dumpjob_mysql_client: ") and words in msg, msg


def test_the_redhat_family_installs_mariadb105_by_default_and_mysqls_client_from_a_signed_repository(tmp_path):
    repos = tmp_path / "yum.repos.d"
    repos.mkdir()
    show = {"name": "Show", "ansible.builtin.debug": {"msg": "packages={{ dumpjob_client_packages | join(',') }}."}}
    client = [*VALIDATE, {"name": "Client", "ansible.builtin.import_role": {
        "name": "jram.dumphost.dumpjob", "tasks_from": "client.yml", "vars_from": "RedHat.yml"}}, show]
    extra = {"ansible_facts": {"os_family": "RedHat"}, "dumpjob_environment": {"AWS_REGION": "ap-northeast-1"},
             "dumpjob_mysql_client": {**MYSQL_REPO, "name": "mysql84"}}
    proc = play(tmp_path, client, extra, "--check", "--diff",
                module_defaults={"ansible.builtin.yum_repository": {"reposdir": str(repos)}})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "packages=mysql-community-client." in proc.stdout
    diff = proc.stdout.split("TASK [jram.dumphost.dumpjob : Add the package repository", 1)[1].split("TASK [", 1)[0]
    assert "changed: [localhost]" in diff and f"{repos}/mysql84.repo" in diff
    for line in ("[mysql84]", f"baseurl = {MYSQL_REPO['baseurl']}", f"gpgkey = {MYSQL_REPO['gpgkey']}",
                 "gpgcheck = 1", "enabled = 1"):
        assert f"+{line}" in diff, diff
    assert not list(repos.iterdir()), "check mode wrote the repository file"
    # dnf could not see a repository added in this same check run: the install says so by skipping
    assert "skipping: [localhost]" in proc.stdout.split("TASK [jram.dumphost.dumpjob : Install the mysqldump", 1)[1]

    for family, expected in (("RedHat", "mariadb105"), ("Debian", "mariadb-client")):
        tasks = [{"name": "Vars", "ansible.builtin.include_vars": str(REPO / f"roles/dumpjob/vars/{family}.yml")},
                 show]
        proc = play(tmp_path, tasks, {"dumpjob_mysql_client": {}})
        assert proc.returncode == 0 and f"packages={expected}." in proc.stdout, proc.stdout[-3000:]
