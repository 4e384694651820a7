"""Phase 3 against moto and a dump host container of this module's own: playbooks/phase3_attach_role.yml
(live and maintenance), its automatic restore when the verification fails, and the phase 3 branch
of playbooks/rollback.yml.

The module brings its own EC2 instance record in moto and its own copy of the sandbox's IMDS
emulator (sandbox/imds.py) following that instance, and points its host at it (phase 2 with
imds_endpoint_url). So the sandbox's shared instance is never touched, and other sessions that
associate profiles with it cannot disturb these tests. Phase 1 runs with names of this run's
own (role, profile, secret, bucket, alarm and rule prefixes); the teardown removes all of it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TAG_PREFIX = "jram-dumphost:phase3:"
ATTACH = "phase3_attach_role.yml"
ROLLBACK = "rollback.yml"


@dataclass
class Run:
    rc: int
    out: str
    started: float
    ended: float

    @property
    def changed(self) -> int:
        recaps = RECAP.findall(self.out)
        assert recaps, f"no PLAY RECAP in the output:\n{self.out[-3000:]}"
        return sum(int(r[1]) for r in recaps)

    @property
    def changed_tasks(self) -> list[str]:
        return re.findall(r"^changed: .*$", self.out, re.M)

    def one_line(self) -> str:
        return " ".join(self.out.split())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Phase3:
    """This module's moto resources, IMDS emulator and host, and ways to look at them."""

    def __init__(self, sandbox, host, aws_env: dict, workdir: Path):
        self.sandbox, self.host, self.workdir = sandbox, host, workdir
        self.tag = uuid.uuid4().hex[:8]
        self.name = f"p3t-{self.tag}"                     # role, profile, bucket, alarm/rule prefix
        self.secret = f"{self.name}/basis-reader"
        self.ec2, self.iam = sandbox.client("ec2"), sandbox.client("iam")
        self.sm, self.s3 = sandbox.client("secretsmanager"), sandbox.client("s3")
        self.env = {**aws_env, "SANDBOX_HOST": host.host, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                    "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
                    "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.env.pop("SANDBOX_DB_PASSWORD", None)
        self.instance_id = ""
        self.imds_port = _free_port()
        self.imds_url = f"http://127.0.0.1:{self.imds_port}"
        self._imds: subprocess.Popen | None = None
        self.extra = {
            "aws_identity_role_name": self.name, "aws_identity_instance_profile_name": self.name,
            "dumpjob_db_secret_id": self.secret, "aws_identity_alarm_prefix": self.name,
            "aws_identity_lifecycle_rule_prefix": self.name, "dump_bucket": self.name,
            "aws_identity_secret_recovery_window": 0, "imds_endpoint_url": self.imds_url,
            # moto associates at once: no need to wait for propagation as on AWS
            "instance_role_verify_retries": 1, "instance_role_verify_delay": 1,
        }

    # -- setup and teardown ----------------------------------------------------------------
    def create(self) -> None:
        self.s3.create_bucket(Bucket=self.name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
        image = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        # like the sandbox's own instance record: IMDSv1 allowed, hop limit 2, no profile
        self.instance_id = self.ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
            MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": self.name}]}],
        )["Instances"][0]["InstanceId"]
        state = self.workdir / "imds-state.json"
        state.write_text(json.dumps({"instance_id": self.instance_id, "imds_key": self.sandbox.state.get("imds_key")}))
        state.chmod(0o600)
        log = (self.workdir / "imds.log").open("w")
        self._imds = subprocess.Popen(
            [sys.executable, "-m", "sandbox.imds", "--port", str(self.imds_port),
             "--moto-url", self.env["AWS_ENDPOINT_URL"], "--state", str(state)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.imds_port), timeout=1):
                break
            assert time.time() < deadline and self._imds.poll() is None, "the IMDS emulator did not start"
            time.sleep(0.2)
        # phase 2 (the host) does not depend on phase 1 (AWS): run them side by side
        runs: dict[str, Run] = {}
        threads = [threading.Thread(target=lambda p=p: runs.__setitem__(p, self.play(p)))
                   for p in ("phase1_infra.yml", "phase2_parallel.yml")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for playbook, run in runs.items():
            assert run.rc == 0, f"{playbook} failed:\n{run.out[-6000:]}"

    def destroy(self) -> list[str]:
        """Remove everything this module created; returns what could not be removed."""
        problems = []
        if self.instance_id:
            with contextlib.suppress(ClientError):
                self.set_state(None, "optional", 2)
            try:
                self.ec2.terminate_instances(InstanceIds=[self.instance_id])
            except ClientError as exc:
                problems.append(f"instance {self.instance_id}: {exc}")
        if self._imds and self._imds.poll() is None:
            os.killpg(self._imds.pid, signal.SIGTERM)
            self._imds.wait(timeout=10)
        self.remove_other_profile()
        with contextlib.suppress(ClientError):
            self.sm.restore_secret(SecretId=self.secret)
        run = self.play(ROLLBACK, "-e", "phase=1")
        if run.rc != 0:
            problems.append(f"phase 1 rollback failed:\n{run.out[-3000:]}")
        with contextlib.suppress(ClientError):
            for obj in self.s3.list_objects_v2(Bucket=self.name).get("Contents", []):
                self.s3.delete_object(Bucket=self.name, Key=obj["Key"])
            self.s3.delete_bucket(Bucket=self.name)
        return problems

    # -- running playbooks -------------------------------------------------------------------
    def play(self, playbook: str, *args: str, extra: dict | None = None, env: dict | None = None) -> Run:
        path = self.workdir / f"vars-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps({**self.extra, **(extra or {})}))
        started = time.time()
        proc = subprocess.run([str(BIN / "ansible-playbook"), f"playbooks/{playbook}", "-e", f"@{path}", *args],
                              cwd=REPO, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=900)
        return Run(proc.returncode, proc.stdout + proc.stderr, started, time.time())

    # -- what moto and the host say ------------------------------------------------------------
    def instance(self) -> dict:
        return self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]

    def association(self) -> str | None:
        found = self.ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [self.instance_id]}])["IamInstanceProfileAssociations"]
        arns = [a["IamInstanceProfile"]["Arn"] for a in found if a.get("State", "associated") == "associated"]
        assert len(arns) <= 1, arns
        return arns[0] if arns else None

    def options(self) -> tuple[str, int]:
        options = self.instance()["MetadataOptions"]
        return options["HttpTokens"], options["HttpPutResponseHopLimit"]

    def tags(self) -> dict:
        return {t["Key"]: t["Value"] for t in self.instance().get("Tags", [])}

    def record(self) -> dict:
        return {k: v for k, v in self.tags().items() if k.startswith(TAG_PREFIX)}

    def profile_arn(self, name: str | None = None) -> str:
        return self.iam.get_instance_profile(InstanceProfileName=name or self.name)["InstanceProfile"]["Arn"]

    def set_state(self, profile_arn: str | None, http_tokens: str, hop_limit: int) -> None:
        """Put the instance into a given starting state directly, and drop any phase 3 record."""
        for a in self.ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [self.instance_id]}])["IamInstanceProfileAssociations"]:
            self.ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
        if profile_arn:
            self.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile_arn},
                                                    InstanceId=self.instance_id)
        self.ec2.modify_instance_metadata_options(InstanceId=self.instance_id, HttpTokens=http_tokens,
                                                  HttpPutResponseHopLimit=hop_limit)
        record = list(self.record())
        if record:
            self.ec2.delete_tags(Resources=[self.instance_id], Tags=[{"Key": k} for k in record])

    def other_profile(self) -> str:
        """A second profile with a role of its own: what some other team attached before phase 3."""
        name = f"{self.name}-other"
        with contextlib.suppress(self.iam.exceptions.EntityAlreadyExistsException):
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                             "Principal": {"Service": "ec2.amazonaws.com"}}]}
            self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
            self.iam.create_instance_profile(InstanceProfileName=name)
            self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        return self.profile_arn(name)

    def remove_other_profile(self) -> None:
        name = f"{self.name}-other"
        for call in (lambda: self.iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name),
                     lambda: self.iam.delete_instance_profile(InstanceProfileName=name),
                     lambda: self.iam.delete_role(RoleName=name)):
            with contextlib.suppress(ClientError):
                call()

    def doctor(self) -> tuple[int, dict]:
        """dumpjob doctor --json on the host, as user dumpjob, the way cron runs it."""
        proc = self.host.exec("runuser", "-u", "dumpjob", "--", "/usr/bin/env", "-i", "HOME=/var/lib/dumpjob",
                              "PATH=/usr/bin:/bin", "/usr/local/bin/dumpjob", "doctor", "--json", check=False)
        return proc.returncode, json.loads(proc.stdout)

    def imds_status(self, token: bool) -> int:
        """HTTP status of a metadata request from the host, with or without an IMDSv2 token."""
        script = (f"t=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
                  f"{self.imds_url}/latest/api/token); curl -s -o /dev/null -w '%{{http_code}}' "
                  + ("-H \"X-aws-ec2-metadata-token: $t\" " if token else "")
                  + f"{self.imds_url}/latest/meta-data/instance-id")
        return int(self.host.exec("sh", "-c", script).stdout.strip())


