"""Key retirement against moto and a dump host container of this module's own (phase3_host.Phase3:
phase 1 and phase 2 done, an EC2 instance record and IMDS emulator of its own):
playbooks/retire_static_keys.yml and the keys branch of playbooks/rollback.yml, in the order of the
operator's journey on one host.

ec2-user's static key here is a key of this module's own IAM user (the sandbox's legacy-dump key
is shared with other tests and must stay active); the legacy scripts write to this module's
bucket, and ec2-user's AWS CLI asks this module's IMDS emulator, as on an instance where
169.254.169.254 is the only metadata service."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError
from phase3_host import ATTACH, ROLLBACK, Phase3

from sandbox import config

RETIRE = "retire_static_keys.yml"
HOME = "/home/ec2-user"
CREDENTIALS = f"{HOME}/.aws/credentials"
CONFIG = f"{HOME}/.aws/config"
LEDGER = "/var/lib/dumpjob/static_keys.json"
ASIDE = "/var/lib/jram-static-keys"
LEGACY_SCRIPTS = {"ggh_datatransit.sh": "dumps/basis_", "ggh_contract_status.sh": "dumps/contract_status_",
                  "ggh_schema_snapshot.sh": "dumps/schema/basis_schema_"}
JOBS = ("basis", "contract_status", "schema_weekly")


def _utc(days: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Keys:
    """The module's Phase3 environment plus ec2-user's own static key, and ways to look at both."""

    def __init__(self, p3: Phase3):
        self.p3, self.host, self.iam, self.sm = p3, p3.host, p3.iam, p3.sm
        self.iam_user = f"{p3.name}-legacy"
        self.key_id = self.secret = ""
        self.original = b""

    @property
    def escrow(self) -> str:
        return f"jram-dumphost/escrow/ec2-user/{self.key_id}"

    def create(self) -> None:
        self.iam.create_user(UserName=self.iam_user)
        key = self.iam.create_access_key(UserName=self.iam_user)["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        # ec2-user's credentials as the legacy host has them, with this module's key (on stdin)
        self.host.exec("bash", "-c", f"umask 077; cat > {CREDENTIALS}; chown ec2-user:ec2-user {CREDENTIALS}",
                       input=f"[default]\naws_access_key_id = {self.key_id}\naws_secret_access_key = {self.secret}\n")
        self.host.exec("sed", "-i", f"s|^ec2_metadata_service_endpoint = .*|ec2_metadata_service_endpoint = "
                       f"{self.p3.imds_url}|", CONFIG)
        self.host.exec("sed", "-i", f"s|^BUCKET=.*|BUCKET={self.p3.name}|",
                       *[f"{HOME}/scripts/{name}" for name in LEGACY_SCRIPTS])
        self.original = self.read(CREDENTIALS)

    def destroy(self) -> None:
        for call in (lambda: self.sm.delete_secret(SecretId=self.escrow, ForceDeleteWithoutRecovery=True),
                     lambda: self.iam.delete_access_key(UserName=self.iam_user, AccessKeyId=self.key_id),
                     lambda: self.iam.delete_user(UserName=self.iam_user)):
            with contextlib.suppress(ClientError):
                call()

    # -- what the host, IAM and Secrets Manager say ----------------------------------------------
    def read(self, path: str) -> bytes:
        return base64.b64decode(self.host.exec("base64", "-w0", path).stdout)

    def stat(self, path: str) -> str | None:
        proc = self.host.exec("stat", "-c", "%U:%G %a %s", path, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def key_status(self) -> str:
        keys = self.iam.list_access_keys(UserName=self.iam_user)["AccessKeyMetadata"]
        return next((k["Status"] for k in keys if k["AccessKeyId"] == self.key_id), "absent")

    def escrow_value(self) -> dict | None:
        try:
            return json.loads(self.sm.get_secret_value(SecretId=self.escrow)["SecretString"])
        except ClientError:
            return None

    def ledger(self) -> dict | None:
        proc = self.host.exec("cat", LEDGER, check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def probes(self) -> list[str]:
        listed = self.p3.s3.list_objects_v2(Bucket=self.p3.name).get("Contents", [])
        return [o["Key"] for o in listed if "jram-static-keys-probe" in o["Key"]]

    def host_state(self) -> tuple:
        """Everything key retirement may change, in one comparable value."""
        creds = self.stat(CREDENTIALS)
        return (creds, hashlib.sha256(self.read(CREDENTIALS)).hexdigest() if creds else None,
                self.stat(CONFIG), self.key_status(), self.escrow_value() is not None, self.ledger(),
                self.host.exec("ls", "-A", ASIDE, check=False).stdout)


@pytest.fixture(scope="module")
def keys(sandbox, fresh_host, aws_env, tmp_path_factory):
    p3 = Phase3(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp("static-keys"))
    env = Keys(p3)
    try:
        p3.create()
        env.create()
        yield env
    finally:
        env.destroy()
        problems = p3.destroy()
        assert not problems, problems


def _why(run) -> str:
    """The failed task's report (a -vvv run's tail is mostly connection chatter)."""
    at = [m.start() for m in re.finditer(r"^(fatal|failed): ", run.out, re.M)]
    return run.out[max(at[-1] - 2000, 0):at[-1] + 6000] if at else run.out[-6000:]


def _no_secret(run, env: Keys) -> None:
    leaked = [name for name, value in (("secret access key", env.secret), ("DB password", config.LEGACY_DB_PASSWORD))
              if value in run.out]
    assert not leaked, f"{leaked} in the playbook output"


# --- in the order of the operator's journey -------------------------------------------------

def test_refused_before_phase_3(keys):
    before = keys.host_state()
    run = keys.p3.play(RETIRE)
    assert run.rc != 0, run.out[-4000:]
    assert re.search(r"instance i-\w+ carries no phase 3 record \(tags jram-dumphost:phase3:\*\): the keys can go only "
                     r"once the instance role serves the host; run playbooks/phase3_attach_role.yml first",
                     run.one_line()), run.out[-4000:]
    assert not run.changed_tasks, run.changed_tasks
    assert keys.host_state() == before
    assert keys.key_status() == "Active"

    attach = keys.p3.play(ATTACH)
    assert attach.rc == 0, attach.out[-6000:]


def test_check_mode_predicts_and_changes_nothing(keys):
    before = keys.host_state()
    run = keys.p3.play(RETIRE, "--check", "--diff")
    assert run.rc == 0, run.out[-6000:]
    line = run.one_line()
    assert "ec2-user: would prove the instance role, escrow, remove and deactivate the key" in line
    assert f"escrow: Secrets Manager {keys.escrow}" in line
    assert f"of IAM user(s) {keys.iam_user} (Active)" in line
    assert f"s3://{keys.p3.name}/dumps/basis_" in line
    # move aside, escrow, deactivate, ledger
    assert run.changed == 4, run.changed_tasks
    # --diff lists the key files that would move (names only: no key material)
    assert "--- before: key files of ec2-user" in run.out, run.out[-6000:]
    assert re.search(r"^-/home/ec2-user/\.aws/credentials \(key material\)$", run.out, re.M), run.out[-6000:]
    assert keys.host_state() == before, "check mode changed something"
    _no_secret(run, keys)


def test_retire_removes_escrows_deactivates_and_every_job_still_runs(keys):
    started = datetime.now(timezone.utc)
    config_before = keys.read(CONFIG)
    run = keys.p3.play(RETIRE, "-vvv")
    assert run.rc == 0, _why(run)
    _no_secret(run, keys)
    line = run.one_line()
    assert re.search(rf"the instance role serves ec2-user without its static key: AWS CLI and boto3 as "
                     rf"arn:aws:sts::\d+:assumed-role/{keys.p3.name}/", line), run.out[-6000:]
    assert re.search(r"file\(s\) scanned: no AWS key material; reported, not failed on \(password_assignment, "
                     r"retired by phase 4\)", line), run.out[-4000:]

    # the host holds no key; the config keeps its endpoint settings; nothing left aside
    assert keys.stat(CREDENTIALS) is None
    assert keys.read(CONFIG) == config_before
    assert keys.host.exec("ls", "-A", ASIDE).stdout == ""
    assert keys.stat(ASIDE).startswith("root:root 700 ")
    grep = keys.host.exec("grep", "-rlF", keys.secret, HOME, "/root", "/var/lib", "/etc", "/tmp", "/var/tmp",
                          check=False)
    assert grep.stdout == "", f"the secret key is still on the host: {grep.stdout}"
    # IAM and the escrow
    assert keys.key_status() == "Inactive"
    escrow = keys.escrow_value()
    assert escrow["user"] == "ec2-user" and escrow["key_ids"] == [keys.key_id]
    (entry,) = escrow["files"]
    assert (entry["path"], entry["owner"], entry["mode"]) == (CREDENTIALS, "ec2-user", "0600")
    assert base64.b64decode(entry["content_base64"]) == keys.original
    assert keys.probes() == []
    # the ledger
    assert keys.stat(LEDGER).startswith("root:root 600 ")
    ledger = keys.ledger()
    user = ledger["users"]["ec2-user"]
    assert (user["state"], user["key_ids"], user["escrow_secret"]) == ("retired", [keys.key_id], keys.escrow)
    assert user["iam_users"] == {keys.key_id: keys.iam_user} and user["grace_days"] == 14
    assert user["proven_prefixes"] == sorted(f"s3://{keys.p3.name}/{p}" for p in LEGACY_SCRIPTS.values())
    assert user["retired_by"] and user["retired_at"] >= started.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [e["action"] for e in ledger["events"]] == ["retired"]
    assert keys.secret not in json.dumps(ledger)

    # every legacy job still runs, now with the instance role's credentials, and so do the new
    # entries (dumpjob run JOB --parallel, as phase 2's cron entries run them)
    for script, prefix in LEGACY_SCRIPTS.items():
        proc = keys.host.exec("env", "-i", f"HOME={HOME}", "PATH=/usr/bin:/bin", "SHELL=/bin/bash", "LOGNAME=ec2-user",
                              "bash", "-c", f"{HOME}/scripts/{script}", user="ec2-user", check=False)
        assert proc.returncode == 0 and "error" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
        listed = keys.p3.s3.list_objects_v2(Bucket=keys.p3.name, Prefix=prefix).get("Contents", [])
        assert any(o["LastModified"] >= started.replace(microsecond=0) and o["Size"] > 0 for o in listed), (
            script, listed, proc.stdout + proc.stderr)
    for job in JOBS:
        proc = keys.host.exec("runuser", "-u", "dumpjob", "--", "/usr/bin/env", "-i", "HOME=/var/lib/dumpjob",
                              "PATH=/usr/bin:/bin", "/usr/local/bin/dumpjob", "run", job, "--parallel", check=False)
        assert proc.returncode == 0, (job, proc.stdout[-2000:], proc.stderr[-2000:])


def test_second_run_within_the_grace_period_changes_nothing(keys):
    before = keys.host_state()
    run = keys.p3.play(RETIRE, extra={"static_keys_now": _utc(days=13)})
    assert run.rc == 0 and run.changed == 0, run.changed_tasks or run.out[-4000:]
    assert "ec2-user: key(s) " + keys.key_id + " inactive since" in run.one_line()
    assert keys.host_state() == before


def test_rollback_restores_the_file_byte_identical_and_reactivates(keys):
    run = keys.p3.play(ROLLBACK, "-e", "phase=keys")
    assert run.rc == 0, run.out[-6000:]
    _no_secret(run, keys)
    assert keys.read(CREDENTIALS) == keys.original
    assert keys.stat(CREDENTIALS) == f"ec2-user:ec2-user 600 {len(keys.original)}"
    assert keys.key_status() == "Active"
    assert keys.escrow_value() is None
    user = keys.ledger()["users"]["ec2-user"]
    assert user["state"] == "rolled_back" and user["rolled_back_at"]
    # the legacy CLI works with the static key again
    proc = keys.host.exec("env", "-i", f"HOME={HOME}", "PATH=/usr/local/bin:/usr/bin:/bin", "aws", "sts",
                          "get-caller-identity", user="ec2-user")
    assert f":user/{keys.iam_user}" in proc.stdout

    again = keys.p3.play(ROLLBACK, "-e", "phase=keys")
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    assert "records no retired key in its grace period" in again.one_line()


def test_after_the_grace_period_the_key_and_escrow_are_deleted_and_rollback_is_refused(keys):
    retire = keys.p3.play(RETIRE)
    assert retire.rc == 0, retire.out[-6000:]
    assert keys.key_status() == "Inactive" and keys.escrow_value() is not None

    later = keys.p3.play(RETIRE, extra={"static_keys_now": _utc(days=15)})
    assert later.rc == 0, later.out[-6000:]
    assert "grace period over, will delete the IAM access key and its escrow" in later.one_line()
    assert keys.key_status() == "absent"
    assert keys.escrow_value() is None
    ledger = keys.ledger()
    assert ledger["users"]["ec2-user"]["state"] == "deleted"
    assert [e["action"] for e in ledger["events"]] == ["retired", "rolled_back", "retired", "deleted"]
    with pytest.raises(ClientError, match="ResourceNotFound"):
        keys.sm.describe_secret(SecretId=keys.escrow)

    refused = keys.p3.play(ROLLBACK, "-e", "phase=keys")
    assert refused.rc != 0
    assert (f"the static key(s) {keys.key_id} of ec2-user were deleted in IAM on" in refused.one_line()
            and "There is nothing to roll back to" in refused.one_line()), refused.out[-4000:]
    assert not refused.changed_tasks
    assert keys.stat(CREDENTIALS) is None
