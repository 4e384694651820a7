"""playbooks/dms_provision.yml against moto in server mode (its own, on a free loopback port): check
mode predicts and changes nothing, the first run creates, the second reports changed=0, a start
without a passing readiness report is refused in one line, a passing report starts the task (and
the start is recorded), so does an override (recorded with what it overrode), and the teardown
removes everything carrying the collection's tags while an unrelated, untagged DMS endpoint and
security group survive, as does the target's parameter group (local_infile set to 1: the role
converges it but does not own it).

What moto cannot show (TestConnection, CDC, the IAM role reading the secrets) is in docs/dms.md."""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest
from sandboxtest import RECAP, run_playbook

REGION = "ap-northeast-1"
NAME = "jram-dumphost-dms-it"
PARAMETER_GROUP = "jram-dumphost-dms-it-target"
OWNER = {"Project": "jram-dumphost", "Component": "dms"}
REFUSAL = "the replication task is not started:"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def aws(moto, tmp_path_factory):
    """boto3 clients to the module's moto, the network and an unrelated untagged endpoint and
    security group, and the extra-vars file the playbook runs with."""
    def client(service):
        return boto3.client(service, endpoint_url=moto, region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    ec2, dms = client("ec2"), client("dms")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{REGION}{zone}")
               ["Subnet"]["SubnetId"] for n, zone in ((1, "a"), (2, "c"))]
    unrelated_sg = ec2.create_security_group(GroupName="someone-elses", Description="not ours", VpcId=vpc)["GroupId"]
    # The target's parameter group, as AWS lists a new group's parameters (moto's start empty, and the
    # amazon.aws module sets only parameters the group lists).
    rds = client("rds")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=PARAMETER_GROUP,
                                          DBParameterGroupFamily="aurora-mysql8.0", Description="basis target")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=PARAMETER_GROUP, Parameters=[
        {"ParameterName": "local_infile", "ParameterValue": "0", "ApplyMethod": "pending-reboot",
         "IsModifiable": True}])
    unrelated = dms.create_endpoint(EndpointIdentifier="someone-elses-endpoint", EndpointType="source",
                                    EngineName="mysql", ServerName="db.example", Port=3306)["Endpoint"]["EndpointArn"]
    work = tmp_path_factory.mktemp("dms_provision")
    extra = {
        "aws_endpoint_url": moto, "aws_region": REGION, "dms_name": NAME,
        "dms_vpc_id": vpc, "dms_subnet_ids": subnets,
        "dms_source_cidr": "10.99.0.0/24", "dms_target_cidr": "10.20.3.0/24",
        "dms_secrets_access_role_arn": "arn:aws:iam::123456789012:role/jram-dumphost-dms-secrets",
        "dms_certificate_arn": "arn:aws:dms:ap-northeast-1:123456789012:cert:RDSCABUNDLE",
        "dms_source": {"engine": "mysql", "secret_id": "jram/dumphost/dms-replication",
                       "mysql_settings": {"ServerTimezone": "UTC"}},
        "dms_target": {"engine": "aurora", "secret_id": "jram/dumphost/dms-target"},
        "dms_target_parameter_group": {"name": PARAMETER_GROUP, "family": "aurora-mysql8.0", "cluster": True},
        "dms_table_rules": [{"schema": "basis"}, {"schema": "basis", "table": "access_logs", "action": "exclude"}],
        "dms_readiness_report": str(work / "dms_readiness.json"),
        "dms_start_ledger": str(work / "dms_starts.jsonl"),
        # moto leaves a new task in "creating" for ever; AWS makes it "ready" within minutes.
        "dms_task_wait_timeout": 0,
    }
    (work / "extra.json").write_text(json.dumps(extra))
    yield {"ec2": ec2, "dms": dms, "rds": rds, "vpc": vpc, "work": work, "unrelated": unrelated,
           "unrelated_sg": unrelated_sg, "env": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                                                "AWS_DEFAULT_REGION": REGION}}


