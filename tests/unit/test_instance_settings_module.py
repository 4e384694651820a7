"""instance_settings's and instance_settings_info's main(), driven as Ansible drives them, against
moto in server mode (conftest's moto_url: started in this process on a free loopback port).

Shown here: check mode predicts the change and changes nothing; apply changes the association and
the metadata options and a second run changes nothing; the diff shows the settings before and
after; the previous values come back and, given back, put the instance back; a different
association is replaced only when told to; bad input is refused in one line before any change; the
info module reads the settings and the phase 3 record (and says what is wrong with a damaged one)."""

from __future__ import annotations

import itertools

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import instance_settings as ins
from ansible_collections.jram.dumphost.plugins.modules import instance_settings, instance_settings_info
from sandboxtest import run_module

REGION = "ap-northeast-1"
PREFIX = "jram-dumphost:phase3:"
SERIAL = itertools.count(1)
# moto takes any keys; the module masks the secret key (no_log) wherever it appears in its result
KEY_ID, SECRET = "AKIAUNITTESTMOTO0000", "moto-unit-test-secret-key"


class Aws:
    """The moto account a test works in: a running instance with IMDSv1 allowed and a hop limit of 2,
    and two instance profiles."""

    def __init__(self, url: str, image: str, name: str):
        self.url = url
        kwargs = dict(endpoint_url=url, region_name=REGION, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
        self.ec2 = boto3.client("ec2", **kwargs)
        self.iam = boto3.client("iam", **kwargs)
        self.instance_id = self.ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
            MetadataOptions={"HttpTokens": "optional", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
        )["Instances"][0]["InstanceId"]
        self.profiles = {}
        for profile in (f"{name}-host", f"{name}-other"):
            self.profiles[profile] = self.iam.create_instance_profile(
                InstanceProfileName=profile)["InstanceProfile"]["Arn"]

    def args(self, **extra) -> dict:
        return {"instance_id": self.instance_id, "endpoint_url": self.url, "region": REGION,
                "access_key": KEY_ID, "secret_key": SECRET, "wait_timeout": 10, **extra}

    def association(self) -> str | None:
        found = ins.association(Unretried(self.ec2), self.instance_id)
        return found["arn"] if found else None

    def options(self) -> tuple:
        meta = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0][
            "MetadataOptions"]
        return meta["HttpTokens"], meta["HttpPutResponseHopLimit"], meta.get("HttpEndpoint")

    def state(self) -> tuple:
        return self.association(), self.options()


