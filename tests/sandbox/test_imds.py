"""The IMDS emulator behaves like a real instance's metadata service, driven by moto's record
of the instance: no credentials without a profile, credentials with one, tokens required once
the instance requires IMDSv2."""

import json
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.credentials import InstanceMetadataFetcher, InstanceMetadataProvider


def _get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("X-aws-ec2-metadata-token", token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


def _token(base, ttl="60"):
    req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": ttl})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""


@pytest.fixture
def imds(sandbox):
    return sandbox.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"]


@pytest.fixture
def profile(sandbox):
    """A role and instance profile in moto; associated by the test, always cleaned up."""
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    name = f"imds-test-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    yield name
    instance = sandbox.state["instance_id"]
    for a in ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance]}])["IamInstanceProfileAssociations"]:
        ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
    ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional")
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
    iam.delete_instance_profile(InstanceProfileName=name)
    iam.delete_role(RoleName=name)


def _associate(sandbox, name):
    sandbox.client("ec2").associate_iam_instance_profile(
        IamInstanceProfile={"Name": name}, InstanceId=sandbox.state["instance_id"])


def test_identity_comes_from_the_moto_instance(sandbox, imds):
    assert _get(f"{imds}/latest/meta-data/instance-id") == (200, sandbox.state["instance_id"])
    assert _get(f"{imds}/latest/meta-data/placement/region") == (200, "ap-northeast-1")


def test_no_credentials_without_a_profile(imds):
    assert _get(f"{imds}/latest/meta-data/iam/security-credentials/")[0] == 404
    assert _get(f"{imds}/latest/meta-data/iam/info")[0] == 404


def test_credentials_after_association(sandbox, imds, profile):
    _associate(sandbox, profile)
    status, role = _get(f"{imds}/latest/meta-data/iam/security-credentials/")
    assert (status, role) == (200, profile)
    status, body = _get(f"{imds}/latest/meta-data/iam/security-credentials/{profile}")
    creds = json.loads(body)
    assert creds["Code"] == "Success" and creds["AccessKeyId"].startswith("ASIA") and creds["Token"]
    # botocore's own IMDS client takes them, and they are the role's.
    fetcher = InstanceMetadataFetcher(timeout=2, num_attempts=1,
                                      env={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds},
                                      config={"ec2_metadata_service_endpoint": imds})
    loaded = InstanceMetadataProvider(iam_role_fetcher=fetcher).load()
    sts = boto3.client("sts", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"], region_name="ap-northeast-1",
                       aws_access_key_id=loaded.access_key, aws_secret_access_key=loaded.secret_key,
                       aws_session_token=loaded.token)
    assert f":assumed-role/{profile}/" in sts.get_caller_identity()["Arn"]


def test_credentials_stop_after_disassociation(sandbox, imds, profile):
    _associate(sandbox, profile)
    assert _get(f"{imds}/latest/meta-data/iam/security-credentials/")[0] == 200
    ec2 = sandbox.client("ec2")
    (assoc,) = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [sandbox.state["instance_id"]]}])["IamInstanceProfileAssociations"]
    ec2.disassociate_iam_instance_profile(AssociationId=assoc["AssociationId"])
    assert _get(f"{imds}/latest/meta-data/iam/security-credentials/{profile}")[0] == 404


def test_token_flow(imds):
    status, token = _token(imds)
    assert status == 200 and len(token) >= 32
    assert _get(f"{imds}/latest/meta-data/instance-id", token)[0] == 200
    assert _get(f"{imds}/latest/meta-data/instance-id", "not-a-token")[0] == 401
    assert _token(imds, ttl="0")[0] == 400
    assert _token(imds, ttl="")[0] == 400


def test_tokenless_requests_refused_once_imdsv2_required(sandbox, imds, profile):
    ec2 = sandbox.client("ec2")
    assert _get(f"{imds}/latest/meta-data/instance-id")[0] == 200
    ec2.modify_instance_metadata_options(InstanceId=sandbox.state["instance_id"], HttpTokens="required")
    assert _get(f"{imds}/latest/meta-data/instance-id")[0] == 401
    _, token = _token(imds)
    assert _get(f"{imds}/latest/meta-data/instance-id", token) == (200, sandbox.state["instance_id"])
    ec2.modify_instance_metadata_options(InstanceId=sandbox.state["instance_id"], HttpTokens="optional")
    assert _get(f"{imds}/latest/meta-data/instance-id")[0] == 200


def test_imds_reachable_from_the_host(sandbox, profile):
    """The host shares the loopback: its AWS CLI finds the role through the emulator."""
    _associate(sandbox, profile)
    proc = sandbox.exec("bash", "-c", "curl -s -o /dev/null -w '%{http_code}' "
                        f"{sandbox.env['AWS_EC2_METADATA_SERVICE_ENDPOINT']}/latest/meta-data/iam/security-credentials/")
    assert proc.stdout == "200"