def _checks(report: dict) -> dict[str, dict]:
    """Every doctor check by name (host checks as is, job checks as JOB/NAME)."""
    found = {c["name"]: c for c in report["checks"]}
    for job in report["jobs"]:
        found.update({f"{job['job']}/{c['name']}": c for c in job["checks"]})
    return found


@pytest.fixture(scope="module")
def p3(sandbox, fresh_host, aws_env, tmp_path_factory):
    env = Phase3(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp("phase3"))
    try:
        env.create()
        yield env
    finally:
        problems = env.destroy()
        assert not problems, problems


# --- in the order of the operator's journey; each test sets the starting state it needs -----

def test_doctor_without_a_profile_says_the_instance_has_no_role(p3):
    p3.set_state(None, "optional", 2)
    rc, report = p3.doctor()
    assert rc == 12 and report["ok"] is False
    role = _checks(report)["instance_role"]
    assert role["ok"] is False
    assert "the instance has no IAM role (IMDS answered 404" in role["reason"]


@pytest.mark.parametrize("extra, message", [
    ({"instance_role_attach_mode": "reboot"}, "instance_role_attach_mode"),
    ({"instance_role_profile_name": "p3t-no-such-profile"},
     "instance profile p3t-no-such-profile does not exist: run phase 1 (playbooks/phase1_infra.yml) or fix "
     "instance_role_profile_name"),
])
def test_bad_input_is_refused_before_any_change(p3, extra, message):
    p3.set_state(None, "optional", 2)
    run = p3.play(ATTACH, extra=extra)
    assert run.rc != 0, run.out[-3000:]
    assert message in run.one_line(), run.out[-3000:]
    assert not run.changed_tasks, run.changed_tasks
    assert (p3.association(), p3.options(), p3.record()) == (None, ("optional", 2), {})


