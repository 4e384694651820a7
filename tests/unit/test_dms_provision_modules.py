"""The DMS provisioning modules' main(), driven as Ansible drives them, against moto in-process
(create, check mode, idempotence, start, delete, the tagged resources and the start gate), and with
botocore's Stubber for the calls moto 5.2.5 lacks: ModifyEndpoint, ModifyReplicationTask,
AddTagsToResource and RemoveTagsFromResource."""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.jram.dumphost.plugins.modules import (
    dms_endpoint_mysql,
    dms_provision_info,
    dms_replication_instance,
    dms_replication_task,
)
from botocore.stub import Stubber
from sandboxtest import run_module

REGION = "ap-northeast-1"
TAGS = {"Project": "jram-dumphost", "ManagedBy": "ansible", "Component": "dms"}
OWNER = {"Project": "jram-dumphost", "Component": "dms"}
ROLE = "arn:aws:iam::123456789012:role/jram-dumphost-dms-secrets"
CERT = "arn:aws:dms:ap-northeast-1:123456789012:cert:RDSCA"


def endpoint_args(**extra):
    return {"region": REGION, "identifier": "jram-dumphost-dms-source", "endpoint_type": "source", "engine": "mysql",
            "secret_id": "jram/dumphost/dms-replication", "secret_access_role_arn": ROLE, "certificate_arn": CERT,
            "tags": TAGS, **extra}


@pytest.fixture
def dms(aws_in_process):
    return boto3.client("dms", region_name=REGION)


def refused(main, args, needle):
    result = run_module(main, args, diff=False)
    assert result["failed"] is True and "\n" not in result["msg"]
    assert needle in result["msg"], result["msg"]
    return result


@pytest.mark.parametrize("extra, needle", [
    ({"mysql_settings": {"Password": "x"}}, "mysql_settings Password: credentials come from secret_id"),
    ({"ssl_mode": "require"}, "ssl_mode require does not verify the server"),
    ({"certificate_arn": None}, "ssl_mode verify-full needs certificate_arn"),
])
def test_endpoint_bad_input_is_refused_before_any_change(dms, extra, needle):
    refused(dms_endpoint_mysql.main, endpoint_args(**extra), needle)
    assert dms.describe_endpoints()["Endpoints"] == []


def test_endpoint_check_create_idempotent_delete(dms):
    args = endpoint_args(mysql_settings={"ServerTimezone": "UTC"})
    check = run_module(dms_endpoint_mysql.main, args, check=True)
    assert check["changed"] is True and check["diff"]["after"]["MySQLSettings"]["SecretsManagerSecretId"]
    assert dms.describe_endpoints()["Endpoints"] == []
    created = run_module(dms_endpoint_mysql.main, args)
    assert created["changed"] is True and created["arn"].startswith("arn:aws:dms:")
    endpoint = dms.describe_endpoints()["Endpoints"][0]
    assert endpoint["MySQLSettings"] == {"ServerTimezone": "UTC",
                                         "SecretsManagerSecretId": "jram/dumphost/dms-replication",
                                         "SecretsManagerAccessRoleArn": ROLE}
    assert endpoint["SslMode"] == "verify-full" and endpoint["CertificateArn"] == CERT
    tags = dms.list_tags_for_resource(ResourceArn=endpoint["EndpointArn"])["TagList"]
    assert {t["Key"]: t["Value"] for t in tags} == TAGS
    assert run_module(dms_endpoint_mysql.main, args)["changed"] is False
    assert run_module(dms_endpoint_mysql.main, args, check=True)["changed"] is False
    gone = {"region": REGION, "identifier": args["identifier"], "state": "absent"}
    assert run_module(dms_endpoint_mysql.main, gone, check=True)["changed"] is True
    assert len(dms.describe_endpoints()["Endpoints"]) == 1
    assert run_module(dms_endpoint_mysql.main, gone)["changed"] is True
    assert dms.describe_endpoints()["Endpoints"] == []
    assert run_module(dms_endpoint_mysql.main, gone)["changed"] is False


