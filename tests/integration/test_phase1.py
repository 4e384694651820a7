"""Phase 1 against moto: playbooks/phase1_infra.yml and the phase 1 branch of
playbooks/rollback.yml, driven through ansible-playbook with the sandbox inventory.

Every name (role, profile, secret, alarms, lifecycle rules, bucket, KMS alias) carries a
per-run suffix, so the tests share moto with others without collisions, and the teardown
removes whatever the run left."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError
from sandboxtest import PlayRun

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SANDBOX_VARS = yaml.safe_load((REPO / "inventories/sandbox/group_vars/all.yml").read_text())


@dataclass
class Names:
    """The names one phase 1 deployment uses, all with the same suffix."""

    tag: str
    role: str = ""
    secret: str = ""
    prefix: str = ""
    bucket: str = ""
    jobs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.role = self.role or f"p1t-{self.tag}"
        self.secret = self.secret or f"p1t-{self.tag}/basis-reader"
        self.prefix = self.prefix or f"p1t-{self.tag}"

    def extra_vars(self) -> dict:
        return {
            "aws_identity_role_name": self.role,
            "aws_identity_instance_profile_name": self.role,
            "dumpjob_db_secret_id": self.secret,
            "aws_identity_alarm_prefix": self.prefix,
            "aws_identity_lifecycle_rule_prefix": self.prefix,
            "dump_bucket": self.bucket,
        }


class Phase1:
    def __init__(self, sandbox, aws_env, workdir: Path):
        self.sandbox = sandbox
        self.env = {**aws_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
                    "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.env.pop("SANDBOX_DB_PASSWORD", None)
        self.workdir = workdir
        self.iam = sandbox.client("iam")
        self.sm = sandbox.client("secretsmanager")
        self.s3 = sandbox.client("s3")
        self.cw = sandbox.client("cloudwatch")
        self.kms = sandbox.client("kms")
        self.ec2 = sandbox.client("ec2")
        self.sns = sandbox.client("sns")

    def play(self, names: Names, *args: str, playbook: str = "phase1_infra.yml", extra: dict | None = None,
             env: dict | None = None) -> PlayRun:
        data = {**names.extra_vars(), **(extra or {})}
        if playbook == "rollback.yml":
            # These deployments have no dump host of their own: the shared host's ledgers (jobs a
            # demo left in production) are not theirs to be refused by.
            data.setdefault("cutover_ledger_path", f"{self.workdir}/no-host/cutover.json")
            data.setdefault("static_keys_ledger", f"{self.workdir}/no-host/static_keys.json")
        path = self.workdir / f"vars-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(data))
        proc = subprocess.run([str(BIN / "ansible-playbook"), f"playbooks/{playbook}", "-e", f"@{path}", *args],
                              cwd=REPO, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=900)
        return PlayRun(proc.returncode, proc.stdout + proc.stderr)

    # -- what exists in moto --------------------------------------------------------------
    def role(self, name: str) -> dict | None:
        try:
            return self.iam.get_role(RoleName=name)["Role"]
        except ClientError:
            return None

    def profile(self, name: str) -> dict | None:
        try:
            return self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        except ClientError:
            return None

    def policy(self, role: str, name: str = "dumpjob") -> dict | None:
        try:
            doc = self.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        except ClientError:
            return None
        return json.loads(doc) if isinstance(doc, str) else doc

    def secret(self, name: str) -> dict | None:
        try:
            return self.sm.describe_secret(SecretId=name)
        except ClientError:
            return None

    def alarms(self, prefix: str) -> list[dict]:
        return self.cw.describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]

    @property
    def account(self) -> str:
        return self.sandbox.client("sts").get_caller_identity()["Account"]

    def topic(self, name: str) -> str | None:
        """The ARN of the SNS topic of that name, if it exists."""
        arns = [t["TopicArn"] for page in self.sns.get_paginator("list_topics").paginate() for t in page["Topics"]]
        return next((arn for arn in arns if arn.rsplit(":", 1)[1] == name), None)

    def subscriptions(self, arn: str) -> list[tuple[str, str]]:
        found = self.sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        return sorted((s["Protocol"], s["Endpoint"]) for s in found)

    def versioning(self, bucket: str) -> str | None:
        return self.s3.get_bucket_versioning(Bucket=bucket).get("Status")

    def rules(self, bucket: str, prefix: str) -> list[dict]:
        try:
            rules = self.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError:
            return []
        return [r for r in rules if r.get("ID", "").startswith(f"{prefix}-")]

    def nothing_exists(self, names: Names) -> list[str]:
        found = []
        if self.role(names.role):
            found.append(f"role {names.role}")
        if self.profile(names.role):
            found.append(f"instance profile {names.role}")
        if self.secret(names.secret):
            found.append(f"secret {names.secret}")
        found += [f"alarm {a['AlarmName']}" for a in self.alarms(names.prefix)]
        if self.topic(f"{names.prefix}-alarms"):
            found.append(f"topic {names.prefix}-alarms")
        found += [f"lifecycle rule {r['ID']}" for r in self.rules(names.bucket, names.prefix)]
        return found

    # -- cleanup --------------------------------------------------------------------------
    def remove(self, names: Names) -> None:
        for call in (
            lambda: self.iam.remove_role_from_instance_profile(InstanceProfileName=names.role, RoleName=names.role),
            lambda: self.iam.delete_instance_profile(InstanceProfileName=names.role),
            lambda: self.iam.delete_role_policy(RoleName=names.role, PolicyName="dumpjob"),
            lambda: self.iam.delete_role(RoleName=names.role),
            lambda: self.sm.delete_secret(SecretId=names.secret, ForceDeleteWithoutRecovery=True),
        ):
            with contextlib.suppress(ClientError):
                call()
        alarms = [a["AlarmName"] for a in self.alarms(names.prefix)]
        if alarms:
            self.cw.delete_alarms(AlarmNames=alarms)
        topic = self.topic(f"{names.prefix}-alarms")
        if topic:
            self.sns.delete_topic(TopicArn=topic)


@pytest.fixture(scope="module")
def phase1(sandbox, aws_env, tmp_path_factory):
    return Phase1(sandbox, aws_env, tmp_path_factory.mktemp("phase1"))


@pytest.fixture(scope="module")
def bucket(phase1):
    """A bucket of this run's own: lifecycle rules and policy resources cannot touch others'."""
    name = f"p1t-{uuid.uuid4().hex[:8]}"
    phase1.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    yield name
    # versioned by the converging tests: every version and delete marker goes before the bucket
    listed = phase1.s3.list_object_versions(Bucket=name)
    for obj in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        phase1.s3.delete_object(Bucket=name, Key=obj["Key"], VersionId=obj["VersionId"])
    phase1.s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def kms_key(phase1, bucket):
    """An SSE-KMS key the jobs name by alias; the policy must name exactly its key ARN."""
    key = phase1.kms.create_key(Description=f"phase 1 test {bucket}")["KeyMetadata"]
    alias = f"alias/{bucket}"
    phase1.kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    yield {"alias": alias, "arn": key["Arn"]}
    phase1.kms.delete_alias(AliasName=alias)
    phase1.kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)


def jobs_with(names: Names, **defaults) -> dict:
    """The sandbox inventory's jobs, with extra keys in dumpjob_defaults."""
    return {"dumpjob_defaults": {**copy.deepcopy(SANDBOX_VARS["dumpjob_defaults"]), **defaults},
            "dumpjob_jobs": copy.deepcopy(SANDBOX_VARS["dumpjob_jobs"])}