def test_live_attach_check_apply_idempotent(p3):
    p3.set_state(None, "optional", 2)
    check = p3.play(ATTACH, "--check", "--diff")
    assert check.rc == 0, check.out[-4000:]
    assert check.changed == 3, check.changed_tasks  # record, association, metadata options
    assert f"instance profile none -> {p3.profile_arn()}" in check.one_line()
    assert "http_tokens optional -> required, hop limit 2 -> 1" in check.one_line()
    assert (p3.association(), p3.options(), p3.record()) == (None, ("optional", 2), {}), "check mode changed moto"

    run = p3.play(ATTACH, "--diff")
    assert run.rc == 0, run.out[-6000:]
    assert p3.association() == p3.profile_arn()
    assert p3.options() == ("required", 1)
    assert p3.instance()["State"]["Name"] == "running"
    # (the YAML callback doubles the quotes inside its single-quoted strings)
    assert re.search(rf"verified from jram-dumphost as dumpjob: instance role '+{p3.name}'+ \(IMDSv2\)", run.one_line())
    record = p3.record()
    assert record[f"{TAG_PREFIX}previous-profile"] == "none"
    assert (record[f"{TAG_PREFIX}previous-http-tokens"], record[f"{TAG_PREFIX}previous-hop-limit"]) == ("optional", "2")
    assert record[f"{TAG_PREFIX}attach-mode"] == "live"

    # from the host: the program gets the expected role's credentials, and IMDSv1 is refused
    rc, report = p3.doctor()
    checks = _checks(report)
    assert checks["instance_role"]["reason"] == f"instance role '{p3.name}' (IMDSv2)"
    assert f":assumed-role/{p3.name}/" in checks["aws_identity"]["reason"]
    assert "(credentials from the instance role)" in checks["aws_identity"]["reason"]
    assert all(checks[f"{job}/secret"]["ok"] for job in ("basis", "contract_status", "schema_weekly"))
    assert all(c["ok"] for name, c in checks.items() if "/bucket:" in name)
    assert rc == 0, report
    assert p3.imds_status(token=False) == 401
    assert p3.imds_status(token=True) == 200

    again = p3.play(ATTACH)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    assert p3.record() == record  # what was there before phase 3 stays recorded
    converged = p3.play(ATTACH, "--check", "--diff")
    assert converged.rc == 0 and converged.changed == 0, converged.changed_tasks


