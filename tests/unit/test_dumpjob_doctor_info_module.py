"""dumpjob_doctor_info's main(), driven as Ansible drives it.

The dumpjob program is replaced by a script printing doctor answers in the documented `--json`
shape (docs/dumpjob.md) and recording its arguments and environment; the real program runs in
phase 2 (roles/dumpjob/tasks/report.yml) and phase 3. Shown here: the report comes back as data,
the flavour check becomes one entry and one summary line per job (with the mode, without it when
the server was not reached, or saying the program has no such check), check mode returns the same
and changes nothing, a program that refuses to run or is missing is an answer, no JSON answer is a
failure, and cron's environment is what the program sees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program
from ansible_collections.jram.dumphost.plugins.modules import dumpjob_doctor_info
from sandboxtest import run_module

CLIENT = "mysqldump  Ver 10.19 Distrib 10.5.25-MariaDB, for Linux (x86_64)"
HOST_CHECKS = [{"name": "instance_role", "ok": True, "reason": "role dumpjob-host", "role": "dumpjob-host"},
               {"name": "aws_identity", "ok": True, "reason": "arn:aws:sts::1:assumed-role/dumpjob-host/i-1"}]


def flavour_check(**fields) -> dict:
    check = {"name": "flavour", "ok": True, "reason": "MariaDB client, MySQL server", "client": CLIENT,
             "client_flavour": "mariadb", "server_flavour": "mysql", "server_version": "8.0.39",
             "mode": "mariadb-client-mysql-server"}
    check.update(fields)
    return check


def report(*job_checks: list, ok: bool = True) -> dict:
    jobs = [{"job": name, "ok": all(c["ok"] for c in checks), "checks": checks}
            for name, checks in zip(("basis", "contract_status"), job_checks)]
    return {"ok": ok, "checks": HOST_CHECKS, "jobs": jobs}


class Host:
    def __init__(self, root: Path):
        self.program = root / "dumpjob"
        self.calls = root / "calls"
        self.environ = root / "environ"

    def answer(self, code: int, doc: dict | None, stdout: str | None = None) -> None:
        """The stand-in records its argv and environment, prints a log line and the answer."""
        text = (stdout if stdout is not None else json.dumps(doc)).replace("'", "'\\''")
        self.program.write_text("\n".join([
            "#!/bin/sh", f'echo "$*" >> {self.calls}', f"env > {self.environ}",
            """echo '{"level": "error", "event": "error", "msg": "the last words"}' >&2""",
            f"printf '%s\\n' '{text}'", f"exit {code}", ""]))
        self.program.chmod(0o755)

    def args(self, **extra) -> dict:
        return {"run_as": "", "dumpjob_bin": str(self.program), **extra}


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_the_report_and_each_jobs_flavour_come_back_as_data_in_check_mode_too(host):
    doc = report([flavour_check()], [flavour_check(server_flavour="mariadb", server_version="10.11.6-MariaDB",
                                                   mode="native", client_flavour="mariadb")])
    host.answer(0, doc)
    for check in (True, False):
        result = dumpjob_doctor_info_run(host.args(), check=check)
        assert result["changed"] is False and result["installed"] is True and result["ok"] is True
        assert result["exit_code"] == 0 and result["report"] == doc and result["failed_checks"] == []
        basis = result["flavour"]["basis"]
        assert {k: basis[k] for k in dumpjob_program.FLAVOUR_FIELDS} == {
            "client": CLIENT, "client_flavour": "mariadb", "server_flavour": "mysql", "server_version": "8.0.39",
            "mode": "mariadb-client-mysql-server"}
        assert result["summary"] == [
            f"basis: client {CLIENT} (mariadb), server mysql 8.0.39: mode mariadb-client-mysql-server",
            f"contract_status: client {CLIENT} (mariadb), server mariadb 10.11.6-MariaDB: mode native"]
    assert host.calls.read_text().splitlines() == ["doctor --json", "doctor --json"]


def test_an_unreachable_server_reports_the_client_without_a_mode(host):
    unreachable = flavour_check(ok=False, reason="server not reached: cannot read secret 'rds/basis'",
                                server_flavour=None, server_version=None, mode=None)
    secret = {"name": "secret", "ok": False, "reason": "cannot read secret 'rds/basis': no AWS credentials"}
    host.answer(12, report([secret, unreachable], ok=False))
    result = dumpjob_doctor_info_run(host.args(job="basis", config="/etc/dumpjob/jobs.yml"))
    assert result["ok"] is False and result["exit_code"] == 12 and result.get("failed") is not True
    assert "rc" not in result, "Ansible fails a task whose result has a non-zero rc"
    assert result["flavour"]["basis"]["mode"] is None and result["flavour"]["basis"]["client"] == CLIENT
    assert result["summary"] == [f"basis: client {CLIENT} (mariadb); server not reached, so the mode is not known "
                                 "yet (secret: cannot read secret 'rds/basis': no AWS credentials)"]
    assert {"job": "basis", "name": "secret", "reason": secret["reason"]} in result["failed_checks"]
    assert host.calls.read_text().strip() == "doctor basis --config /etc/dumpjob/jobs.yml --json"


def test_a_refused_mismatch_is_said_in_the_summary(host):
    refused = flavour_check(ok=False, reason="the job refuses a MariaDB client against a MySQL server")
    host.answer(12, report([refused], ok=False))
    result = dumpjob_doctor_info_run(host.args())
    assert result["summary"][0].endswith("mode mariadb-client-mysql-server, refused: the job refuses a MariaDB "
                                         "client against a MySQL server")


def test_a_doctor_without_a_flavour_check_says_so(host):
    host.answer(0, report([{"name": "config", "ok": True, "reason": "valid"}]))
    result = dumpjob_doctor_info_run(host.args())
    assert all(result["flavour"]["basis"][k] is None for k in (*dumpjob_program.FLAVOUR_FIELDS, "ok"))
    assert result["summary"] == [f"basis: {dumpjob_program.NO_FLAVOUR_CHECK}"]


def test_a_query_job_next_to_a_mysqldump_job_needs_no_client(host):
    host.answer(0, report([flavour_check()], [{"name": "config", "ok": True, "reason": "valid"}]))
    result = dumpjob_doctor_info_run(host.args())
    assert result["summary"][1] == f"contract_status: {dumpjob_program.NO_CLIENT}"


def test_the_programs_passing_check_without_a_server_says_what_kept_it_away(host):
    # As dumpjob's doctor reports a client whose server it could not reach: passing, without the server fields.
    client_only = {"name": "flavour", "ok": True, "client": CLIENT, "client_flavour": "mariadb",
                   "reason": f"mariadb client {CLIENT}; the mode is known once the database answers"}
    database = {"name": "database", "ok": False, "reason": "cannot reach database at db.example:3306"}
    host.answer(12, report([database, client_only], ok=False))
    result = dumpjob_doctor_info_run(host.args())
    assert result["flavour"]["basis"]["mode"] is None and result["flavour"]["basis"]["server_version"] is None
    assert result["summary"] == [f"basis: client {CLIENT} (mariadb); server not reached, so the mode is not known "
                                 "yet (database: cannot reach database at db.example:3306)"]


def test_a_host_level_flavour_check_applies_to_every_job(host):
    doc = report([{"name": "config", "ok": True, "reason": "valid"}])
    doc["checks"] = [*HOST_CHECKS, flavour_check(server_flavour=None, server_version=None, mode=None)]
    host.answer(0, doc)
    assert dumpjob_doctor_info_run(host.args())["flavour"]["basis"]["client"] == CLIENT


def test_a_program_that_refuses_to_run_is_an_answer(host):
    error = "config /etc/dumpjob/jobs.yml: no job 'nope'"
    host.answer(3, {"ok": False, "error": error, "kind": "config", "exit_code": 3})
    result = dumpjob_doctor_info_run(host.args(job="nope"))
    assert result.get("failed") is not True and result["ok"] is False and result["exit_code"] == 3
    assert result["error"] == error and result["report"] == {} and result["flavour"] == {}


def test_a_missing_program_is_reported_as_not_installed(host):
    result = dumpjob_doctor_info_run(host.args(), check=True)
    assert result.get("failed") is not True and result["installed"] is False and result["ok"] is False
    assert result["summary"] == [f"dumpjob is not installed at {host.program} yet"]


def test_no_json_answer_fails_with_the_programs_last_words(host):
    host.answer(1, None, stdout="Traceback (most recent call last):")
    result = dumpjob_doctor_info_run(host.args())
    assert result["failed"] is True and result["msg"] == "dumpjob doctor gave no JSON answer (exit 1): the last words"


def test_the_program_sees_crons_environment_unless_told_otherwise(host, monkeypatch):
    monkeypatch.setenv("DUMPJOB_TEST_MARKER", "from the module's environment")
    host.answer(0, report([flavour_check()]))
    dumpjob_doctor_info_run(host.args())
    names = {line.split("=", 1)[0] for line in host.environ.read_text().splitlines()}
    assert names <= {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG", "PWD"}, names
    assert {"HOME", "PATH", "LANG"} <= names
    dumpjob_doctor_info_run(host.args(cron_environment=False))
    assert "DUMPJOB_TEST_MARKER=from the module's environment" in host.environ.read_text()


def test_the_command_runs_as_the_user_through_runuser_with_the_users_own_home():
    argv = dumpjob_program.command("/usr/local/bin/dumpjob", "dumpjob", "/usr/sbin/runuser")
    assert argv[:6] == ["/usr/sbin/runuser", "-u", "dumpjob", "--", "/bin/sh", "-c"]
    assert argv[6] == dumpjob_program.CRON_ENVIRONMENT and argv[7] == "/usr/local/bin/dumpjob"
    assert 'HOME="$HOME"' in argv[6], "the user's $HOME is expanded by the user's shell, not before"
    assert dumpjob_program.command("/x/dumpjob", cron_environment=False) == ["/x/dumpjob"]
    assert os.path.basename(dumpjob_program.command("/x/dumpjob")[-1]) == "dumpjob"


def dumpjob_doctor_info_run(args: dict, check: bool = False) -> dict:
    return run_module(dumpjob_doctor_info.main, args, check=check, diff=False)