def instance_args(**extra):
    return {"region": REGION, "identifier": "jram-dumphost-dms", "instance_class": "dms.t3.medium",
            "allocated_storage": 50, "subnet_group": "jram-dumphost-dms", "security_group_ids": ["sg-1"],
            "tags": TAGS, **extra}


def test_instance_check_create_modify_delete(dms):
    assert run_module(dms_replication_instance.main, instance_args(), check=True)["changed"] is True
    assert dms.describe_replication_instances()["ReplicationInstances"] == []
    created = run_module(dms_replication_instance.main, instance_args(wait=True, wait_timeout=30))
    assert created["changed"] is True and created["arn"].endswith(":rep:jram-dumphost-dms")
    (instance,) = dms.describe_replication_instances()["ReplicationInstances"]
    assert instance["PubliclyAccessible"] is False and instance["ReplicationInstanceStatus"] == "available"
    assert run_module(dms_replication_instance.main, instance_args())["changed"] is False
    bigger = run_module(dms_replication_instance.main, instance_args(instance_class="dms.r5.large"))
    assert bigger["changed"] is True
    assert bigger["diff"]["before"]["ReplicationInstanceClass"] == "dms.t3.medium"
    assert dms.describe_replication_instances()["ReplicationInstances"][0]["ReplicationInstanceClass"] == "dms.r5.large"
    refused(dms_replication_instance.main, instance_args(instance_class="dms.r5.large", subnet_group="other"),
            "is in subnet group jram-dumphost-dms, not other: DMS cannot move it")
    gone = {"region": REGION, "identifier": "jram-dumphost-dms", "state": "absent", "wait": True, "wait_timeout": 30}
    assert run_module(dms_replication_instance.main, gone)["changed"] is True
    assert dms.describe_replication_instances()["ReplicationInstances"] == []


RULES = [{"schema": "basis"}, {"schema": "basis", "table": "access_logs", "action": "exclude"}]


@pytest.fixture
def task_args(dms, tmp_path):
    source = run_module(dms_endpoint_mysql.main, endpoint_args())["arn"]
    target = run_module(dms_endpoint_mysql.main, endpoint_args(identifier="jram-dumphost-dms-target",
                                                               endpoint_type="target", engine="aurora"))["arn"]
    instance = run_module(dms_replication_instance.main, instance_args())["arn"]
    return {"region": REGION, "identifier": "jram-dumphost-dms-task", "source_endpoint_arn": source,
            "target_endpoint_arn": target, "replication_instance_arn": instance, "table_rules": RULES,
            "task_settings": {"TargetMetadata": {"LobMaxSize": 32}}, "tags": TAGS,
            "ledger_path": str(tmp_path / "starts.jsonl"), "wait_timeout": 0}


def the_task(dms):
    (task,) = dms.describe_replication_tasks()["ReplicationTasks"]
    return task


def test_task_create_start_and_delete(dms, task_args):
    ledger = task_args["ledger_path"]
    refused(dms_replication_task.main, dict(task_args, table_rules=[{"schema": "basis", "action": "drop"}]),
            "action 'drop' is neither include nor exclude")
    assert dms.describe_replication_tasks()["ReplicationTasks"] == []
    assert run_module(dms_replication_task.main, task_args, check=True)["changed"] is True
    assert dms.describe_replication_tasks()["ReplicationTasks"] == []
    created = run_module(dms_replication_task.main, task_args)
    assert created["changed"] is True and created["started"] is False
    task = the_task(dms)
    assert task["MigrationType"] == "full-load-and-cdc" and task["Status"] != "running"
    assert json.loads(task["TableMappings"]) == created["table_mappings"]
    assert run_module(dms_replication_task.main, task_args)["changed"] is False

    start = dict(task_args, start=True, start_reason="readiness report passed")
    predicted = run_module(dms_replication_task.main, start, check=True)
    assert predicted["changed"] is True and predicted["started"] is True
    assert the_task(dms)["Status"] != "running" and not os.path.exists(ledger)
    started = run_module(dms_replication_task.main, start)
    assert started["changed"] is True and the_task(dms)["Status"] == "running"
    with open(ledger) as handle:
        entries = [json.loads(line) for line in handle]
    assert [(e["task"], e["action"], e["reason"]) for e in entries] == \
        [("jram-dumphost-dms-task", "start", "readiness report passed")]
    assert oct(os.stat(ledger).st_mode & 0o777) == "0o600"
    assert run_module(dms_replication_task.main, start)["changed"] is False

    refused(dms_replication_task.main, dict(task_args, table_rules=[{"schema": "basis"}]),
            "is running and its table mappings or settings differ: stop it")
    refused(dms_replication_task.main, dict(task_args, source_endpoint_arn=task_args["target_endpoint_arn"]),
            "has another SourceEndpointArn: DMS cannot change it")

    gone = {"region": REGION, "identifier": task_args["identifier"], "state": "absent", "wait_timeout": 10}
    assert run_module(dms_replication_task.main, gone)["changed"] is True
    assert dms.describe_replication_tasks()["ReplicationTasks"] == []
    assert run_module(dms_replication_task.main, gone)["changed"] is False


