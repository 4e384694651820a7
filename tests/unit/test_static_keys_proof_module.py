"""static_keys_proof's main(), driven as Ansible drives it, as root running the programs as user
nobody through runuser with cron's environment: stand-ins for the AWS CLI and for the dump
program's Python answer as the real ones do (the real ones need the instance role, which the
sandbox's podman host has: tests/integration/test_static_keys.py). Shown here: both identities on
the role and every write done is a success with the CLI's identity returned; another identity, a
failed write, a missing report or a boto3 error each give one finding and fail the task; the
programs run as the user with only cron's environment; check mode runs nothing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import static_keys_proof as proof
from ansible_collections.jram.dumphost.plugins.modules import static_keys_proof
from sandboxtest import run_module

ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/jram-dumphost/i-0123456789abcdef0"
USER_ARN = "arn:aws:iam::123456789012:user/legacy-dump"

AWS = """#!/bin/sh
echo "$(id -un) $HOME $PATH $(env | grep -c AWS_)" >> "$0.log"
if [ "$1" = sts ]; then
  [ -n "$FAKE_NO_IDENTITY" ] && { echo "Unable to locate credentials" >&2; exit 255; }
  printf '{\\n  "UserId": "AROA:i-0",\\n  "Account": "123456789012",\\n  "Arn": "%s"\\n}\\n' "$(cat "$0.arn")"
  exit 0
fi
cat > /dev/null
case "$5" in *denied*) echo "upload failed: An error occurred (AccessDenied)" >&2; exit 1;; esac
exit 0
"""
PYTHON = """#!/bin/sh
cat "$0.answer"
"""


@pytest.fixture
def bin_dir():
    where = Path(tempfile.mkdtemp(prefix="jram-proof-"))
    # user nobody runs the stand-ins and logs how it ran them
    os.chmod(where, 0o755)  # noqa: S103
    for name, text in (("aws", AWS), ("python", PYTHON)):
        (where / name).write_text(text)
        os.chmod(where / name, 0o755)  # noqa: S103
    (where / "aws.log").touch()
    os.chmod(where / "aws.log", 0o666)  # noqa: S103
    yield where
    shutil.rmtree(where)


def prove(bin_dir, cli_arn=ROLE_ARN, boto3=None, check=False, cli_probes=("s3://dumps/basis_.probe-cli",)):
    (bin_dir / "aws.arn").write_text(cli_arn)
    answer = boto3 if boto3 is not None else json.dumps({"arn": ROLE_ARN, "method": "iam-role",
                                                          "written": ["s3://dumps/basis_.probe-boto3"], "errors": []})
    (bin_dir / "python.answer").write_text(answer + "\n")
    for name in ("aws.arn", "python.answer"):
        os.chmod(bin_dir / name, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    args = {"user": "nobody", "expected_role": "jram-dumphost", "cli_probes": list(cli_probes),
            "boto3_probes": ["s3://dumps/basis_.probe-boto3"], "aws_cli": "aws",
            "boto3_python": str(bin_dir / "python"), "path": f"{bin_dir}:/usr/bin:/bin"}
    return run_module(static_keys_proof.main, args, check=check, diff=False)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="runs programs as nobody")


@needs_root
def test_both_identities_on_the_role_and_every_write_done_is_proof(bin_dir, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAZ7QXPNOTPASSEDON1")
    result = prove(bin_dir)
    assert result.get("failed") is not True, result
    assert (result["cli_arn"], result["boto3_arn"], result["boto3_method"], result["findings"]) == (
        ROLE_ARN, ROLE_ARN, "iam-role", [])
    runs = (bin_dir / "aws.log").read_text().splitlines()
    home = os.path.expanduser("~nobody")
    assert runs == [f"nobody {home} {bin_dir}:/usr/bin:/bin 0"] * 2, "not as the user with cron's environment"


@needs_root
@pytest.mark.parametrize("cli_arn, boto3, probes, finding", [
    (USER_ARN, None, (), f"AWS CLI: identity {USER_ARN}, expected role jram-dumphost"),
    (ROLE_ARN, None, ("s3://dumps/denied/.probe-cli",),
     "AWS CLI cannot write s3://dumps/denied/.probe-cli: upload failed: An error occurred (AccessDenied)"),
    (ROLE_ARN, "Traceback: no module named boto3", (), "boto3: no report (exit 0): "),
    (ROLE_ARN, json.dumps({"arn": USER_ARN, "errors": []}), (), f"boto3: identity {USER_ARN}, expected role"),
    (ROLE_ARN, json.dumps({"arn": ROLE_ARN, "errors": ["s3://dumps/x: AccessDenied"]}), (),
     "boto3: s3://dumps/x: AccessDenied"),
])
def test_each_way_the_proof_fails_is_one_finding(bin_dir, cli_arn, boto3, probes, finding):
    result = prove(bin_dir, cli_arn=cli_arn, boto3=boto3, cli_probes=probes)
    assert result["failed"] is True and len(result["findings"]) == 1, result
    assert result["findings"][0].startswith(finding) and result["msg"] == result["findings"][0]


def test_no_identity_at_all_names_the_cli_error():
    found = proof.findings("jram-dumphost", {"rc": 255, "stdout": "", "stderr": "\nUnable to locate credentials\n"},
                           [], {"rc": 0, "stdout": json.dumps({"arn": ROLE_ARN, "errors": []}), "stderr": ""})
    assert found == ["AWS CLI: identity none (Unable to locate credentials), expected role jram-dumphost"]


def test_a_role_of_a_similar_name_is_not_the_role():
    arn = "arn:aws:sts::123456789012:assumed-role/jram-dumphost-old/i-0"
    found = proof.findings("jram-dumphost", {"rc": 0, "stdout": json.dumps({"Arn": arn}), "stderr": ""}, [],
                           {"rc": 0, "stdout": json.dumps({"arn": arn, "errors": []}), "stderr": ""})
    assert len(found) == 2


def test_check_mode_runs_nothing(bin_dir):
    result = prove(bin_dir, cli_arn=USER_ARN, check=True)
    assert result["changed"] is False and result["skipped"] is True and result["findings"] == []
    assert (bin_dir / "aws.log").read_text() == ""


def test_a_probe_that_is_not_an_s3_url_is_refused(bin_dir):
    result = prove(bin_dir, cli_probes=("dumps/basis",))
    assert result["failed"] and "probe 'dumps/basis' is not an s3://bucket/key URL" in result["msg"]
    assert (bin_dir / "aws.log").read_text() == ""
