"""The AWS half of key retirement, driven as Ansible drives it, against moto: static_key_owner_info
names the IAM user owning each access key and its status (a key IAM names no owner of is user
null, status absent; a known owner skips the lookup), and static_keys_escrow_info returns the
escrowed files only when the escrow is the one the ledger records, refusing otherwise in one line."""

from __future__ import annotations

import json

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.modules import static_key_owner_info, static_keys_escrow_info
from sandboxtest import run_module

REGION = "ap-northeast-1"


def owners(key_ids, known=None):
    return run_module(static_key_owner_info.main, {"key_ids": key_ids, "known_users": known or {}, "region": REGION},
                      diff=False)


def test_owner_and_status_of_each_key(aws_in_process):
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="legacy-dump")
    active = iam.create_access_key(UserName="legacy-dump")["AccessKey"]["AccessKeyId"]
    inactive = iam.create_access_key(UserName="legacy-dump")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="legacy-dump", AccessKeyId=inactive, Status="Inactive")
    result = owners([active, inactive, "AKIAZ7QXPNOSUCHKEY42"])
    assert result["changed"] is False
    assert result["owners"] == {active: {"user": "legacy-dump", "status": "Active"},
                                inactive: {"user": "legacy-dump", "status": "Inactive"},
                                "AKIAZ7QXPNOSUCHKEY42": {"user": None, "status": "absent"}}


def test_a_known_owner_skips_the_lookup(aws_in_process):
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="other")
    key = iam.create_access_key(UserName="other")["AccessKey"]["AccessKeyId"]
    result = owners([key, "AKIAZ7QXPNOSUCHKEY42"], known={key: "other", "AKIAZ7QXPNOSUCHKEY42": "gone-user"})
    assert result["owners"] == {key: {"user": "other", "status": "Active"},
                                "AKIAZ7QXPNOSUCHKEY42": {"user": "gone-user", "status": "absent"}}


ESCROW = "jram-dumphost/escrow/ec2-user/AKIAZ7QXPESCROWKEY42"
FILE = {"path": "/home/ec2-user/.aws/credentials", "owner": "ec2-user", "group": "ec2-user", "mode": "0600",
        "dir_owner": "ec2-user", "dir_group": "ec2-user", "dir_mode": "0700", "content_base64": "W2RlZmF1bHRdCg=="}


def escrow(user="ec2-user", key_ids=("AKIAZ7QXPESCROWKEY42",)):
    return run_module(static_keys_escrow_info.main, {"secret_id": ESCROW, "user": user, "key_ids": list(key_ids),
                                                     "region": REGION}, diff=False)


def test_the_escrow_the_ledger_records_is_returned(aws_in_process):
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=ESCROW, SecretString=json.dumps(
        {"version": 1, "host": "dumphost", "user": "ec2-user", "key_ids": ["AKIAZ7QXPESCROWKEY42"], "files": [FILE]}))
    result = escrow()
    assert result["changed"] is False and result["files"] == [FILE]


@pytest.mark.parametrize("user, key_ids", [("root", ["AKIAZ7QXPESCROWKEY42"]), ("ec2-user", ["AKIAZ7QXPOTHERKEY421"])])
def test_an_escrow_of_another_user_or_key_is_refused(aws_in_process, user, key_ids):
    boto3.client("secretsmanager", region_name=REGION).create_secret(Name=ESCROW, SecretString=json.dumps(
        {"user": "ec2-user", "key_ids": ["AKIAZ7QXPESCROWKEY42"], "files": [FILE]}))
    result = escrow(user, key_ids)
    assert result["failed"] and "\n" not in result["msg"]
    assert f"the escrow {ESCROW} does not hold the key files of {user}" in result["msg"]
    assert "W2RlZmF1bHRdCg==" not in json.dumps(result)


def test_a_missing_escrow_is_refused(aws_in_process):
    result = escrow()
    assert result["failed"] and f"the escrow {ESCROW} does not exist" in result["msg"]