def write_report(path, findings, age_hours=0.0, stamp=None, checked_on=None):
    body = {"findings": [{"id": i, "severity": s} for i, s in findings]}
    if stamp:
        body["generated_at"] = stamp
    if checked_on:
        body["checked_on"] = checked_on
    path.write_text(json.dumps(body))
    then = time.time() - age_hours * 3600
    os.utime(path, (then, then))


def test_info_lists_only_tagged_resources_and_judges_the_gate(dms, task_args, tmp_path):
    run_module(dms_replication_task.main, task_args)
    dms.create_endpoint(EndpointIdentifier="someone-elses", EndpointType="source", EngineName="mysql")
    dms.create_endpoint(EndpointIdentifier="half-tagged", EndpointType="source", EngineName="mysql",
                        Tags=[{"Key": "Project", "Value": "jram-dumphost"}])
    report = tmp_path / "dms_readiness.json"
    args = {"region": REGION, "owner_tags": OWNER, "readiness_report": str(report), "subnet_group": "none-here"}
    info = run_module(dms_provision_info.main, args)
    assert info["changed"] is False and info["subnet_group"] is None
    assert sorted(e["identifier"] for e in info["endpoints"]) == ["jram-dumphost-dms-source",
                                                                   "jram-dumphost-dms-target"]
    assert [t["identifier"] for t in info["replication_tasks"]] == ["jram-dumphost-dms-task"]
    assert [i["identifier"] for i in info["replication_instances"]] == ["jram-dumphost-dms"]
    assert info["start_gate"]["allowed"] is False and "no readiness report at" in info["start_gate"]["reason"]

    write_report(report, [("mysql-check-binlog-format", "fail")])
    gate = run_module(dms_provision_info.main, args)["start_gate"]
    assert not gate["allowed"] and "fails mysql-check-binlog-format" in gate["reason"]
    write_report(report, [("source-triggers", "warn")], age_hours=200)
    gate = run_module(dms_provision_info.main, args)["start_gate"]
    assert not gate["allowed"] and "h old (at most 168 h)" in gate["reason"] and gate["age_hours"] >= 199
    write_report(report, [("source-triggers", "warn")], age_hours=200,
                 stamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    assert run_module(dms_provision_info.main, args)["start_gate"]["allowed"] is True
    # dms_readiness's checked_on: a file last changed 200 h ago but checked again today counts from today
    today = time.strftime("%Y-%m-%d", time.gmtime())
    write_report(report, [("source-triggers", "warn")], age_hours=200, checked_on=today)
    gate = run_module(dms_provision_info.main, args)["start_gate"]
    assert gate["allowed"] is True and gate["age_hours"] <= 24
    # a file written on its day keeps that time (a re-run the same day changed nothing) ...
    write_report(report, [("source-triggers", "warn")], age_hours=0.01, checked_on=today)
    assert run_module(dms_provision_info.main, args)["start_gate"]["age_hours"] < 0.1
    # ... and an old check day counts from that day's start, however recent the file
    write_report(report, [("source-triggers", "warn")], checked_on="2026-01-05")
    gate = run_module(dms_provision_info.main, args)["start_gate"]
    assert not gate["allowed"] and "h old (at most 168 h)" in gate["reason"]
    write_report(report, [("mysql-check-binlog-format", "fail")])
    override = dict(args, start_override_reason="vendor changed it today")
    gate = run_module(dms_provision_info.main, override)["start_gate"]
    assert gate["allowed"] and gate["reason"].startswith("override: vendor changed it today")
    refused(dms_provision_info.main, dict(args, table_rules=[{"table": "x"}]), "names no schema")


# -- botocore Stubber: what moto 5.2.5 does not implement ------------------------------------------

@pytest.fixture
def stubbed(monkeypatch):
    """AnsibleAWSModule.client builds its usual retrying client, with a Stubber on the botocore client."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    original = AnsibleAWSModule.client
    holder = {}

    def client(self, service, retry_decorator=None, **kwargs):
        wrapped = original(self, service, retry_decorator=retry_decorator, **kwargs)
        holder["stub"] = stub = Stubber(wrapped.client)
        for method, response, params in holder["calls"]:
            stub.add_response(method, response, params)
        stub.activate()
        return wrapped

    monkeypatch.setattr(AnsibleAWSModule, "client", client)
    return holder


ARN = "arn:aws:dms:ap-northeast-1:123456789012:endpoint:ABCDEFGHIJ"


def test_endpoint_modify_and_retag_through_the_api_moto_lacks(stubbed):
    current = {"EndpointIdentifier": "jram-dumphost-dms-source", "EndpointArn": ARN, "EndpointType": "SOURCE",
               "EngineName": "mysql", "SslMode": "verify-ca", "CertificateArn": CERT,
               "MySQLSettings": {"SecretsManagerSecretId": "jram/dumphost/dms-replication",
                                 "SecretsManagerAccessRoleArn": ROLE}}
    stubbed["calls"] = [
        ("describe_endpoints", {"Endpoints": [current]},
         {"Filters": [{"Name": "endpoint-id", "Values": ["jram-dumphost-dms-source"]}]}),
        ("list_tags_for_resource", {"TagList": [{"Key": "Project", "Value": "jram-dumphost"},
                                                {"Key": "Stale", "Value": "1"}]}, {"ResourceArn": ARN}),
        ("remove_tags_from_resource", {}, {"ResourceArn": ARN, "TagKeys": ["Stale"]}),
        ("add_tags_to_resource", {}, {"ResourceArn": ARN, "Tags": [{"Key": "Component", "Value": "dms"},
                                                                   {"Key": "ManagedBy", "Value": "ansible"}]}),
        ("modify_endpoint", {"Endpoint": dict(current, SslMode="verify-full")},
         {"EndpointArn": ARN, "SslMode": "verify-full"}),
    ]
    result = run_module(dms_endpoint_mysql.main, endpoint_args())
    assert result.get("changed") is True, result
    assert result["diff"]["before"]["SslMode"] == "verify-ca" and result["diff"]["after"]["SslMode"] == "verify-full"
    assert result["diff"]["after"]["tags"] == TAGS
    stubbed["stub"].assert_no_pending_responses()


TASK_ARN = "arn:aws:dms:ap-northeast-1:123456789012:task:jram-dumphost-dms-task"


def test_stopped_task_gets_new_table_mappings_through_modify(stubbed):
    old = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "include-basis-%",
                      "object-locator": {"schema-name": "basis", "table-name": "%"}, "rule-action": "include"}]}
    current = {"ReplicationTaskIdentifier": "jram-dumphost-dms-task", "ReplicationTaskArn": TASK_ARN,
               "SourceEndpointArn": "s", "TargetEndpointArn": "t", "ReplicationInstanceArn": "r",
               "MigrationType": "full-load-and-cdc", "TableMappings": json.dumps(old),
               "ReplicationTaskSettings": json.dumps({"TargetMetadata": {"LobMaxSize": 32, "SupportLobs": True}}),
               "Status": "stopped"}
    args = {"region": REGION, "identifier": "jram-dumphost-dms-task", "source_endpoint_arn": "s",
            "target_endpoint_arn": "t", "replication_instance_arn": "r", "table_rules": RULES,
            "task_settings": {"TargetMetadata": {"LobMaxSize": 32}}, "tags": {"Project": "jram-dumphost"}}
    mappings = json.dumps(dms_replication_task.table_mappings(RULES), sort_keys=True, separators=(",", ":"))
    describe = ("describe_replication_tasks", {"ReplicationTasks": [current]},
                {"Filters": [{"Name": "replication-task-id", "Values": ["jram-dumphost-dms-task"]}]})
    tags = ("list_tags_for_resource", {"TagList": [{"Key": "Project", "Value": "jram-dumphost"}]},
            {"ResourceArn": TASK_ARN})
    stubbed["calls"] = [describe, describe, tags,
                        ("modify_replication_task", {"ReplicationTask": dict(current, TableMappings=mappings)},
                         {"ReplicationTaskArn": TASK_ARN, "TableMappings": mappings})]
    result = run_module(dms_replication_task.main, args)
    assert result.get("changed") is True and result["started"] is False, result
    assert result["diff"]["before"]["TableMappings"] == old
    stubbed["stub"].assert_no_pending_responses()


@pytest.mark.parametrize("module", [dms_endpoint_mysql, dms_replication_instance, dms_replication_task,
                                    dms_provision_info], ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_ansible_doc_renders_every_option(module):
    import re
    import subprocess
    import sys
    from pathlib import Path

    from sandboxtest import collections_root

    name = f"jram.dumphost.{module.__name__.rsplit('.', 1)[-1]}"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_NOCOLOR": "1"}
    doc = subprocess.run([Path(sys.executable).parent / "ansible-doc", "--json", name], env=env,
                         capture_output=True, text=True, check=True)
    rendered = json.loads(doc.stdout)[name]
    source = Path(module.__file__).read_text()
    spec = source[source.rindex("def main"):]
    options = set(re.findall(r"^\s+(\w+)=dict\(type=", spec, re.M))
    assert options and options <= set(rendered["doc"]["options"]), options - set(rendered["doc"]["options"])
    assert rendered["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert rendered["examples"] and rendered["return"]


@pytest.mark.parametrize("status, kind", [("ready", "start-replication"), ("stopped", "resume-processing")])
def test_start_type_follows_the_status(stubbed, tmp_path, status, kind):
    current = {"ReplicationTaskIdentifier": "jram-dumphost-dms-task", "ReplicationTaskArn": TASK_ARN,
               "SourceEndpointArn": "s", "TargetEndpointArn": "t", "ReplicationInstanceArn": "r",
               "MigrationType": "full-load-and-cdc",
               "TableMappings": json.dumps(dms_replication_task.table_mappings(RULES)), "Status": status}
    describe = ("describe_replication_tasks", {"ReplicationTasks": [current]},
                {"Filters": [{"Name": "replication-task-id", "Values": ["jram-dumphost-dms-task"]}]})
    running = ("describe_replication_tasks", {"ReplicationTasks": [dict(current, Status="running")]},
               {"Filters": [{"Name": "replication-task-id", "Values": ["jram-dumphost-dms-task"]}]})
    stubbed["calls"] = [describe, describe,
                        ("list_tags_for_resource", {"TagList": []}, {"ResourceArn": TASK_ARN}),
                        ("start_replication_task", {"ReplicationTask": dict(current, Status="starting")},
                         {"ReplicationTaskArn": TASK_ARN, "StartReplicationTaskType": kind}),
                        running]
    args = {"region": REGION, "identifier": "jram-dumphost-dms-task", "source_endpoint_arn": "s",
            "target_endpoint_arn": "t", "replication_instance_arn": "r", "table_rules": RULES, "start": True,
            "start_reason": "readiness report passed", "ledger_path": str(tmp_path / "starts.jsonl")}
    result = run_module(dms_replication_task.main, args)
    assert result.get("changed") is True and result["started"] is True, result
    assert result["diff"]["before"]["Status"] == status and result["diff"]["after"]["Status"] == "running"
    stubbed["stub"].assert_no_pending_responses()
