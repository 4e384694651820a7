"""The doctor's findings, computed once (module_utils/dumpjob_program.py) for phase 3's verification
and for key retirement's gate, and returned by dumpjob_doctor_info's main().

Shown here: only the checks asked for gate (bucket standing for every bucket:<prefix>), host
checks first, then an identity that is not the expected role's, then the jobs'; the others are
reported apart; an unknown check name is refused; a program that gave no report is the one
finding. The program is a stand-in printing a report in the documented `--json` shape."""

from __future__ import annotations

import json

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program as program
from ansible_collections.jram.dumphost.plugins.modules import dumpjob_doctor_info
from sandboxtest import run_module

ROLE = "jram-dumphost"
GATE = ["instance_role", "aws_identity", "secret", "bucket"]


def report(role=ROLE, source="iam-role", secret_ok=True, database_ok=True) -> dict:
    return {"ok": False, "checks": [
        {"name": "instance_role", "ok": True, "reason": f"instance role '{role}' (IMDSv2)", "role": role},
        {"name": "aws_identity", "ok": True, "reason": f"arn:aws:sts::1:assumed-role/{role}/i-1", "role": role,
         "source": source},
    ], "jobs": [{"job": "basis", "ok": False, "checks": [
        {"name": "secret", "ok": secret_ok, "reason": "reading secret 'rds/basis' failed: AccessDenied"},
        {"name": "database", "ok": database_ok, "reason": "cannot connect to db:3306"},
        {"name": "bucket:dumps/", "ok": False, "reason": "cannot write s3://b/dumps/"},
    ]}]}


def test_only_the_gating_checks_are_findings_host_role_then_jobs():
    found, other = program.findings(report(role="someone-else", secret_ok=False, database_ok=False), GATE, ROLE)
    assert found == [
        "instance_role: instance role 'someone-else' (IMDSv2), expected role jram-dumphost",
        "aws_identity: arn:aws:sts::1:assumed-role/someone-else/i-1, expected the instance role jram-dumphost",
        "basis: secret: reading secret 'rds/basis' failed: AccessDenied",
        "basis: bucket:dumps/: cannot write s3://b/dumps/",
    ]
    assert other == ["basis: database: cannot connect to db:3306"]


def test_static_keys_are_not_the_instance_role_and_no_expected_role_checks_no_role():
    found, _ = program.findings(report(source="shared-credentials-file"), ["aws_identity"], ROLE)
    assert found == ["aws_identity: arn:aws:sts::1:assumed-role/jram-dumphost/i-1, expected the instance role "
                     "jram-dumphost"]
    assert program.findings(report(role="other"), ["instance_role"], None) == (
        [], ["basis: bucket:dumps/: cannot write s3://b/dumps/"])
    # without gate_checks every failing check gates
    assert program.findings(report(database_ok=False), None, ROLE)[0] == [
        "basis: database: cannot connect to db:3306", "basis: bucket:dumps/: cannot write s3://b/dumps/"]


@pytest.fixture
def stand_in(tmp_path):
    def write(doc: dict | None, code: int = 12, stderr: str = ""):
        path = tmp_path / "dumpjob"
        out = json.dumps(doc).replace("'", "'\\''") if doc is not None else ""
        path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{out}'\necho '{stderr}' >&2\nexit {code}\n")
        path.chmod(0o755)
        return str(path)
    return write


def test_the_module_returns_findings_others_and_the_passing_host_checks_in_check_mode_too(stand_in):
    program_path = stand_in(report(secret_ok=False, database_ok=False))
    for check in (True, False):
        result = run_module(dumpjob_doctor_info.main, {"run_as": "", "dumpjob_bin": program_path,
                                                       "gate_checks": GATE, "expected_role": ROLE}, check=check)
        assert result["changed"] is False and result["ok"] is False
        assert result["findings"] == ["basis: secret: reading secret 'rds/basis' failed: AccessDenied",
                                      "basis: bucket:dumps/: cannot write s3://b/dumps/"]
        assert result["other_findings"] == ["basis: database: cannot connect to db:3306"]
        assert result["passed"] == {"instance_role": "instance role 'jram-dumphost' (IMDSv2)",
                                    "aws_identity": "arn:aws:sts::1:assumed-role/jram-dumphost/i-1"}


def test_a_program_that_did_not_report_is_the_one_finding(stand_in, tmp_path):
    refused = run_module(dumpjob_doctor_info.main, {"run_as": "", "dumpjob_bin": stand_in(
        {"ok": False, "error": "job file /etc/dumpjob/jobs.yml: job 'basis' has no bucket"}, code=2),
        "gate_checks": GATE})
    assert refused["findings"] == ["dumpjob doctor did not report (exit 2): job file /etc/dumpjob/jobs.yml: job "
                                   "'basis' has no bucket"]
    assert refused["other_findings"] == [] and refused["passed"] == {}
    missing = run_module(dumpjob_doctor_info.main, {"run_as": "", "dumpjob_bin": str(tmp_path / "none")})
    assert missing["installed"] is False and missing["findings"] == [f"dumpjob is not installed at {tmp_path}/none yet"]


def test_an_unknown_gate_check_is_refused_before_the_program_runs(stand_in, tmp_path):
    result = run_module(dumpjob_doctor_info.main, {"run_as": "", "dumpjob_bin": stand_in(report()),
                                                   "gate_checks": ["instance_role", "buckets"]})
    assert result["failed"] is True
    assert "gate_checks" in result["msg"] and "buckets" in result["msg"] and "\n" not in result["msg"]
