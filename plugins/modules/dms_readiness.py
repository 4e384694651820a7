# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dms_readiness
short_description: Is a MySQL/MariaDB source ready for AWS DMS full load + CDC (read-only)
version_added: 0.3.0
description:
  - Connects to the source with PyMySQL as the replication user of a Secrets Manager secret (RDS secret
    JSON - host, port, username, password, dbname), and optionally with a second login (the dump's
    secret) for what a replication user cannot see (triggers, routines, foreign keys, replica status).
  - Detects MySQL vs MariaDB from the server, and RDS vs self-managed from the RDS API (the instance named
    by O(db_instance_identifier), else the instance whose endpoint is the secret's host).
  - Returns one finding per check - C(id), C(severity) (V(fail) blocks CDC, V(warn) is a risk to decide
    on, V(info) is ready), C(observed), C(expected), C(remediation), C(objects) - with ids that mirror
    AWS's premigration assessment keys (C(mariadb-check-binlog-format), C(mysql-check-server-id), ...),
    the exact changes to ask for (SQL, parameter-group values, AWS CLI calls, my.cnf lines) and the
    report in Markdown.
  - Never changes anything - every session is put into read-only transaction mode and runs only
    C(SELECT) and C(SHOW) - so check mode and a normal run are the same.
author:
  - JRAM infrastructure team (@jram)
options:
  secret_id:
    description: The Secrets Manager secret of the replication user DMS will use (RDS secret JSON).
    type: str
    required: true
  admin_secret_id:
    description:
      - A second secret (e.g. the dump's) used for the schema inventory and the replica status when given.
      - Without it the inventory is what the replication user sees (no triggers without the TRIGGER privilege).
    type: str
  databases:
    description: The databases to migrate; default the replication secret's C(dbname).
    type: list
    elements: str
  login_host:
    description: Overrides the secret's C(host) (e.g. a tunnel); the RDS lookup still uses the secret's.
    type: str
  login_port:
    description: Overrides the secret's C(port).
    type: int
  ssl_ca:
    description: CA bundle to verify the source's TLS certificate (the RDS bundle); without it no TLS.
    type: path
  db_instance_identifier:
    description:
      - The RDS instance of the source. Without it the module looks for the instance whose endpoint address
        and port are the secret's; none found means self-managed.
    type: str
  rds_lookup:
    description: Ask the RDS API at all; V(false) treats the source as self-managed.
    type: bool
    default: true
  expected_full_load_hours:
    description: How long the full load is expected to take; the binary log must be kept longer.
    type: float
    default: 6
  catch_up_hours:
    description: The time CDC needs to catch up after the full load, on top of O(expected_full_load_hours).
    type: float
    default: 24
  lob_max_size_kb:
    description: The task's LobMaxSize (limited LOB mode); longer values would be truncated.
    type: int
    default: 32
  lob_scan:
    description: Read C(MAX(LENGTH(col))) of every LOB column (a full scan of those tables).
    type: bool
    default: true
  deep_scan:
    description: Count zero dates in every DATE/DATETIME/TIMESTAMP column (a full scan of every table).
    type: bool
    default: false
  dms_engine_version:
    description: The DMS engine version planned; 3.4.7 and older need C(binlog_checksum=NONE).
    type: str
    default: 3.5.4
  connect_timeout:
    description: Seconds to wait for the port and the login.
    type: int
    default: 10
requirements:
  - PyMySQL
  - boto3
notes:
  - The replication user's password never appears in the result; the report names the secret instead.
  - Run it on a host in the network DMS will use (the dump host), so that the port check means something.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - name: AWS DMS - Using a MySQL-compatible database as a source
    description: The source database settings, privileges and limits AWS DMS needs from MySQL and MariaDB.
    link: https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.MySQL.html
"""

EXAMPLES = r"""
- name: Check the vendor's RDS as DMS's replication user, inventory as the dump user
  jram.dumphost.dms_readiness:
    secret_id: jram/dumphost/dms-replication
    admin_secret_id: jram/dumphost/basis-reader
    ssl_ca: /etc/dumpjob/rds-ca-bundle.pem
    expected_full_load_hours: 4
  register: readiness

- name: Stop when something blocks CDC
  ansible.builtin.assert:
    that: readiness.summary.ready
    fail_msg: "{{ readiness.findings | selectattr('severity', 'eq', 'fail') | map(attribute='id') | join(', ') }}"
"""

RETURN = r"""
findings:
  description: One finding per check.
  returned: always
  type: list
  elements: dict
  sample:
    - id: mariadb-check-binlog-format
      severity: fail
      observed: binlog_format=MIXED
      expected: binlog_format=ROW
      remediation: set binlog_format=ROW (parameter group / my.cnf); sessions opened before keep the old format
      objects: []
summary:
  description: Counts per severity and C(ready) (no V(fail) finding).
  returned: always
  type: dict
  sample: {fail: 3, warn: 5, info: 20, ready: false}
source:
  description: What the source is.
  returned: always
  type: dict
  sample: {endpoint: "vendor.abc.ap-northeast-1.rds.amazonaws.com:3306", flavor: mysql, version: 8.0.39,
           rds_identifier: vendor-basis, engine: mysql, binlog_position: {file: mysql-bin-changelog.000123, position: 157}}
changes:
  description: The exact changes to ask for.
  returned: always
  type: dict
  sample:
    sql: ["GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO 'dms'@'%';",
          "CALL mysql.rds_set_configuration('binlog retention hours', 30);"]
    parameters: {binlog_format: ROW}
    aws_cli: ["aws rds modify-db-parameter-group --db-parameter-group-name vendor ..."]
    my_cnf: []
report:
  description: Everything above in one dict, for a JSON report, with C(checked_on), the day (UTC) of the check.
  returned: always
  type: dict
  sample: {source: {}, summary: {}, findings: [], changes: {}, databases: [basis], login_user: "'dms'@'%'",
           checked_on: "2026-11-30"}
markdown:
  description: The report for the source's owner, in Markdown.
  returned: always
  type: str
  sample: "# DMS readiness of vendor.abc...:3306 ..."
"""

import os
from datetime import datetime, timezone

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    BotoCoreError = ClientError = None  # AnsibleAWSModule reports the missing botocore

try:
    import pymysql
except ImportError:
    pymysql = None

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import dms_checks as checks
from ansible_collections.jram.dumphost.plugins.module_utils import dms_source as source
from ansible_collections.jram.dumphost.plugins.module_utils.dms_secrets import read_secret


def rds_instance(module, client, identifier, host, port):
    """The RDS facts of the source, None when self-managed; raises AWS errors."""
    if identifier:
        try:
            instances = client.describe_db_instances(DBInstanceIdentifier=identifier, aws_retry=True)["DBInstances"]
        except is_boto3_error_code("DBInstanceNotFound"):
            module.fail_json(msg=f"RDS instance {identifier} does not exist: fix db_instance_identifier or omit it")
    else:
        pages = client.get_paginator("describe_db_instances").paginate()
        instances = [i for page in pages for i in page["DBInstances"]
                     if str(i.get("Endpoint", {}).get("Address", "")).lower() == host.lower()
                     and int(i.get("Endpoint", {}).get("Port", 0)) == int(port)]
        if not instances:
            return None
    inst = instances[0]
    groups = inst.get("DBParameterGroups") or [{}]
    group = groups[0].get("DBParameterGroupName")
    parameters = {}
    if group:
        for page in client.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group):
            for param in page.get("Parameters", []):
                if param.get("ParameterName") in checks.PARAMETERS and "ParameterValue" in param:
                    parameters[param["ParameterName"]] = param["ParameterValue"]
    return {"identifier": inst["DBInstanceIdentifier"], "engine": inst.get("Engine"),
            "engine_version": inst.get("EngineVersion"), "backup_retention_period": int(inst.get("BackupRetentionPeriod", 0)),
            "parameter_group": group, "parameters": parameters,
            "replica_of": inst.get("ReadReplicaSourceDBInstanceIdentifier")}


def open_login(module, login, what):
    """(connection, None) or (None, error) for a refused login; fails on anything else."""
    p = module.params
    try:
        return source.connect(pymysql, login, p["ssl_ca"], p["connect_timeout"]), None
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else 0
        if code in (1044, 1045, 1698):
            return None, f"{code}: {exc.args[1]}"
        module.fail_json(msg=f"cannot connect to {login['host']}:{login['port']} as {what}: {exc}; "
                             "check the address, the security group and ssl_ca")
    except pymysql.MySQLError as exc:
        module.fail_json(msg=f"cannot connect to {login['host']}:{login['port']} as {what}: {exc}")


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            secret_id=dict(type="str", required=True),
            admin_secret_id=dict(type="str"),
            databases=dict(type="list", elements="str"),
            login_host=dict(type="str"),
            login_port=dict(type="int"),
            ssl_ca=dict(type="path"),
            db_instance_identifier=dict(type="str"),
            rds_lookup=dict(type="bool", default=True),
            expected_full_load_hours=dict(type="float", default=6),
            catch_up_hours=dict(type="float", default=24),
            lob_max_size_kb=dict(type="int", default=32),
            lob_scan=dict(type="bool", default=True),
            deep_scan=dict(type="bool", default=False),
            dms_engine_version=dict(type="str", default="3.5.4"),
            connect_timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    if pymysql is None:
        module.fail_json(msg=missing_required_lib("PyMySQL"))
    p = module.params
    for name in ("expected_full_load_hours", "catch_up_hours", "lob_max_size_kb", "connect_timeout"):
        if p[name] < 0 or (name == "connect_timeout" and p[name] == 0):
            module.fail_json(msg=f"{name} must be positive, got {p[name]}")
    if p["ssl_ca"] and not os.path.isfile(p["ssl_ca"]):
        module.fail_json(msg=f"ssl_ca {p['ssl_ca']} is not a file: point it at the source's CA bundle")
    secrets = module.client("secretsmanager", retry_decorator=AWSRetry.jittered_backoff())
    repl_secret = read_secret(module, secrets, p["secret_id"])
    admin_secret = read_secret(module, secrets, p["admin_secret_id"]) if p["admin_secret_id"] else None
    databases = p["databases"] or ([repl_secret["dbname"]] if repl_secret.get("dbname") else [])
    if not databases:
        module.fail_json(msg=f"no databases: secret {p['secret_id']} has no dbname; set databases")
    host = p["login_host"] or repl_secret["host"]
    port = p["login_port"] or int(repl_secret["port"])

    rds, rds_error = None, ""
    if p["rds_lookup"] or p["db_instance_identifier"]:
        rds_client = module.client("rds", retry_decorator=AWSRetry.jittered_backoff())
        try:
            rds = rds_instance(module, rds_client, p["db_instance_identifier"], repl_secret["host"],
                               int(repl_secret["port"]))
        except (BotoCoreError, ClientError) as e:
            if p["db_instance_identifier"]:
                module.fail_json_aws(e, msg=f"cannot describe RDS instance {p['db_instance_identifier']}; "
                                            "grant rds:DescribeDBInstances and rds:DescribeDBParameters")
            rds_error = str(e)

    network = source.port_reachable(host, port, p["connect_timeout"])
    if not network["reachable"]:
        module.fail_json(msg=f"{host}:{port} is not reachable from this host ({network['error']}): "
                             "allow it in the source's security group / firewall")
    repl_login = {**repl_secret, "host": host, "port": port}
    repl, repl_error = open_login(module, repl_login, f"{repl_secret['username']} (secret {p['secret_id']})")
    admin = None
    if admin_secret:
        admin_login = {**admin_secret, "host": host, "port": port}
        admin, admin_error = open_login(module, admin_login, f"{admin_secret['username']} (secret {p['admin_secret_id']})")
        if admin is None:
            module.fail_json(msg=f"{admin_secret['username']} (secret {p['admin_secret_id']}) cannot log in "
                                 f"({admin_error}): fix the secret or omit admin_secret_id")
    if repl is None and admin is None:
        module.fail_json(msg=f"{repl_secret['username']} (secret {p['secret_id']}) cannot log in ({repl_error}) and "
                             "no admin_secret_id is given: create the replication user, or give the dump's secret")
    options = {k: p[k] for k in ("expected_full_load_hours", "catch_up_hours", "lob_max_size_kb", "lob_scan",
                                 "deep_scan", "dms_engine_version")}
    options["databases"] = databases
    try:
        facts = source.gather(pymysql, repl, admin, databases, rds, options)
        if repl is not None:
            user_host = source.rows(repl, "SELECT CURRENT_USER()")[0][0]
            name, _sep, at = user_host.rpartition("@")
            user_host = f"{checks.quote(name)}@{checks.quote(at)}"
        else:
            user_host = f"{checks.quote(repl_secret['username'])}@'%'"
    except pymysql.MySQLError as exc:
        module.fail_json(msg=f"reading the source failed: {exc}; give the replication user SELECT on "
                             f"{', '.join(databases)} or pass admin_secret_id")
    finally:
        for conn in (repl, admin):
            if conn is not None:
                conn.close()
    facts["network"] = network
    facts["login"] = {"ok": repl is not None, "user": repl_secret["username"], "user_host": user_host,
                      "error": repl_error or "", "secret": p["secret_id"]}
    found = checks.findings(facts, options)
    if rds_error:
        found.append(checks.finding("rds-api", "warn", f"the RDS API did not answer: {rds_error}",
                                    "rds:DescribeDBInstances answers",
                                    "grant rds:DescribeDBInstances and rds:DescribeDBParameters, or set rds_lookup: false"))
    summary = checks.summary(found)
    changes = checks.changes(facts, found, options)
    src = {"endpoint": f"{host}:{port}", "flavor": facts["flavor"], "version": facts["version"],
           "rds_identifier": rds["identifier"] if rds else None, "engine": rds["engine"] if rds else None,
           "binlog_position": facts["binlog_position"], "inventory_login": facts["inventory_login"]}
    # The day (UTC) of the check, not the time: a report re-written by a run on another day shows
    # it was checked again, while re-runs the same day leave the file as it is.
    report = {"source": src, "summary": summary, "findings": found, "changes": changes, "databases": databases,
              "login_user": user_host, "options": options,
              "checked_on": datetime.now(timezone.utc).date().isoformat()}
    module.exit_json(changed=False, findings=found, summary=summary, source=src, changes=changes, report=report,
                     markdown=checks.markdown(report))


if __name__ == "__main__":
    main()