@pytest.fixture(scope="module")
def deployed(phase1, bucket, kms_key):
    """The run's names, the extra vars every converging run uses, and a teardown."""
    names = Names(uuid.uuid4().hex[:8], bucket=bucket)
    extra = {**jobs_with(names, sse_kms_key_id=kms_key["alias"]),
             "aws_identity_bucket_versioning": True, "aws_identity_lifecycle_noncurrent_expiration_days": 21}
    yield names, extra
    phase1.remove(names)


# --- the converging sequence: check -> apply -> apply -> check ---------------------------
# Each later step deploys first when run on its own (pytest -k), so none depends on the order.

def _ensure_deployed(phase1, names, extra):
    if not phase1.role(names.role):
        run = phase1.play(names, extra=extra)
        assert run.rc == 0, run.out[-4000:]


def test_check_mode_reports_changes_and_creates_nothing(phase1, deployed):
    names, extra = deployed
    run = phase1.play(names, "--check", "--diff", extra=extra)
    assert run.rc == 0, run.out[-4000:]
    assert run.changed > 0
    assert "would attach inline policy" in run.out
    # the diff of bucket_lifecycle: versioning never enabled -> Enabled, and the rules it would put
    diff = run.out.split(f"+++ after: s3://{names.bucket} lifecycle", 1)[1].split("TASK [", 1)[0]
    assert "-    versioning: ''" in diff and "+    versioning: Enabled" in diff
    assert f"ID: {names.prefix}-expire-dumps-test" in diff
    assert phase1.nothing_exists(names) == []
    assert phase1.policy(names.role) is None
    assert phase1.versioning(names.bucket) is None


