"""jram.dumphost.credential_scan on the sandbox's dump host in its legacy state, through the
``ansible`` ad-hoc command as an operator would run it: it finds ec2-user's static key in
~/.aws/credentials and the password hard-coded in each legacy script at the lines the host really
has them (and not the ``-p$DB_PASS`` references); with ``-vvv`` and ``fail_on_findings`` the task
fails naming path:line:kind while nothing Ansible prints holds the key or the password; and the
host is left as it was."""

from __future__ import annotations

import json
import subprocess

import pytest
from cutover_host import BIN, COLLECTIONS, REPO

from sandbox import config

MODULE = "jram.dumphost.credential_scan"
HOME = "/home/ec2-user"
CREDENTIALS = f"{HOME}/.aws/credentials"
SCRIPTS = f"{HOME}/scripts"
LEGACY_SCRIPTS = ("ggh_contract_status.sh", "ggh_datatransit.sh", "ggh_schema_snapshot.sh")
PATHS = [HOME, "/root", "/etc/cron*", "/var/spool/cron", "/etc/environment", "/etc/profile", "/etc/profile.d",
         "/etc/bash.bashrc"]


def adhoc(sandbox, args: dict, *options: str, json_output: bool = True) -> subprocess.CompletedProcess:
    argv = [str(BIN / "ansible"), "-i", f"{sandbox.host},", "-c", "sandbox_podman", sandbox.host,
            "-m", MODULE, "-a", json.dumps(args), *options]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/root", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS, "ANSIBLE_NOCOLOR": "1"}
    if json_output:
        env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def result_of(sandbox, proc) -> dict:
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][sandbox.host]
    except (ValueError, KeyError, IndexError):
        raise AssertionError(f"ansible gave no task result ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}") from None


def lines_holding(sandbox, value: str, path: str) -> list[int]:
    proc = sandbox.exec("grep", "-nF", "--", value, path, check=False)
    return [int(line.split(":", 1)[0]) for line in proc.stdout.splitlines()]


def host_files(sandbox) -> str:
    """Content checksums, sizes, modes and times of the files the scan reads that hold the credentials."""
    return sandbox.exec("bash", "-c", f"find {HOME}/.aws {SCRIPTS} -type f -printf '%p %s %m %u %T@\\n' | sort; "
                        f"find {HOME}/.aws {SCRIPTS} -type f -exec sha256sum {{}} + | sort").stdout


@pytest.fixture(scope="module")
def legacy(sandbox) -> dict:
    """Where the host holds the legacy credentials, read from the host itself."""
    key = sandbox.state["legacy_key"]
    found = {
        "key_id": lines_holding(sandbox, key["id"], CREDENTIALS),
        "secret": lines_holding(sandbox, key["secret"], CREDENTIALS),
        "password": {name: lines_holding(sandbox, config.LEGACY_DB_PASSWORD, f"{SCRIPTS}/{name}")
                     for name in LEGACY_SCRIPTS},
    }
    assert found["key_id"] and found["secret"] and all(found["password"].values()), (
        f"the sandbox host is not in its legacy state (static key and hard-coded passwords): {found}")
    return {**found, "values": [key["id"], key["secret"], config.LEGACY_DB_PASSWORD]}


def test_finds_the_static_key_and_the_hard_coded_passwords(sandbox, legacy):
    before = host_files(sandbox)
    proc = adhoc(sandbox, {"paths": PATHS})
    result = result_of(sandbox, proc)
    assert proc.returncode == 0 and not result.get("failed"), proc.stdout
    assert result["changed"] is False
    by_file: dict[str, set] = {}
    for f in result["findings"]:
        by_file.setdefault(f["path"], set()).add((f["line"], f["kind"], f["name"], f["masked"]))
    assert by_file[CREDENTIALS] == {
        (legacy["key_id"][0], "aws_access_key_id", "aws_access_key_id", "AKIA****"),
        (legacy["secret"][0], "aws_secret_access_key", "aws_secret_access_key", "****")}
    for name, lines in legacy["password"].items():
        # DB_PASS='...' is reported; the -p$DB_PASS of the mysqldump/mysql line is a reference
        assert by_file[f"{SCRIPTS}/{name}"] == {(line, "password_assignment", "DB_PASS", "****") for line in lines}
    assert result["files_scanned"] >= 5
    assert not [value for value in legacy["values"] if value in proc.stdout + proc.stderr]
    assert host_files(sandbox) == before, "the scan changed the host"


