"""A dump host container with phase 1 and phase 2 done, and an EC2 instance record and IMDS
emulator of its own, for test modules that run phase 3 and what follows it (test_phase3,
test_static_keys).

The module brings its own EC2 instance record in moto and its own copy of the sandbox's IMDS
emulator (sandbox/imds.py) following that instance, and points its host at it (phase 2 with
imds_endpoint_url). So the sandbox's shared instance is never touched, and other sessions that
associate profiles with it cannot disturb these tests. Phase 1 runs with names of this run's
own (role, profile, secret, bucket, alarm and rule prefixes); destroy() removes all of it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import ClientError
from sandboxtest import PlayRun

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TAG_PREFIX = "jram-dumphost:phase3:"
ATTACH = "phase3_attach_role.yml"
ROLLBACK = "rollback.yml"


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
        self.create_instance_and_imds()
        # phase 2 (the host) does not depend on phase 1 (AWS): run them side by side; a run that
        # raised (timed out) fails here, not as a missing phase later
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = {p: pool.submit(self.play, p) for p in ("phase1_infra.yml", "phase2_parallel.yml")}
        for playbook, future in runs.items():
            run = future.result()
            assert run.rc == 0, f"{playbook} failed:\n{run.out[-6000:]}"

    def create_instance_and_imds(self) -> None:
        """The bucket, the EC2 instance record and the IMDS emulator following it."""
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
        # the host's metadata rule set (phase 3) lives in this machine's network namespace
        self.drop_imds_table()
        self.remove_other_profile()
        with contextlib.suppress(ClientError):
            self.sm.restore_secret(SecretId=self.secret)
        # The host's jobs are past legacy (phase 2 ran): the rollback refuses unless forced.
        run = self.play(ROLLBACK, "-e", "phase=1", extra={"force_reason": "test teardown"})
        if run.rc != 0:
            problems.append(f"phase 1 rollback failed:\n{run.out[-3000:]}")
        # a forced phase 1 rollback keeps the deadline alarms of jobs still in production
        cloudwatch = self.sandbox.client("cloudwatch")
        kept = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{self.name}-")["MetricAlarms"]]
        if kept:
            cloudwatch.delete_alarms(AlarmNames=kept)
        self.remove_bucket()
        return problems

    def remove_bucket(self) -> None:
        with contextlib.suppress(ClientError):
            for obj in self.s3.list_objects_v2(Bucket=self.name).get("Contents", []):
                self.s3.delete_object(Bucket=self.name, Key=obj["Key"])
            self.s3.delete_bucket(Bucket=self.name)

    @property
    def imds_table(self) -> str:
        """The nftables table of this host's metadata rule set (the sandbox inventory names it by port)."""
        return f"jram_dumphost_imds_{self.imds_port}"

    def drop_imds_table(self) -> None:
        from sandbox import host as sandbox_host

        sandbox_host.drop_imds_tables([self.imds_table])

    # -- running playbooks -------------------------------------------------------------------
    def play(self, playbook: str, *args: str, extra: dict | None = None, env: dict | None = None) -> PlayRun:
        path = self.workdir / f"vars-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps({**self.extra, **(extra or {})}))
        started = time.time()
        proc = subprocess.run([str(BIN / "ansible-playbook"), f"playbooks/{playbook}", "-e", f"@{path}", *args],
                              cwd=REPO, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=900)
        return PlayRun(proc.returncode, proc.stdout + proc.stderr, started, time.time())

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


def doctor_checks(report: dict) -> dict[str, dict]:
    """Every doctor check by name (host checks as is, job checks as JOB/NAME)."""
    found = {c["name"]: c for c in report["checks"]}
    for job in report["jobs"]:
        found.update({f"{job['job']}/{c['name']}": c for c in job["checks"]})
    return found