def test_apply_creates_role_policy_profile_secret_lifecycle_and_alarms(phase1, deployed, sandbox):
    names, extra = deployed
    run = phase1.play(names, extra=extra)
    assert run.rc == 0, run.out[-4000:]
    assert run.changed > 0

    role = phase1.role(names.role)
    assert role is not None
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]
    assert phase1.policy(names.role) is not None
    profile = phase1.profile(names.role)
    assert [r["RoleName"] for r in profile["Roles"]] == [names.role]

    value = json.loads(phase1.sm.get_secret_value(SecretId=names.secret)["SecretString"])
    assert value == {"engine": "mysql", "host": "127.0.0.1", "port": sandbox.settings.mariadb_port,
                     "username": "ggh_reader", "password": _sandbox_password(), "dbname": "basis"}

    rules = {r["ID"]: r for r in phase1.rules(names.bucket, names.prefix)}
    assert rules[f"{names.prefix}-expire-dumps-test"]["Filter"] == {"Prefix": "dumps-test/"}
    assert rules[f"{names.prefix}-expire-dumps-test"]["Expiration"] == {"Days": 14}
    assert rules[f"{names.prefix}-expire-dumps-test"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules[f"{names.prefix}-abort-mpu-dumps"]["Filter"] == {"Prefix": "dumps/"}
    assert rules[f"{names.prefix}-abort-mpu-dumps"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "Expiration" not in rules[f"{names.prefix}-abort-mpu-dumps"]
    assert len(rules) == 2
    # versioning on (the toggle), and replaced versions expire under every prefix the jobs write to
    assert phase1.versioning(names.bucket) == "Enabled"
    for rule in rules.values():
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 21}, rule

    # the alarm topic, with the inventory's subscription, and three alarms per job notifying it
    topic = phase1.topic(f"{names.prefix}-alarms")
    assert topic == f"arn:aws:sns:ap-northeast-1:{phase1.account}:{names.prefix}-alarms"
    assert phase1.subscriptions(topic) == [("email", "dba-oncall@example.invalid")]
    alarms = {a["AlarmName"]: a for a in phase1.alarms(names.prefix)}
    assert set(alarms) == {f"{names.prefix}-{job}-{kind}" for job in SANDBOX_VARS["dumpjob_jobs"]
                           for kind in ("deadline", "failed", "anomaly")}
    assert {name: a["AlarmActions"] for name, a in alarms.items()} == {name: [topic] for name in alarms}
    assert all(a["ActionsEnabled"] for a in alarms.values())
    for job in SANDBOX_VARS["dumpjob_jobs"]:
        failed, anomaly = alarms[f"{names.prefix}-{job}-failed"], alarms[f"{names.prefix}-{job}-anomaly"]
        # the metrics dumpjob publishes (src/dumpjob/metrics.py): namespace, Job dimension
        for alarm, metric, stat, operator in ((failed, "Succeeded", "Minimum", "LessThanThreshold"),
                                              (anomaly, "Anomaly", "Maximum", "GreaterThanOrEqualToThreshold")):
            assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("JRAM/DumpHost", metric, stat)
            assert alarm["Dimensions"] == [{"Name": "Job", "Value": job}]
            assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["Period"]) == (operator, 1.0, 300)
            assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (1, "notBreaching")
    for job, alarm in ((j, alarms[f"{names.prefix}-{j}-deadline"]) for j in SANDBOX_VARS["dumpjob_jobs"]):
        metrics = {m["Id"]: m for m in alarm["Metrics"]}
        assert metrics["missing"]["Expression"] == "FILL(succeeded, 0)" and metrics["missing"]["ReturnData"]
        stat = metrics["succeeded"]["MetricStat"]
        assert stat["Metric"]["MetricName"] == "Succeeded" and stat["Metric"]["Namespace"] == "JRAM/DumpHost"
        assert stat["Metric"]["Dimensions"] == [{"Name": "Job", "Value": job}]
        assert (stat["Period"], stat["Stat"]) == (86400, "Sum")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1.0)
        assert alarm["TreatMissingData"] == "breaching"
        deadline = {"basis": "06:45", "contract_status": "07:15", "schema_weekly": "05:15"}[job]
        assert f"ending at {deadline} Asia/Tokyo" in alarm["AlarmDescription"]
        assert alarm["AlarmActions"] == [topic]
        days = 7 if job == "schema_weekly" else 1
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (days, days)
    # A deadline is a wall-clock day boundary: 06:50 JST is 21:50 UTC, the midnight of UTC+02:10.
    moved = phase1.play(names, "--check", "--diff", extra={**extra, "aws_identity_alarm_deadlines": {"basis": "06:50"}})
    assert moved.rc == 0 and moved.changed == 1, (moved.changed_tasks, moved.out[-4000:])
    assert f"alarm {names.prefix}-basis-deadline (deadline 06:50 Asia/Tokyo, 21:50 UTC)" in moved.out
    assert re.search(r"^\+\s+timezone: '?\+02:10'?$", moved.out, re.M), moved.out[-4000:]


