"""moto in server mode on loopback, seeded with what the legacy host's AWS account holds: the
dump bucket, the IAM user whose static key the legacy host uses, and the EC2 instance record
standing for the dump host (no instance profile yet)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

from . import procs
from .config import BUCKET, LEGACY_IAM_USER, REGION, Settings

NAME = "moto"
# Credentials of the sandbox's own tooling (seeding, the IMDS emulator). moto accepts any key
# while it does not enforce IAM; with enforcement on, the emulator signs with the key of the
# IAM user `sandbox-imds` recorded in state.json.
TOOL_CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
IMDS_IAM_USER = "sandbox-imds"


def client(s: Settings, service: str, credentials: dict | None = None):
    return boto3.client(service, endpoint_url=s.moto_url, region_name=REGION,
                        config=Config(retries={"max_attempts": 2}), **(credentials or TOOL_CREDENTIALS))


def running(s: Settings) -> bool:
    """Our moto process is alive and answers HTTP (any status: its dashboard can fail on odd
    state without the APIs being down)."""
    if procs.pid_alive(s.pidfile(NAME)) is None:
        return False
    try:
        with urllib.request.urlopen(f"{s.moto_url}/moto-api/", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def up(s: Settings, state: dict) -> dict:
    if not running(s):
        if procs.port_open(s.moto_port):
            raise procs.SandboxError(
                f"port {s.moto_port} is already taken; stop what listens there or set SANDBOX_PORT_BASE")
        moto = Path(sys.executable).with_name("moto_server")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        procs.start_daemon([str(moto), "-H", "127.0.0.1", "-p", str(s.moto_port)],
                           s.pidfile(NAME), s.logfile(NAME), env=env)
        procs.wait_for(lambda: running(s), "moto server", timeout=60, log=s.logfile(NAME))
    return seed(s, state)


def seed(s: Settings, state: dict) -> dict:
    """Idempotent: keeps what exists (a restarted moto starts empty and is seeded again)."""
    s3 = client(s, "s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})

    iam = client(s, "iam")
    state["legacy_key"] = _user_with_key(iam, LEGACY_IAM_USER, state.get("legacy_key"), {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*",
                       "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}],
    })
    state["imds_key"] = _user_with_key(iam, IMDS_IAM_USER, state.get("imds_key"), {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Resource": "*",
                       "Action": ["ec2:Describe*", "iam:GetInstanceProfile", "iam:GetRole", "sts:AssumeRole"]}],
    })

    ec2 = client(s, "ec2")
    instance_id = state.get("instance_id")
    if not instance_id or not _instance_exists(ec2, instance_id):
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        reservation = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
            MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": "Name", "Value": "ggh-dumphost"}]}],
        )
        state["instance_id"] = reservation["Instances"][0]["InstanceId"]
    state["account_id"] = client(s, "sts").get_caller_identity()["Account"]
    return state


def _user_with_key(iam, user: str, known: dict | None, policy: dict) -> dict:
    try:
        iam.get_user(UserName=user)
    except iam.exceptions.NoSuchEntityException:
        iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName=f"{user}-access", PolicyDocument=json.dumps(policy))
    existing = {k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
    if known and known.get("id") in existing:
        return known
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _instance_exists(ec2, instance_id: str) -> bool:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError:
        return False
    return any(i["State"]["Name"] != "terminated" for r in reservations for i in r["Instances"])


def detach_profiles(s: Settings, instance_id: str) -> list[str]:
    """Remove every instance profile association of the instance; returns the profile ARNs."""
    ec2 = client(s, "ec2")
    detached = []
    for a in ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]:
        ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
        detached.append(a["IamInstanceProfile"]["Arn"])
    return detached


def down(s: Settings) -> bool:
    return procs.stop_daemon(s.pidfile(NAME))