def play(aws, *args, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = run_playbook("playbooks/dms_provision.yml", "-e", f"@{aws['work'] / 'extra.json'}", *args,
                        env={**env, **aws["env"]}, check=check)
    recap = RECAP.findall(proc.stdout)
    return proc, sum(int(r[1]) for r in recap)


def tagged(aws) -> dict:
    """Every DMS resource, security group and parameter group in moto carrying the owner tags."""
    dms = aws["dms"]
    found = {}
    for call, key, arn in (("describe_replication_tasks", "ReplicationTasks", "ReplicationTaskArn"),
                           ("describe_endpoints", "Endpoints", "EndpointArn"),
                           ("describe_replication_instances", "ReplicationInstances", "ReplicationInstanceArn")):
        for resource in getattr(dms, call)()[key]:
            tags = {t["Key"]: t["Value"] for t in dms.list_tags_for_resource(ResourceArn=resource[arn])["TagList"]}
            if all(tags.get(k) == v for k, v in OWNER.items()):
                found.setdefault(key, []).append(resource)
    groups = aws["ec2"].describe_security_groups(Filters=[{"Name": f"tag:{k}", "Values": [v]}
                                                          for k, v in OWNER.items()])["SecurityGroups"]
    if groups:
        found["SecurityGroups"] = groups
    return found


def subnet_groups(aws):
    return [g["ReplicationSubnetGroupIdentifier"] for g in aws["dms"].describe_replication_subnet_groups()
            ["ReplicationSubnetGroups"]]


def local_infile(aws):
    params = aws["rds"].describe_db_cluster_parameters(DBClusterParameterGroupName=PARAMETER_GROUP)["Parameters"]
    return {p["ParameterName"]: p["ParameterValue"] for p in params}.get("local_infile")


def task(aws):
    tasks = aws["dms"].describe_replication_tasks()["ReplicationTasks"]
    return next(t for t in tasks if t["ReplicationTaskIdentifier"] == f"{NAME}-task")


def refusal_lines(out):
    """The error lines with the refusal: one, holding the whole reason (cause and fix)."""
    lines = [line for line in out.splitlines() if line.startswith("[ERROR]") and REFUSAL in line]
    assert all(line.endswith("or give start_override_reason") for line in lines), lines
    return lines


def write_report(aws, findings):
    (aws["work"] / "dms_readiness.json").write_text(json.dumps(
        {"findings": findings, "summary": {"ready": not any(f["severity"] == "fail" for f in findings)}}))


def test_provision_start_and_teardown(aws):
    started = time.monotonic()
    # Check mode predicts changes and makes none.
    proc, changed = play(aws, "--check", "--diff")
    assert changed > 0
    assert "created by this run" not in json.dumps(tagged(aws))
    assert tagged(aws) == {} and subnet_groups(aws) == [] and local_infile(aws) == "0"

    # The first run creates everything, tagged; the task is created, not started.
    proc, changed = play(aws)
    assert changed > 0
    found = tagged(aws)
    assert sorted(e["EndpointIdentifier"] for e in found["Endpoints"]) == [f"{NAME}-source", f"{NAME}-target"]
    source = next(e for e in found["Endpoints"] if e["EndpointType"] == "source")
    assert source["MySQLSettings"]["SecretsManagerSecretId"] == "jram/dumphost/dms-replication"
    assert source["MySQLSettings"]["SecretsManagerAccessRoleArn"].endswith(":role/jram-dumphost-dms-secrets")
    assert source["SslMode"] == "verify-full" and "Password" not in json.dumps(source)
    instance = found["ReplicationInstances"][0]
    assert instance["ReplicationInstanceIdentifier"] == NAME
    assert instance["PubliclyAccessible"] is False
    assert [g["VpcSecurityGroupId"] for g in instance["VpcSecurityGroups"]] == \
        [g["GroupId"] for g in found["SecurityGroups"]]
    egress = {(r["FromPort"], ip["CidrIp"]) for r in found["SecurityGroups"][0]["IpPermissionsEgress"]
              for ip in r["IpRanges"]}
    assert egress == {(3306, "10.99.0.0/24"), (3306, "10.20.3.0/24"), (443, "0.0.0.0/0")}
    the_task = task(aws)
    assert the_task["MigrationType"] == "full-load-and-cdc" and the_task["Status"] != "running"
    rules = json.loads(the_task["TableMappings"])["rules"]
    assert [(r["object-locator"]["table-name"], r["rule-action"]) for r in rules] == \
        [("%", "include"), ("access_logs", "exclude")]
    assert subnet_groups(aws) == [NAME]
    assert local_infile(aws) == "1"

    # The second run changes nothing.
    assert play(aws)[1] == 0

    # A start with a failing report is refused in one line naming the failing findings, before any
    # change (no report at all, a stale one and the override: tests/unit/test_dms_provision_rules.py).
    write_report(aws, [{"id": "mysql-check-binlog-format", "severity": "fail"},
                       {"id": "source-triggers", "severity": "warn"}])
    proc, _ = play(aws, "-e", "start=true", check=False)
    assert proc.returncode != 0
    lines = refusal_lines(proc.stdout)
    assert len(lines) == 1 and "fails mysql-check-binlog-format:" in lines[0] and "source-triggers" not in lines[0]
    assert task(aws)["Status"] != "running"
    assert not (aws["work"] / "dms_starts.jsonl").exists()

    # A passing report starts it; the start is recorded.
    write_report(aws, [{"id": "source-triggers", "severity": "warn"}])
    proc, changed = play(aws, "-e", "start=true")
    assert changed == 1
    assert task(aws)["Status"] == "running"
    ledger = [json.loads(line) for line in (aws["work"] / "dms_starts.jsonl").read_text().splitlines()]
    assert len(ledger) == 1 and ledger[0]["task"] == f"{NAME}-task" and "passed" in ledger[0]["reason"]

    # Stopped, then started again over a failing report with an override: recorded with what it overrode.
    aws["dms"].stop_replication_task(ReplicationTaskArn=task(aws)["ReplicationTaskArn"])
    write_report(aws, [{"id": "mysql-check-binlog-format", "severity": "fail"}])
    proc, changed = play(aws, "-e", "start=true", "-e",
                         json.dumps({"start_override_reason": "vendor changed it at 10:00"}))
    assert changed == 1 and task(aws)["Status"] == "running"
    ledger = [json.loads(line) for line in (aws["work"] / "dms_starts.jsonl").read_text().splitlines()]
    assert len(ledger) == 2 and ledger[1]["reason"].startswith("override: vendor changed it at 10:00 (refused")
    assert "mysql-check-binlog-format" in ledger[1]["reason"]

    # The teardown (predicted by check mode) removes what carries the tags, and nothing else.
    proc, changed = play(aws, "-e", "state=absent", "--check")
    assert changed > 0 and tagged(aws) != {}
    proc, changed = play(aws, "-e", "state=absent")
    assert changed > 0
    assert tagged(aws) == {}
    # The target's parameter group is the target database's: set, never removed.
    assert subnet_groups(aws) == [] and local_infile(aws) == "1"
    assert [e["EndpointArn"] for e in aws["dms"].describe_endpoints()["Endpoints"]] == [aws["unrelated"]]
    assert aws["ec2"].describe_security_groups(GroupIds=[aws["unrelated_sg"]])["SecurityGroups"]
    print(f"dms_provision walk: {time.monotonic() - started:.0f} s")