def test_second_run_changes_nothing(phase1, deployed):
    names, extra = deployed
    _ensure_deployed(phase1, names, extra)
    run = phase1.play(names, extra=extra)
    assert run.rc == 0, run.out[-4000:]
    assert run.changed == 0, re.findall(r"TASK \[[^\n]*\n(?:(?!TASK \[).*\n)*?changed: .*", run.out)


def test_check_mode_on_the_converged_state_reports_no_change(phase1, deployed):
    names, extra = deployed
    _ensure_deployed(phase1, names, extra)
    run = phase1.play(names, "--check", "--diff", extra=extra)
    assert run.rc == 0, run.out[-4000:]
    assert run.changed == 0, re.findall(r"TASK \[[^\n]*\n(?:(?!TASK \[).*\n)*?changed: .*", run.out)


def test_policy_names_only_the_jobs_prefixes_secret_and_key(phase1, deployed, kms_key):
    names, extra = deployed
    _ensure_deployed(phase1, names, extra)
    policy = phase1.policy(names.role)
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"WriteDumps", "ReadDumps", "ProbeDumpPrefixes", "FindBucket", "ReadDbSecrets",
                               "EncryptDumps", "PublishJobMetrics"}
    assert all(s["Effect"] == "Allow" for s in statements.values())

    prefixes = {f"arn:aws:s3:::{names.bucket}/{p}*" for p in (
        "dumps/basis_", "dumps/contract_status_", "dumps/schema/basis_schema_",
        "dumps-test/basis_", "dumps-test/contract_status_", "dumps-test/schema/basis_schema_")}
    write = statements["WriteDumps"]
    assert set(write["Action"]) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    assert set(write["Resource"]) == prefixes
    read = statements["ReadDumps"]
    assert read["Action"] == ["s3:GetObject"] and set(read["Resource"]) == prefixes
    probe = statements["ProbeDumpPrefixes"]
    assert set(probe["Action"]) == {"s3:PutObject", "s3:DeleteObject"}
    assert set(probe["Resource"]) == {f"arn:aws:s3:::{names.bucket}/{d}.dumpjob-doctor-*"
                                      for d in ("dumps/", "dumps/schema/", "dumps-test/", "dumps-test/schema/")}
    assert statements["FindBucket"]["Resource"] == [f"arn:aws:s3:::{names.bucket}"]
    assert set(statements["FindBucket"]["Action"]) == {"s3:ListBucket", "s3:ListBucketMultipartUploads"}
    # the role can destroy no dump: deleting is allowed on the doctor's probe keys only, and
    # nothing touches versions, lifecycle or versioning
    deleting = [s for s in statements.values() for a in _list(s["Action"])
                if a.startswith(("s3:Delete", "s3:PutLifecycle", "s3:PutBucketLifecycle")) or "Version" in a]
    assert deleting == [probe]
    assert all(r.endswith("/.dumpjob-doctor-*") for r in _list(probe["Resource"]))

    secret_arn = phase1.secret(names.secret)["ARN"]
    assert statements["ReadDbSecrets"] == {"Sid": "ReadDbSecrets", "Effect": "Allow",
                                           "Action": ["secretsmanager:GetSecretValue"], "Resource": [secret_arn]}
    assert statements["EncryptDumps"]["Resource"] == [kms_key["arn"]]
    assert set(statements["EncryptDumps"]["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    metrics = statements["PublishJobMetrics"]
    assert metrics["Action"] == ["cloudwatch:PutMetricData"] and metrics["Resource"] == "*"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": ["JRAM/DumpHost"]}}

    # nothing broader than the jobs' own resources: no object-wide or account-wide grant
    resources = [r for s in statements.values() for r in _list(s["Resource"]) if s["Sid"] != "PublishJobMetrics"]
    assert not [r for r in resources if r.endswith(":::*") or r.endswith(f"{names.bucket}/*") or r == "*"]
    buckets = {r.split(":::")[1].split("/")[0] for r in resources if r.startswith("arn:aws:s3:::")}
    assert buckets == {names.bucket}
    assert not [a for s in statements.values() for a in _list(s["Action"]) if "*" in a]


def test_vvv_output_never_contains_the_db_password(phase1, deployed):
    names, extra = deployed
    # A password that also exercises escaping, through the write path (the secret changes: an
    # explicit overwrite, since phase 1 otherwise leaves an existing secret's value alone).
    password = "P1-\"quo'te\\back$#;日本語-" + names.tag
    env = {"SANDBOX_DB_PASSWORD": password}
    extra = {**extra, "aws_identity_secret_overwrite": True,
             "aws_identity_secret_overwrite_reason": "the write path's -vvv output is under test"}
    check = phase1.play(names, "--check", "--diff", "-vvv", extra=extra, env=env)
    apply = phase1.play(names, "--diff", "-vvv", extra=extra, env=env)
    assert check.rc == 0 and apply.rc == 0, apply.out[-4000:]
    assert check.changed > 0 and apply.changed > 0
    stored = json.loads(phase1.sm.get_secret_value(SecretId=names.secret)["SecretString"])["password"]
    assert stored == password  # the value did go through the play
    forms = {password, json.dumps(password)[1:-1], json.dumps(password, ensure_ascii=False)[1:-1],
             password.encode("unicode_escape").decode(), _sandbox_password()}
    for out in (check.out, apply.out):
        leaked = [f for f in forms if f in out]
        assert leaked == [], "the DB password appears in ansible-playbook -vvv output"
    # and back to the sandbox's own password, quietly
    assert phase1.play(names, extra=extra).rc == 0


# --- bad input is refused before any change ---------------------------------------------

def _without_secret_id(jobs):
    del jobs["dumpjob_defaults"]["secret_id"]


BAD_INPUTS = {
    "job without secret_id": (_without_secret_id, r"job 'basis': missing key 'secret_id'"),
    "unknown kind": (lambda j: j["dumpjob_jobs"]["basis"].update(kind="xtrabackup"), r"job 'basis': key 'kind'"),
    "schedule with four fields": (lambda j: j["dumpjob_jobs"]["basis"].update(schedule="30 5 * *"),
                                  r"job 'basis': key 'schedule'"),
    "schedule out of range": (lambda j: j["dumpjob_jobs"]["basis"].update(schedule="30 29 * * *"),
                              r"job 'basis': key 'schedule' is '30 29 \* \* \*'.*dumpjob_jobs\['basis'\]\.schedule"),
    "bucket with uppercase letters": (lambda j: j["dumpjob_defaults"].update(bucket="JRAM-GGHouse"),
                                      r"job '\w+': key 'bucket' is 'JRAM-GGHouse'.*dumpjob_defaults\.bucket"),
    "key without a date field": (lambda j: j["dumpjob_jobs"]["basis"].update(key="dumps/basis_latest.sql.gz"),
                                 r"job 'basis': key 'key' .*no \{date:\.\.\.\} field.*dumpjob_jobs\['basis'\]\.key"),
    "bucket that does not exist": (lambda j: j["dumpjob_jobs"]["basis"].update(bucket="p1t-no-such-bucket"),
                                   r"bucket p1t-no-such-bucket .*does not exist"),
    "secret a job names that does not exist": (
        lambda j: j["dumpjob_jobs"]["basis"].update(secret_id="p1t-no-such-secret"), r"p1t-no-such-secret"),
    "the removed aws_identity_allow_delete": (
        lambda j: j.update(aws_identity_allow_delete=True),
        r"aws_identity_allow_delete is gone: .*no longer gets s3:DeleteObject.*remove aws_identity_allow_delete"),
    "bucket versioning without lifecycle rules": (
        lambda j: j.update(aws_identity_bucket_versioning=True, aws_identity_lifecycle_enabled=False),
        r"aws_identity_bucket_versioning needs aws_identity_lifecycle_enabled"),
    "alarm topic that is not an SNS topic ARN": (
        lambda j: j.update(aws_identity_alarm_topic_arn="arn:aws:sqs:ap-northeast-1:123456789012:dba"),
        r"aws_identity_alarm_topic_arn must be empty or an SNS topic ARN \(got 'arn:aws:sqs:"),
    "monthly job without an alarm deadline window": (
        lambda j: j["dumpjob_jobs"]["basis"].update(schedule="30 5 1 * *"),
        r"job 'basis': schedule '30 5 1 \* \*' runs on chosen days.*aws_identity_alarm_skip"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_before_any_change(phase1, bucket, case):
    mutate, message = BAD_INPUTS[case]
    names = Names(uuid.uuid4().hex[:8], bucket=bucket)
    jobs = jobs_with(names)
    mutate(jobs)
    try:
        run = phase1.play(names, extra=jobs)
        assert run.rc != 0
        assert run.failed == 1
        one_line = " ".join(run.out.split())
        assert re.search(message, one_line), run.out[-3000:]
        assert not re.search(r"^changed:", run.out, re.M)
        assert phase1.nothing_exists(names) == []
    finally:
        phase1.remove(names)


# --- rollback ---------------------------------------------------------------------------

def test_rollback_refuses_while_an_instance_uses_the_profile(phase1, deployed):
    names, extra = deployed
    _ensure_deployed(phase1, names, extra)
    image = phase1.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = phase1.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                        IamInstanceProfile={"Name": names.role})["Instances"][0]["InstanceId"]
    try:
        run = phase1.play(names, "-e", "phase=1", playbook="rollback.yml", extra=extra)
        assert run.rc != 0
        assert re.search(rf"{instance} still use instance profile {names.role}; roll back phase 3",
                         " ".join(run.out.split()))
        assert phase1.role(names.role) and phase1.profile(names.role) and phase1.alarms(names.prefix)
    finally:
        phase1.ec2.terminate_instances(InstanceIds=[instance])


def test_rollback_deletes_what_phase1_created(phase1, deployed):
    names, extra = deployed
    _ensure_deployed(phase1, names, extra)
    check = phase1.play(names, "-e", "phase=1", "--check", "--diff", playbook="rollback.yml", extra=extra)
    assert check.rc == 0, check.out[-4000:]
    assert check.changed > 0
    assert phase1.role(names.role) and phase1.secret(names.secret) and phase1.alarms(names.prefix)

    run = phase1.play(names, "-e", "phase=1", playbook="rollback.yml", extra=extra)
    assert run.rc == 0, run.out[-4000:]
    assert phase1.role(names.role) is None
    assert phase1.profile(names.role) is None
    assert phase1.alarms(names.prefix) == []
    assert phase1.topic(f"{names.prefix}-alarms") is None
    assert phase1.rules(names.bucket, names.prefix) == []
    # deleted with a recovery window: gone for dumpjob, restorable by re-running phase 1
    assert phase1.secret(names.secret).get("DeletedDate")

    again = phase1.play(names, "-e", "phase=1", playbook="rollback.yml", extra=extra)
    assert again.rc == 0 and again.changed == 0, again.out[-4000:]


def test_rollback_keeps_the_alarms_and_topic_of_jobs_in_production(phase1, deployed):
    """A job in production keeps all three of its alarms and the topic they notify; the others go."""
    names, extra = deployed
    _ensure_deployed(phase1, names, extra)
    run = phase1.play(names, "-e", "phase=1", playbook="rollback.yml",
                      extra={**extra, "aws_identity_alarm_keep": ["basis"]})
    assert run.rc == 0, run.out[-4000:]
    topic = phase1.topic(f"{names.prefix}-alarms")
    kept = {a["AlarmName"]: a["AlarmActions"] for a in phase1.alarms(names.prefix)}
    assert kept == {f"{names.prefix}-basis-{kind}": [topic] for kind in ("deadline", "failed", "anomaly")}
    assert topic and phase1.role(names.role) is None
    assert "and the topic they notify: job(s) basis run in production" in run.one_line()
    phase1.remove(names)


def test_a_topic_the_inventory_names_is_used_and_nothing_is_created(phase1, bucket):
    """aws_identity_alarm_topic_arn: every alarm notifies that topic; phase 1 creates no topic,
    and its rollback leaves the topic alone."""
    names = Names(uuid.uuid4().hex[:8], bucket=bucket)
    theirs = phase1.sns.create_topic(Name=f"{names.prefix}-dba-alerts")["TopicArn"]
    extra = {**jobs_with(names), "aws_identity_alarm_topic_arn": theirs, "aws_identity_alarm_topic_subscriptions": []}
    try:
        run = phase1.play(names, extra=extra)
        assert run.rc == 0, run.out[-4000:]
        alarms = {a["AlarmName"]: a["AlarmActions"] for a in phase1.alarms(names.prefix)}
        assert len(alarms) == 3 * len(SANDBOX_VARS["dumpjob_jobs"])
        assert set(map(tuple, alarms.values())) == {(theirs,)}
        assert phase1.topic(f"{names.prefix}-alarms") is None
        back = phase1.play(names, "-e", "phase=1", playbook="rollback.yml", extra=extra)
        assert back.rc == 0, back.out[-4000:]
        assert phase1.alarms(names.prefix) == [] and phase1.topic(f"{names.prefix}-dba-alerts") == theirs
    finally:
        phase1.remove(names)
        phase1.sns.delete_topic(TopicArn=theirs)


def test_rollback_needs_a_phase(phase1, deployed):
    names, extra = deployed
    run = phase1.play(names, "-e", "phase=7", playbook="rollback.yml", extra=extra)
    assert run.rc != 0
    assert re.search(r"pass -e phase=N \(one of [^)]*\b1\b[^)]*\).*, got phase=7", " ".join(run.out.split()))


def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _sandbox_password() -> str:
    sys.path.insert(0, str(REPO))
    from sandbox import config

    return config.LEGACY_DB_PASSWORD