def test_fail_on_findings_is_safe_at_vvv(sandbox, legacy):
    """What an operator sees with -vvv (module arguments, the connection's commands, the result) in
    check mode: the task fails listing path:line:kind and no secret value appears anywhere."""
    before = host_files(sandbox)
    proc = adhoc(sandbox, {"paths": PATHS, "fail_on_findings": True}, "-vvv", "--check", json_output=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "FAILED" in output, output[-3000:]
    assert f"{CREDENTIALS}:{legacy['key_id'][0]}:aws_access_key_id" in output
    assert f"{CREDENTIALS}:{legacy['secret'][0]}:aws_secret_access_key" in output
    for name, lines in legacy["password"].items():
        assert f"{SCRIPTS}/{name}:{lines[0]}:password_assignment" in output
    assert "module_args" in output, "-vvv shows the invocation"
    leaked = [value for value in legacy["values"] if value in output]
    assert not leaked, "a secret value appears in the -vvv output"
    assert host_files(sandbox) == before, "the scan changed the host"


# Issue 11: the places the scanner did not read, and the legacy archive, on a dump host of its own.
ARCHIVE = "/var/lib/dumpjob/legacy-archive"
PLACES = {
    "/etc/sysconfig/jram-itest-export": ("DBPW=Sysc0nfig-Dbpw-91\n", 1, "password_assignment", "DBPW"),
    "/opt/jram-itest/bin/upload.sh": ("#!/bin/bash\naws_secret=Op7Kp2Wq/Lm5Nx7Bv3Ct9Dy4Fu6Gh1Jk0Se+Ta2Z\n",
                                      2, "aws_secret_access_key", "aws_secret"),
    "/usr/local/etc/jram-itest.env": ("SECRET='Usr-L0cal-Secret'\n", 1, "password_assignment", "SECRET"),
}


def test_new_places_and_the_archive_by_default(sandbox, fresh_host):
    """The module's defaults read /etc/sysconfig, /opt, /usr/local and the legacy archive; what the
    archive holds (the retired script, the old password in it) is reported as archived, warned about
    and does not fail fail_on_findings; no value appears, even at -vvv."""
    host = fresh_host
    for path, (text, *_) in PLACES.items():
        host.exec("bash", "-c", f"mkdir -p $(dirname {path}) && cat > {path}", input=text)
    script = f"{ARCHIVE}/itest/ggh_datatransit.sh"
    host.exec("bash", "-c", f"install -d -m 0700 /var/lib/dumpjob {ARCHIVE} {ARCHIVE}/itest && cp -p "
              f"{SCRIPTS}/ggh_datatransit.sh {script} && chmod 0700 {script}")
    archived_lines = lines_holding(host, config.LEGACY_DB_PASSWORD, script)
    assert archived_lines
    values = [text.split("=", 1)[1].strip().strip("'") for text, *_ in PLACES.values()]
    values += [config.LEGACY_DB_PASSWORD, sandbox.state["legacy_key"]["secret"]]

    proc = adhoc(host, {"max_file_size": "1M"})  # every other option at its default
    result = result_of(host, proc)
    assert proc.returncode == 0 and not result.get("failed"), proc.stdout
    found = {(f["path"], f["line"], f["kind"], f["name"], f["archived"]) for f in result["findings"]}
    for path, (_, line, kind, name) in PLACES.items():
        assert (path, line, kind, name, False) in found
    assert {f for f in found if f[0] == script} == {
        (script, line, "password_assignment", "DB_PASS", True) for line in archived_lines}
    assert result["archived_counts"] == {"password_assignment": len(archived_lines)}
    assert not [f for f in result["findings"] if "site-packages" in f["path"]]
    assert f"{script}:{archived_lines[0]}:password_assignment" in json.dumps(result["warnings"])
    leaked = [value for value in values if value in proc.stdout + proc.stderr]
    assert not leaked, "a planted value appears in the output"

    # the archive alone never fails the task; the places around it do
    proc = adhoc(host, {"paths": [ARCHIVE], "fail_on_findings": True}, "-vvv", json_output=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert f"{script}:{archived_lines[0]}:password_assignment" in output and "archived" in output
    proc = adhoc(host, {"paths": [ARCHIVE, *PLACES], "fail_on_findings": True}, "-vvv", json_output=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "FAILED" in output, output[-3000:]
    for path, (_, line, kind, _) in PLACES.items():
        assert f"{path}:{line}:{kind}" in output
    assert not [value for value in values if value in output], "a planted value appears in the -vvv output"