class Unretried:
    """A boto3 client that takes (and drops) the aws_retry argument of AnsibleAWSModule's clients."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        call = getattr(self.client, name)
        return lambda **kw: call(**{k: v for k, v in kw.items() if k != "aws_retry"})


@pytest.fixture(scope="module")
def image(moto_url):
    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name=REGION, aws_access_key_id=KEY_ID,
                       aws_secret_access_key=SECRET)
    return ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]


@pytest.fixture
def aws(moto_url, image):
    return Aws(moto_url, image, f"unit-{next(SERIAL)}")


def settings_run(args: dict, check: bool = False, diff: bool = True) -> dict:
    return run_module(instance_settings.main, args, check=check, diff=diff)


def test_check_mode_predicts_apply_changes_a_second_run_changes_nothing(aws):
    arn = aws.profiles[next(iter(aws.profiles))]
    wanted = aws.args(instance_profile=next(iter(aws.profiles)), http_tokens="required", hop_limit=1)
    before = aws.state()
    assert before == (None, ("optional", 2, "enabled"))

    check = settings_run(wanted, check=True)
    assert check["changed"] is True
    assert check["previous"] == {"profile": "none", "http_tokens": "optional", "hop_limit": 2,
                                 "http_endpoint": "enabled"}
    assert check["current"] == {"profile": arn, "http_tokens": "required", "hop_limit": 1, "http_endpoint": "enabled"}
    assert check["actions"] == [f"associated instance profile {arn}",
                                "metadata options http_tokens optional -> required, hop_limit 2 -> 1"]
    assert check["msg"].startswith(f"instance {aws.instance_id}: (check mode) would have associated")
    assert aws.state() == before, "check mode changed the instance"

    applied = settings_run(wanted)
    assert applied["changed"] is True
    assert {k: applied[k] for k in ("previous", "current", "actions")} == {
        k: check[k] for k in ("previous", "current", "actions")}
    assert aws.state() == (arn, ("required", 1, "enabled"))

    for mode in (True, False):
        again = settings_run(wanted, check=mode)
        assert again["changed"] is False and again["actions"] == [] and "diff" not in again
        assert again["previous"] == again["current"] == applied["current"]
        assert again["msg"] == f"instance {aws.instance_id}: nothing to change"


def test_the_diff_shows_the_settings_before_and_after_in_check_mode_too(aws):
    name = next(iter(aws.profiles))
    for check in (True, False):
        result = settings_run(aws.args(instance_profile=name, http_tokens="required"), check=check)
        assert result["diff"] == {
            "before": {"profile": "none", "http_tokens": "optional", "hop_limit": 2, "http_endpoint": "enabled"},
            "after": {"profile": aws.profiles[name], "http_tokens": "required", "hop_limit": 2,
                      "http_endpoint": "enabled"},
            "before_header": f"instance {aws.instance_id}", "after_header": f"instance {aws.instance_id}"}
    assert "diff" not in settings_run(aws.args(instance_profile=name, http_tokens="required"), check=False)
    assert "diff" not in settings_run(aws.args(http_tokens="optional", hop_limit=1), diff=False)


def test_the_previous_values_given_back_put_the_instance_back(aws):
    name = next(iter(aws.profiles))
    attached = settings_run(aws.args(instance_profile=name, http_tokens="required", hop_limit=1,
                                     http_endpoint="enabled"))
    previous = attached["previous"]
    assert aws.state() == (aws.profiles[name], ("required", 1, "enabled"))

    back = aws.args(instance_profile=previous["profile"], replace=True, http_tokens=previous["http_tokens"],
                    hop_limit=previous["hop_limit"], http_endpoint=previous["http_endpoint"])
    check = settings_run(back, check=True)
    assert check["changed"] is True and check["current"] == previous
    assert check["actions"][0] == f"removed instance profile {aws.profiles[name]}"
    assert aws.state() == (aws.profiles[name], ("required", 1, "enabled")), "check mode changed the instance"

    restored = settings_run(back)
    assert restored["changed"] is True and restored["previous"] == attached["current"]
    assert aws.state() == (None, ("optional", 2, "enabled"))
    assert settings_run(back)["changed"] is False


def test_a_different_association_is_replaced_only_when_told_to(aws):
    host, other = aws.profiles
    settings_run(aws.args(instance_profile=other))
    refused = settings_run(aws.args(instance_profile=host, http_tokens="required"))
    assert refused["failed"] is True
    assert refused["msg"] == (f"instance {aws.instance_id} has instance profile {aws.profiles[other]} associated, "
                              f"not {aws.profiles[host]}: set replace=true to replace it")
    assert aws.state() == (aws.profiles[other], ("optional", 2, "enabled")), "a refused run changed the instance"

    replaced = settings_run(aws.args(instance_profile=aws.profiles[host], replace=True))
    assert replaced["actions"] == [f"replaced instance profile {aws.profiles[other]} with {aws.profiles[host]}"]
    assert replaced["previous"]["profile"] == aws.profiles[other]
    assert aws.association() == aws.profiles[host]


@pytest.mark.parametrize("extra, message", [
    ({"hop_limit": 65}, "hop_limit must be a number from 1 to 64 (got 65)"),
    ({"instance_id": "web-1"}, "instance_id must be an instance id such as i-0123456789abcdef0 (got 'web-1')"),
    ({"instance_id": "i-0123456789abcdef0"},
     "instance i-0123456789abcdef0 does not exist in this region (or is terminated): check instance_id and region"),
    ({"instance_profile": "no-such-profile"},
     "instance profile no-such-profile does not exist: create it first (phase 1, playbooks/phase1_infra.yml) or fix "
     "instance_profile"),
    ({"http_tokens": "sometimes"}, "value of http_tokens must be one of: required, optional, got: sometimes"),
])
def test_bad_input_is_refused_in_one_line_before_any_change(aws, extra, message):
    result = settings_run(aws.args(**{"http_tokens": "required", "hop_limit": 1, **extra}))
    assert result["failed"] is True
    assert message in result["msg"] and "\n" not in result["msg"]
    assert aws.state() == (None, ("optional", 2, "enabled"))


def info_run(args: dict, check: bool = False) -> dict:
    return run_module(instance_settings_info.main, {k: v for k, v in args.items() if k != "wait_timeout"}, check=check)


def test_info_reads_the_settings_and_the_phase_3_record(aws):
    name = next(iter(aws.profiles))
    empty = info_run(aws.args())
    assert (empty["exists"], empty["state"], empty["record"], empty["recorded"], empty["record_problem"]) == (
        True, "running", {}, None, None)
    assert empty["settings"] == {"profile": "none", "http_tokens": "optional", "hop_limit": 2,
                                 "http_endpoint": "enabled"}

    found = empty["settings"]
    tags = {f"{PREFIX}previous-profile": "none", f"{PREFIX}previous-http-tokens": "optional",
            f"{PREFIX}previous-hop-limit": "2", f"{PREFIX}previous-http-endpoint": "enabled",
            f"{PREFIX}attached-at": "2026-11-30T05:12:09Z", f"{PREFIX}attach-mode": "live"}
    aws.ec2.create_tags(Resources=[aws.instance_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    settings_run(aws.args(instance_profile=name, http_tokens="required", hop_limit=1))
    for check in (True, False):
        read = info_run(aws.args(), check=check)
        assert read["changed"] is False
        assert read["settings"] == {"profile": aws.profiles[name], "http_tokens": "required", "hop_limit": 1,
                                    "http_endpoint": "enabled"}
        assert read["record"] == {"previous-profile": "none", "previous-http-tokens": "optional",
                                  "previous-hop-limit": "2", "previous-http-endpoint": "enabled",
                                  "attached-at": "2026-11-30T05:12:09Z", "attach-mode": "live"}
        assert read["recorded"] == found and read["record_problem"] is None
        assert read["record_tags"] == tags
    # another prefix sees no record; the Name tag is never part of one
    assert info_run(aws.args(record_tag_prefix="other:"))["record"] == {}


def test_info_says_what_is_wrong_with_a_damaged_record_and_when_there_is_no_instance(aws):
    aws.ec2.create_tags(Resources=[aws.instance_id], Tags=[
        {"Key": f"{PREFIX}previous-profile", "Value": "jram-dumphost"},
        {"Key": f"{PREFIX}previous-http-tokens", "Value": "required"}])
    read = info_run(aws.args())
    assert read["recorded"] is None
    assert read["record_problem"] == ("previous-profile 'jram-dumphost' is neither 'none' nor an instance profile "
                                      "ARN; previous-hop-limit '' is not a number from 1 to 64")

    gone = info_run(aws.args(instance_id="i-0123456789abcdef0"))
    assert (gone["exists"], gone["state"], gone["settings"], gone["record"]) == (False, None, {}, {})
    aws.ec2.terminate_instances(InstanceIds=[aws.instance_id])
    assert info_run(aws.args())["exists"] is False

    refused = info_run(aws.args(record_tag_prefix="aws:phase3:"))
    assert refused["failed"] is True and "record_tag_prefix must be a tag key prefix" in refused["msg"]


@pytest.mark.parametrize("module, options", [
    (instance_settings, {"instance_id", "instance_profile", "replace", "http_tokens", "hop_limit", "http_endpoint",
                         "wait_timeout"}),
    (instance_settings_info, {"instance_id", "record_tag_prefix"}),
])
def test_ansible_doc_renders_each_module_with_its_options_and_the_aws_ones(module, options):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sandboxtest import collections_root

    name = f"jram.dumphost.{Path(module.__file__).stem}"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_NOCOLOR": "1"}
    doc = subprocess.run([Path(sys.executable).parent / "ansible-doc", "--json", name], env=env, capture_output=True,
                         text=True, check=True)
    rendered = json.loads(doc.stdout)[name]
    aws_options = {"endpoint_url", "region", "access_key", "secret_key", "profile"}
    assert options | aws_options <= set(rendered["doc"]["options"])
    assert set(rendered["doc"]["attributes"]) >= {"check_mode", "diff_mode"}
    assert rendered["return"] and all("sample" in value for value in rendered["return"].values())
