"""bucket_lifecycle, driven as Ansible drives it, against moto: the rules phase 1 owns are computed
from the jobs' key prefixes, put once (a second run changes nothing), predicted without a change in
check mode, changed when a setting changes, removed by state absent - and the bucket's other rules
survive every one of these. Versioning is turned on when asked and never suspended."""

from __future__ import annotations

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.module_utils.bucket_lifecycle import comparable, top_dirs, wanted_rules
from ansible_collections.jram.dumphost.plugins.modules import bucket_lifecycle
from sandboxtest import run_module

REGION = "ap-northeast-1"
BUCKET = "vendor-dumps"
OTHERS = {"ID": "vendor-archive", "Filter": {"Prefix": "archive/"}, "Status": "Enabled",
          "Expiration": {"Days": 400}}
ARGS = {"bucket": BUCKET, "rule_prefix": "jram-dumphost", "expire_prefix": "dumps-test/", "expire_days": 14,
        "abort_multipart_days": 1, "write_prefixes": ["dumps/basis/", "dumps-test/basis/", "basis-"],
        "region": REGION}


@pytest.fixture
def s3(aws_in_process):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [OTHERS]})
    return client


def rules(s3):
    return {r["ID"]: comparable(r) for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}


def test_the_rules_follow_the_jobs_directories():
    assert top_dirs(["dumps/basis/", "dumps-test/basis/", "basis-", "dumps/other/"], "dumps-test/") == ["", "dumps/"]
    ids = [r["ID"] for r in wanted_rules("p", "dumps-test/", 14, 1, ["dumps/basis/", "basis-"], None)]
    assert ids == ["p-expire-dumps-test", "p-abort-mpu-bucket", "p-abort-mpu-dumps"]
    versioned = wanted_rules("p", "dumps-test/", 14, 1, [], 30)
    assert versioned[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_check_mode_predicts_then_the_run_puts_then_nothing_changes(s3):
    predicted = run_module(bucket_lifecycle.main, ARGS, check=True)
    assert predicted["changed"] is True
    assert predicted["put"] == ["jram-dumphost-abort-mpu-bucket", "jram-dumphost-abort-mpu-dumps",
                                "jram-dumphost-expire-dumps-test"]
    assert set(rules(s3)) == {"vendor-archive"}, "check mode changed the bucket"
    assert [r["ID"] for r in predicted["diff"]["after"]["rules"]] == predicted["put"]

    applied = run_module(bucket_lifecycle.main, ARGS)
    assert applied["changed"] is True and applied["put"] == predicted["put"]
    on_bucket = rules(s3)
    assert on_bucket["vendor-archive"] == comparable(OTHERS)
    assert on_bucket["jram-dumphost-expire-dumps-test"] == {
        "ID": "jram-dumphost-expire-dumps-test", "Prefix": "dumps-test/", "Status": "Enabled",
        "ExpirationDays": 14, "AbortDays": 1}
    assert on_bucket["jram-dumphost-abort-mpu-bucket"]["Prefix"] == ""

    again = run_module(bucket_lifecycle.main, ARGS)
    assert again["changed"] is False and again["put"] == [] and again["removed"] == []


def test_a_changed_setting_and_a_gone_directory_are_converged(s3):
    run_module(bucket_lifecycle.main, ARGS)
    changed = run_module(bucket_lifecycle.main, {**ARGS, "expire_days": 7, "write_prefixes": ["dumps/basis/"]})
    assert changed["put"] == ["jram-dumphost-expire-dumps-test"]
    assert changed["removed"] == ["jram-dumphost-abort-mpu-bucket"]
    assert set(rules(s3)) == {"vendor-archive", "jram-dumphost-expire-dumps-test", "jram-dumphost-abort-mpu-dumps"}
    assert rules(s3)["jram-dumphost-expire-dumps-test"]["ExpirationDays"] == 7


def test_versioning_is_turned_on_and_the_rules_expire_noncurrent_versions(s3):
    result = run_module(bucket_lifecycle.main, {**ARGS, "versioning": True, "noncurrent_expiration_days": 21})
    assert result["changed"] is True and result["versioning"] == "Enabled"
    assert result["diff"]["before"]["versioning"] == "" and result["diff"]["after"]["versioning"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert {r["NoncurrentDays"] for i, r in rules(s3).items() if i != "vendor-archive"} == {21}
    # versioning=false later leaves it on, and the bucket stays versioned for the rules
    later = run_module(bucket_lifecycle.main, {**ARGS, "noncurrent_expiration_days": 21})
    assert later["changed"] is False and later["versioning"] == "Enabled"


def test_absent_removes_only_the_owned_rules(s3):
    run_module(bucket_lifecycle.main, ARGS)
    absent = {"bucket": BUCKET, "rule_prefix": "jram-dumphost", "state": "absent", "region": REGION}
    predicted = run_module(bucket_lifecycle.main, absent, check=True)
    assert predicted["changed"] is True and len(predicted["removed"]) == 3 and len(rules(s3)) == 4
    removed = run_module(bucket_lifecycle.main, absent)
    assert removed["changed"] is True and set(rules(s3)) == {"vendor-archive"}
    assert run_module(bucket_lifecycle.main, absent)["changed"] is False


def test_the_last_rule_gone_deletes_the_configuration(aws_in_process):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    run_module(bucket_lifecycle.main, ARGS)
    run_module(bucket_lifecycle.main, {"bucket": BUCKET, "rule_prefix": "jram-dumphost", "state": "absent",
                                       "region": REGION})
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)


def test_bad_settings_are_refused_before_any_call(s3):
    result = run_module(bucket_lifecycle.main, {**ARGS, "expire_prefix": "dumps-test", "expire_days": 0})
    assert result["failed"] is True and "must end in '/'" in result["msg"]
    assert set(rules(s3)) == {"vendor-archive"}
