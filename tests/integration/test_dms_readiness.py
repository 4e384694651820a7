"""dms_readiness against the sandbox's real MariaDB and moto: today's source (no binary log), the
"vendor ready" source (python -m sandbox vendor-ready on), single mutations that flip exactly
one finding, the report's SQL replayed by the admin, and the playbook writing the report.

One MariaDB for the whole module: the vendor-ready switch (a restart, a few seconds) is turned
on once and put back as found; every mutation is undone in a finally block."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import pytest
from sandboxtest import RECAP, collections_root, run_module, run_playbook

from sandbox import mariadb
from sandbox.config import LEGACY_DB_PASSWORD, LEGACY_DB_USER

COLLECTIONS = collections_root()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.jram.dumphost.plugins.modules import dms_readiness  # noqa: E402

# The vendor-ready switch restarts the sandbox's MariaDB, which every other module uses: make test
# runs this module alone, after the parallel part.
pytestmark = pytest.mark.serial

REPL_SECRET = "jram/dumphost/dms-replication-test"
ADMIN_SECRET = "jram/dumphost/dms-admin-test"
INSTANCE = "basis-vendor-test"
GROUP = "basis-vendor-test"
WRITES = ("Com_insert", "Com_update", "Com_delete", "Com_replace", "Com_create_table", "Com_drop_table",
          "Com_alter_table", "Com_grant", "Com_revoke", "Com_create_user", "Com_call_procedure",
          "Innodb_rows_inserted", "Innodb_rows_updated", "Innodb_rows_deleted")


def _counters(sandbox) -> dict:
    names = ", ".join(f"'{n}'" for n in WRITES)
    out = sandbox.sql(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
    counters = dict(line.split("\t") for line in out.splitlines())
    out = sandbox.sql("SHOW MASTER STATUS")
    counters["binlog"] = out.strip()
    return counters


@pytest.fixture(scope="module")
def dms(sandbox):
    was_ready = mariadb.vendor_ready(sandbox.settings)
    if was_ready:
        mariadb.set_vendor_ready(sandbox.settings, False)
    sm = sandbox.client("secretsmanager")
    rds = sandbox.client("rds")
    port = sandbox.settings.mariadb_port
    for name, user, password in ((REPL_SECRET, mariadb.DMS_REPLICATION_USER, mariadb.DMS_REPLICATION_PASSWORD),
                                 (ADMIN_SECRET, LEGACY_DB_USER, LEGACY_DB_PASSWORD)):
        sm.create_secret(Name=name, SecretString=json.dumps(
            {"engine": "mariadb", "host": "127.0.0.1", "port": port, "username": user, "password": password,
             "dbname": "basis"}))
    # The vendor's RDS instance as the AWS API describes it (moto's parameter groups start empty).
    rds.create_db_parameter_group(DBParameterGroupName=GROUP, DBParameterGroupFamily="mariadb10.11",
                                  Description="basis vendor")
    rds.modify_db_parameter_group(DBParameterGroupName=GROUP, Parameters=[
        {"ParameterName": "binlog_format", "ParameterValue": "ROW", "ApplyMethod": "immediate"},
        {"ParameterName": "binlog_row_image", "ParameterValue": "FULL", "ApplyMethod": "immediate"}])
    rds.create_db_instance(DBInstanceIdentifier=INSTANCE, DBInstanceClass="db.t3.medium", Engine="mariadb",
                           EngineVersion="10.11.9", AllocatedStorage=20, MasterUsername="admin",
                           MasterUserPassword="not-used-1", BackupRetentionPeriod=7, DBParameterGroupName=GROUP)
    try:
        yield sandbox
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=INSTANCE, SkipFinalSnapshot=True)
        rds.delete_db_parameter_group(DBParameterGroupName=GROUP)
        for name in (REPL_SECRET, ADMIN_SECRET):
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        if mariadb.vendor_ready(sandbox.settings) != was_ready:
            mariadb.set_vendor_ready(sandbox.settings, was_ready)


def readiness(box, check=False, **args) -> dict:
    params = {"secret_id": REPL_SECRET, "admin_secret_id": ADMIN_SECRET, "ssl_ca": box.env["MARIADB_SSL_CA"],
              "endpoint_url": box.env["AWS_ENDPOINT_URL"], "region": box.env["AWS_DEFAULT_REGION"],
              "access_key": "sandbox", "secret_key": "sandbox", **args}
    before = _counters(box)
    result = run_module(dms_readiness.main, params, check=check)
    assert not result.get("failed"), result.get("msg")
    assert _counters(box) == before, "the readiness check wrote to the source"
    assert result["changed"] is False
    assert mariadb.DMS_REPLICATION_PASSWORD not in json.dumps(result)
    return result


def by_id(result) -> dict:
    return {f["id"]: f for f in result["findings"]}


def state(result) -> dict:
    return {f["id"]: (f["severity"], f["observed"], tuple(f["objects"])) for f in result["findings"]}


def test_todays_source_is_not_ready(dms):
    result = readiness(dms, check=True)
    f = by_id(result)
    assert result["source"]["flavor"] == "mariadb" and result["source"]["rds_identifier"] is None
    for fid in ("mariadb-check-binlog-enabled", "mariadb-check-binlog-format", "mariadb-check-expire-logs-days",
                "replication-user-login"):
        assert f[fid]["severity"] == "fail", f[fid]
    assert f["mariadb-check-supported-version"]["severity"] == "warn"
    assert f["table-with-no-primary-key-or-unique-constraint"]["objects"] == ["access_logs"]
    assert f["full-lob-not-nullable-at-target"]["objects"] == ["documents.body"]
    assert "documents.body mediumblob" in f["lob-truncation"]["observed"]
    assert f["source-triggers"]["severity"] == "warn"
    assert f["source-triggers"]["objects"] == ["trg_contracts_status_history (AFTER UPDATE ON contracts)"]
    assert result["summary"]["ready"] is False
    assert "CREATE USER IF NOT EXISTS 'dms_repl'@'%'" in result["changes"]["sql"][0]
    assert "log_bin = mysql-bin" in result["changes"]["my_cnf"]


@pytest.fixture(scope="module")
def ready(dms):
    mariadb.set_vendor_ready(dms.settings, True)
    return dms


def test_vendor_ready_source_passes(ready):
    rds = readiness(ready, db_instance_identifier=INSTANCE)
    assert rds["source"]["rds_identifier"] == INSTANCE
    assert rds["summary"]["ready"] is True, [f for f in rds["findings"] if f["severity"] == "fail"]
    assert by_id(rds)["mariadb-check-binlog-retention-time"]["observed"] == "binlog retention hours=48"
    assert rds["changes"]["sql"] == [] and rds["changes"]["aws_cli"] == []
    assert rds["source"]["binlog_position"]["file"].startswith("mysql-bin.")
    # without the instance: self-managed, retention from binlog_expire_logs_seconds
    own = readiness(ready, rds_lookup=False)
    assert own["summary"]["ready"] is True
    assert by_id(own)["mariadb-check-expire-logs-days"]["severity"] == "info"


MUTATIONS = [
    ("revoke", "REVOKE REPLICATION SLAVE ON *.* FROM 'dms_repl'@'%'",
     "GRANT REPLICATION SLAVE ON *.* TO 'dms_repl'@'%'", "mariadb-check-replication-privileges", "fail"),
    ("binlog_format", "SET GLOBAL binlog_format = 'MIXED'", "SET GLOBAL binlog_format = 'ROW'",
     "mariadb-check-binlog-format", "fail"),
    ("retention", "CALL mysql.rds_set_configuration('binlog retention hours', NULL)",
     "CALL mysql.rds_set_configuration('binlog retention hours', 48)", "mariadb-check-binlog-retention-time", "fail"),
    # A table of a database of this test's own: other tests dump `basis` at the same time.
    ("primary_key", "ALTER TABLE dms_probe.ledger DROP PRIMARY KEY",
     "ALTER TABLE dms_probe.ledger ADD PRIMARY KEY (id)", "table-with-no-primary-key-or-unique-constraint", "warn"),
]
DATABASES = ["basis", "dms_probe"]


@pytest.fixture(scope="module")
def probe(ready):
    ready.sql("CREATE DATABASE dms_probe; CREATE TABLE dms_probe.ledger (id INT PRIMARY KEY, note VARCHAR(20));"
              "GRANT SELECT ON dms_probe.* TO 'dms_repl'@'%'")
    try:
        yield ready
    finally:
        ready.sql("DROP DATABASE dms_probe; REVOKE SELECT ON dms_probe.* FROM 'dms_repl'@'%'")


@pytest.mark.parametrize(("name", "mutate", "restore", "fid", "severity"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_one_mutation_flips_one_finding(probe, name, mutate, restore, fid, severity):
    first = readiness(probe, db_instance_identifier=INSTANCE, databases=DATABASES)
    assert first["summary"]["ready"] is True
    baseline = state(first)
    probe.sql(mutate)
    try:
        after = readiness(probe, db_instance_identifier=INSTANCE, databases=DATABASES)
    finally:
        probe.sql(restore)
    changed = {k for k in baseline.keys() | state(after).keys() if baseline.get(k) != state(after).get(k)}
    assert changed == {fid}, changed
    assert by_id(after)[fid]["severity"] == severity
    if name == "primary_key":
        assert by_id(after)[fid]["objects"] == ["basis.access_logs", "dms_probe.ledger"]


def _replay(box, statements):
    for statement in statements:
        box.sql(statement)


def test_report_sql_makes_the_next_run_pass_on_rds(ready):
    ready.sql("REVOKE REPLICATION SLAVE ON *.* FROM 'dms_repl'@'%'; REVOKE SELECT ON basis.* FROM 'dms_repl'@'%';"
              "CALL mysql.rds_set_configuration('binlog retention hours', NULL)")
    try:
        before = readiness(ready, db_instance_identifier=INSTANCE, expected_full_load_hours=10, catch_up_hours=30)
        assert before["summary"]["ready"] is False
        assert before["changes"]["sql"] == [
            "GRANT REPLICATION SLAVE ON *.* TO 'dms_repl'@'%';",
            "GRANT SELECT ON `basis`.* TO 'dms_repl'@'%';",
            "CALL mysql.rds_set_configuration('binlog retention hours', 40);"]
        assert "GRANT SELECT ON `basis`.* TO 'dms_repl'@'%';" in before["markdown"]
        _replay(ready, before["changes"]["sql"])
        after = readiness(ready, db_instance_identifier=INSTANCE, expected_full_load_hours=10, catch_up_hours=30)
        assert after["summary"]["ready"] is True, [f for f in after["findings"] if f["severity"] == "fail"]
    finally:
        ready.sql("GRANT REPLICATION SLAVE ON *.* TO 'dms_repl'@'%'; GRANT SELECT ON basis.* TO 'dms_repl'@'%';"
                  "CALL mysql.rds_set_configuration('binlog retention hours', 48)")


def test_report_sql_makes_the_next_run_pass_self_managed(ready):
    ready.sql("SET GLOBAL binlog_format = 'MIXED'; SET GLOBAL binlog_expire_logs_seconds = 3600")
    try:
        before = readiness(ready, rds_lookup=False)
        assert {f["id"] for f in before["findings"] if f["severity"] == "fail"} == {
            "mariadb-check-binlog-format", "mariadb-check-expire-logs-days"}
        assert before["changes"]["sql"] == ["SET GLOBAL binlog_format = 'ROW';",
                                            "SET GLOBAL binlog_expire_logs_seconds = 108000;"]
        assert before["changes"]["my_cnf"] == ["binlog_format = ROW", "binlog_expire_logs_seconds = 108000"]
        _replay(ready, before["changes"]["sql"])
        assert readiness(ready, rds_lookup=False)["summary"]["ready"] is True
    finally:
        ready.sql("SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_expire_logs_seconds = 172800")


def _changed(proc) -> int:
    return sum(int(m.group(2)) for m in RECAP.finditer(proc.stdout))


def test_playbook_writes_the_report(ready, tmp_path):
    out = tmp_path / "report"
    env = {**ready.env, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
    args = ["-e", "dms_readiness_hosts=localhost", "-e", f"dms_readiness_report_dir={out}",
            "-e", f"dms_readiness_secret_id={REPL_SECRET}", "-e", f"dms_readiness_admin_secret_id={ADMIN_SECRET}",
            "-e", f"dms_readiness_ssl_ca={ready.env['MARIADB_SSL_CA']}",
            "-e", f"dms_readiness_db_instance_identifier={INSTANCE}", "-e", f"dms_readiness_python={sys.executable}"]
    before = _counters(ready)
    first = run_playbook("playbooks/dms_readiness.yml", *args, env=env)
    assert _changed(first) == 3  # the directory and the two files; the check itself changes nothing
    report = json.loads((out / "dms_readiness.json").read_text())
    assert report["summary"]["ready"] is True and report["source"]["rds_identifier"] == INSTANCE
    assert report["checked_on"] == datetime.now(timezone.utc).date().isoformat()  # the provisioning gate's age
    assert "Verdict: **ready**" in (out / "dms_readiness.md").read_text()
    assert oct((out / "dms_readiness.json").stat().st_mode & 0o777) == "0o640"
    second = run_playbook("playbooks/dms_readiness.yml", *args, env=env)
    assert _changed(second) == 0 and "failed=0" in second.stdout
    # a source that is not ready: the report is still written, and require_ready stops the play with one line
    ready.sql("SET GLOBAL binlog_format = 'MIXED'")
    try:
        refused = run_playbook("playbooks/dms_readiness.yml", *args, "-e", "dms_readiness_require_ready=true",
                               env=env, check=False)
    finally:
        ready.sql("SET GLOBAL binlog_format = 'ROW'")
    assert refused.returncode != 0
    assert "not ready for DMS: mariadb-check-binlog-format" in refused.stdout
    assert json.loads((out / "dms_readiness.json").read_text())["summary"]["ready"] is False
    assert _counters(ready) == before


def test_the_dms_target_stand_in(sandbox):
    """`python -m sandbox dms-target up`: a second, empty MariaDB with local_infile on, reached
    over verified TLS as the account DMS writes as; the source is not touched."""
    import pymysql

    was_running = mariadb.target_running(sandbox.settings)
    before = _counters(sandbox)
    mariadb.target_up(sandbox.settings)
    try:
        conn = pymysql.connect(host="127.0.0.1", port=mariadb.target_port(sandbox.settings),
                               user=mariadb.DMS_TARGET_USER, password=mariadb.DMS_TARGET_PASSWORD, database="basis",
                               ssl={"ca": sandbox.env["MARIADB_SSL_CA"]}, autocommit=True)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT @@local_infile, @@port, VERSION()")
            local_infile, port, version = cur.fetchone()
            assert (local_infile, port) == (1, mariadb.target_port(sandbox.settings)) and "MariaDB" in version
            cur.execute("CREATE TABLE probe (id INT PRIMARY KEY)")
            cur.execute("DROP TABLE probe")
            cur.execute("SHOW TABLES")
            assert cur.fetchall() == ()
    finally:
        if not was_running:
            mariadb.target_down(sandbox.settings)
    assert _counters(sandbox) == before