def test_rollback_restores_no_profile_and_the_old_options(p3):
    """From where the live attach left the instance (rerun it when this test runs alone)."""
    if p3.association() != p3.profile_arn():
        p3.set_state(None, "optional", 2)
        assert p3.play(ATTACH).rc == 0
    check = p3.play(ROLLBACK, "-e", "phase=3", "--check", "--diff")
    assert check.rc == 0 and check.changed == 2, check.out[-4000:]  # association and options, record
    assert (p3.association(), p3.options()) == (p3.profile_arn(), ("required", 1)), "check mode changed moto"

    run = p3.play(ROLLBACK, "-e", "phase=3", "--diff")
    assert run.rc == 0, run.out[-6000:]
    assert (p3.association(), p3.options(), p3.record()) == (None, ("optional", 2), {})
    assert p3.tags()["Name"] == p3.name  # tags other than the record are left alone
    rc, report = p3.doctor()
    assert rc == 12 and "has no IAM role" in _checks(report)["instance_role"]["reason"]
    assert p3.imds_status(token=False) == 200

    again = p3.play(ROLLBACK, "-e", "phase=3")
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    assert "carries no phase 3 record" in again.one_line()


def test_attach_refuses_to_replace_another_profile_unless_told(p3):
    other = p3.other_profile()
    p3.set_state(other, "optional", 2)
    run = p3.play(ATTACH)
    assert run.rc != 0
    assert f"has instance profile {other} associated" in run.one_line()
    assert "set instance_role_replace=true to replace it" in run.one_line()
    assert not run.changed_tasks
    assert (p3.association(), p3.options(), p3.record()) == (other, ("optional", 2), {})


