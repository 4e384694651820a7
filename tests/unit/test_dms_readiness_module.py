"""dms_readiness's main(), driven as Ansible drives it, with moto in-process for Secrets Manager and
RDS: bad input is refused in one line naming the cause and the fix, before any connection to the
source. The checks themselves run against the sandbox's MariaDB in
tests/integration/test_dms_readiness.py."""

from __future__ import annotations

import json
import socket

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.modules import dms_readiness
from sandboxtest import run_module

REGION = "ap-northeast-1"
SECRET = "jram/dumphost/dms-replication"


@pytest.fixture
def aws(aws_in_process):
    return boto3.client("secretsmanager", region_name=REGION)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret(sm, name=SECRET, **values):
    value = {"host": "127.0.0.1", "port": closed_port(), "username": "dms", "password": "pw-not-shown",
             "dbname": "basis", **values}
    sm.create_secret(Name=name, SecretString=json.dumps(value))


def refused(args, *needles):
    result = run_module(dms_readiness.main, {"region": REGION, **args}, diff=False)
    assert result["failed"] is True
    assert "\n" not in result["msg"]
    for needle in needles:
        assert needle in result["msg"], result["msg"]
    assert "pw-not-shown" not in json.dumps(result)
    return result


def test_missing_secret(aws):
    refused({"secret_id": SECRET}, f"secret {SECRET} does not exist", "fix the secret id")


def test_secret_that_is_not_rds_json(aws):
    aws.create_secret(Name=SECRET, SecretString="just-a-password")
    refused({"secret_id": SECRET}, "is not RDS secret JSON (missing host, port, username, password)")


def test_secret_without_password_and_no_databases(aws):
    secret(aws, password="")
    refused({"secret_id": SECRET}, "missing password")
    secret(aws, name="other", dbname="")
    refused({"secret_id": "other"}, "no databases", "set databases")


def test_bad_numbers_and_ca(aws, tmp_path):
    secret(aws)
    refused({"secret_id": SECRET, "catch_up_hours": -1}, "catch_up_hours must be positive")
    refused({"secret_id": SECRET, "ssl_ca": str(tmp_path / "none.pem")}, "is not a file")


def test_unknown_rds_instance(aws):
    secret(aws)
    refused({"secret_id": SECRET, "db_instance_identifier": "nope"}, "RDS instance nope does not exist")


def test_unreachable_port_before_any_login(aws):
    secret(aws)
    refused({"secret_id": SECRET}, "is not reachable from this host", "security group")


def test_ansible_doc_renders_every_option():
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sandboxtest import collections_root

    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_NOCOLOR": "1"}
    doc = subprocess.run([Path(sys.executable).parent / "ansible-doc", "--json", "jram.dumphost.dms_readiness"],
                         env=env, capture_output=True, text=True, check=True)
    documented = json.loads(doc.stdout)["jram.dumphost.dms_readiness"]["doc"]["options"]
    source = Path(dms_readiness.__file__).read_text()
    spec = source[source.index("argument_spec=dict("):source.index("supports_check_mode=True")]
    for name in ("secret_id", "admin_secret_id", "databases", "login_host", "login_port", "ssl_ca",
                 "db_instance_identifier", "rds_lookup", "expected_full_load_hours", "catch_up_hours",
                 "lob_max_size_kb", "lob_scan", "deep_scan", "dms_engine_version", "connect_timeout"):
        assert f"{name}=dict(" in spec and name in documented, name
    assert spec.count("=dict(") - 1 == 15  # argument_spec itself, then one per option


def test_rds_is_told_by_the_api_from_the_endpoint(aws):
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_parameter_group(DBParameterGroupName="vendor", DBParameterGroupFamily="mysql8.0",
                                  Description="vendor")
    rds.modify_db_parameter_group(DBParameterGroupName="vendor", Parameters=[
        {"ParameterName": "binlog_format", "ParameterValue": "ROW", "ApplyMethod": "immediate"}])
    inst = rds.create_db_instance(DBInstanceIdentifier="vendor-basis", DBInstanceClass="db.t3.medium",
                                  Engine="mysql", EngineVersion="8.0.39", AllocatedStorage=20,
                                  MasterUsername="admin", MasterUserPassword="not-used-1", BackupRetentionPeriod=0,
                                  DBParameterGroupName="vendor")["DBInstance"]
    address = inst["Endpoint"]["Address"]
    found = dms_readiness.rds_instance(None, rds, None, address.upper(), inst["Endpoint"]["Port"])
    assert found == {"identifier": "vendor-basis", "engine": "mysql", "engine_version": "8.0.39",
                     "backup_retention_period": 0, "parameter_group": "vendor",
                     "parameters": {"binlog_format": "ROW"}, "replica_of": None}
    assert dms_readiness.rds_instance(None, rds, None, address, 3307) is None  # another port: not this instance
    assert dms_readiness.rds_instance(None, rds, None, "db.vendor.example", 3306) is None  # self-managed