class Watcher:
    """Follows the instance in moto while a play runs, and does to the host what EC2 would: the
    host is frozen (podman pause) from the moment moto says `stopped` until BOOT seconds after it
    says `running` again, like a machine that is off and then boots."""

    BOOT = 6.0

    def __init__(self, p3):
        self.p3, self.states, self.stop_flag = p3, [], threading.Event()
        self.paused_at = self.resumed_at = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _podman(self, verb: str) -> None:
        subprocess.run(["podman", verb, self.p3.host.host], check=True, capture_output=True)

    def _run(self) -> None:
        running_again = None
        while not self.stop_flag.is_set():
            state = self.p3.instance()["State"]["Name"]
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            if state == "stopped" and self.paused_at is None:
                self._podman("pause")
                self.paused_at = time.time()
            if state == "running" and self.paused_at and running_again is None:
                running_again = time.time()
            if running_again and self.resumed_at is None and time.time() - running_again >= self.BOOT:
                self._podman("unpause")
                self.resumed_at = time.time()
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=10)
        if self.paused_at and self.resumed_at is None:
            self._podman("unpause")


def test_maintenance_mode_stops_replaces_starts_waits_and_rolls_back(p3):
    other = p3.other_profile()
    p3.set_state(other, "optional", 2)
    with Watcher(p3) as watch:
        run = p3.play(ATTACH, extra={"instance_role_attach_mode": "maintenance", "instance_role_replace": True,
                                     "instance_role_connection_timeout": 120},
                      env={"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})
    assert run.rc == 0, run.out[-6000:]
    assert watch.states == ["running", "stopped", "running"], watch.states
    assert re.search(r"TASK \[jram.dumphost.instance_role : Stop the instance \(maintenance mode\)\][^\n]*\n"
                     r"(?:[^\n]*\n)?changed:", run.out), run.out[-6000:]
    # the play waited for the host to "boot" before it verified from it
    waited = re.search(r"Wait for the host to answer again \(maintenance mode\) -+ ([\d.]+)s", run.out)
    assert waited and float(waited.group(1)) >= Watcher.BOOT - 1, run.out[-3000:]
    assert watch.resumed_at and run.ended > watch.resumed_at
    assert (p3.association(), p3.options()) == (p3.profile_arn(), ("required", 1))
    assert p3.instance()["State"]["Name"] == "running"
    record = p3.record()
    assert (record[f"{TAG_PREFIX}previous-profile"], record[f"{TAG_PREFIX}attach-mode"]) == (other, "maintenance")

    # the rollback puts the other profile back, live (no stop)
    back = p3.play(ROLLBACK, "-e", "phase=3")
    assert back.rc == 0, back.out[-6000:]
    assert (p3.association(), p3.options(), p3.record()) == (other, ("optional", 2), {})
    assert p3.instance()["State"]["Name"] == "running"


def test_failed_verification_restores_the_previous_association_and_options(p3):
    """The role cannot read the jobs' secret (deleted after phase 1 here; on AWS a wrong resource
    in the policy has the same effect). The attach, replacing another profile, must put that
    profile and the old options back, drop its record, and say why."""
    other = p3.other_profile()
    p3.set_state(other, "optional", 2)
    p3.sm.delete_secret(SecretId=p3.secret, RecoveryWindowInDays=7)
    try:
        run = p3.play(ATTACH, extra={"instance_role_replace": True})
    finally:
        p3.sm.restore_secret(SecretId=p3.secret)
    assert run.rc != 0, run.out[-4000:]
    line = run.one_line()
    assert re.search(r"phase 3 failed on jram-dumphost, instance i-\w+: basis: secret: reading secret '"
                     + re.escape(p3.secret) + "' failed", line), run.out[-4000:]
    assert f"Put back: instance profile {other}, http_tokens optional, hop limit 2." in line
    # the attach did happen before the verification failed, and was undone
    assert re.search(r"TASK \[jram.dumphost.instance_role : Associate the instance profile\][^\n]*\nchanged:",
                     run.out), run.out[-6000:]
    assert (p3.association(), p3.options(), p3.record()) == (other, ("optional", 2), {})
    assert p3.tags()["Name"] == p3.name
    assert p3.imds_status(token=False) == 200
