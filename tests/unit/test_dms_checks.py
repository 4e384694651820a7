"""dms_checks on facts shaped as dms_source reads them: the production side the sandbox cannot
show (MySQL 8 on RDS, a replica, an old DMS engine, an unset parameter group, retention beyond
RDS's 168 hours), the grant spellings of both flavours, and the report's Markdown and changes.
The MariaDB side runs against the real server in tests/integration/test_dms_readiness.py."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import dms_checks as checks

OPTIONS = {"expected_full_load_hours": 6, "catch_up_hours": 24, "lob_max_size_kb": 32, "lob_scan": True,
           "deep_scan": False, "dms_engine_version": "3.5.4", "databases": ["basis"]}
MYSQL8_GRANTS = ["GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dms`@`%`"]


def rds_mysql8() -> dict:
    """A vendor-ready RDS for MySQL 8.0 source."""
    return {
        "flavor": "mysql", "version": "8.0.39",
        "variables": {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_checksum": "CRC32",
                      "binlog_transaction_compression": "OFF", "server_id": "1234", "binlog_expire_logs_seconds": "0",
                      "read_only": "OFF", "innodb_read_only": "OFF", "time_zone": "UTC", "system_time_zone": "UTC",
                      "net_read_timeout": "300", "net_write_timeout": "300", "wait_timeout": "28800",
                      "max_execution_time": "0", "max_allowed_packet": "67108864"},
        "rds": {"identifier": "vendor-basis", "engine": "mysql", "engine_version": "8.0.39",
                "backup_retention_period": 7, "parameter_group": "vendor-basis",
                "parameters": {"binlog_format": "ROW", "binlog_row_image": "FULL"}, "replica_of": None},
        "rds_retention_hours": 48, "rds_retention_error": "",
        "grants": list(MYSQL8_GRANTS), "replica": False,
        "tables": [{"name": "contracts", "schema": "basis", "table": "contracts", "engine": "InnoDB", "has_key": True}],
        "lob_columns": [], "generated_columns": [], "invisible_columns": [], "cascading_fks": [], "partitioned": [],
        "triggers": [], "views": [], "routines": [], "typed_columns": [], "timestamp_columns": [],
        "charset_columns": [], "zero_dates": {},
        "network": {"host": "vendor.example", "port": 3306, "reachable": True, "error": ""},
        "login": {"ok": True, "user": "dms", "user_host": "'dms'@'%'", "error": "", "secret": "jram/dms"},
    }


def run(facts, **options):
    opts = {**OPTIONS, **options}
    found = checks.findings(facts, opts)
    return {f["id"]: f for f in found}, checks.changes(facts, found, opts), found


def fails(by_id) -> set:
    return {k for k, f in by_id.items() if f["severity"] == "fail"}


def test_a_ready_mysql8_rds_source_has_no_failure_and_nothing_to_ask_for():
    by_id, changes, found = run(rds_mysql8())
    assert fails(by_id) == set()
    assert all(f["severity"] in checks.SEVERITIES and set(f) == {"id", "severity", "observed", "expected",
                                                                 "remediation", "objects"} for f in found)
    assert by_id["mysql-check-binlog-retention-time"]["severity"] == "info"
    assert "mysql-check-expire-logs-days" not in by_id  # RDS keeps binlogs by its own setting
    assert changes == {"sql": [], "parameters": {}, "aws_cli": [], "my_cnf": []}
    assert checks.summary(found)["ready"] is True


@pytest.mark.parametrize(("flavor", "version", "ok"), [
    ("mysql", "5.5.62", True), ("mysql", "8.0.39", True), ("mysql", "8.4.3", True), ("mysql", "9.1.0", False),
    ("mysql", "5.1.73", False), ("mariadb", "10.0.23-MariaDB", False), ("mariadb", "10.0.24-MariaDB", True),
    ("mariadb", "10.6.19-MariaDB-log", True), ("mariadb", "10.11.19-MariaDB-0+deb12u1-log", False),
    ("mariadb", "11.4.4-MariaDB", True), ("mariadb", "11.4.2-MariaDB", False),
])
def test_supported_versions_follow_the_user_guide(flavor, version, ok):
    assert checks.supported_version(flavor, version) is ok


def test_grants_of_both_flavours():
    mariadb = checks.parse_grants(["GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `dms`@`%`",
                                   "GRANT SELECT ON `basis`.* TO `dms`@`%`"])
    assert checks.missing_grants(mariadb, ["basis"]) == {}
    assert checks.missing_grants(checks.parse_grants(MYSQL8_GRANTS), ["basis", "other"]) == {}
    partial = checks.parse_grants(["GRANT REPLICATION CLIENT ON *.* TO `dms`@`%`"])
    assert checks.missing_grants(partial, ["basis"]) == {"*.*": ["REPLICATION SLAVE"], "basis.*": ["SELECT"]}
    assert checks.missing_grants(checks.parse_grants(["GRANT ALL PRIVILEGES ON *.* TO `root`@`%`"]), ["basis"]) == {}


def test_missing_grants_become_grant_statements():
    facts = rds_mysql8()
    facts["grants"] = ["GRANT REPLICATION SLAVE ON *.* TO `dms`@`%`"]
    by_id, changes, _ = run(facts)
    assert fails(by_id) == {"mysql-check-replication-privileges", "mysql-check-select-privileges"}
    assert by_id["mysql-check-replication-privileges"]["objects"] == ["REPLICATION CLIENT"]
    assert changes["sql"] == ["GRANT REPLICATION CLIENT ON *.* TO 'dms'@'%';",
                              "GRANT SELECT ON `basis`.* TO 'dms'@'%';"]


def test_a_missing_replication_user_is_created_without_its_password_in_the_report():
    facts = rds_mysql8()
    facts["login"] = {**facts["login"], "ok": False, "error": "1045: Access denied"}
    facts["grants"] = []
    by_id, changes, _ = run(facts)
    assert "replication-user-login" in fails(by_id)
    assert "mysql-check-replication-privileges" not in by_id  # nothing to judge without a login
    assert changes["sql"][0] == "CREATE USER IF NOT EXISTS 'dms'@'%' IDENTIFIED BY '<password from secret jram/dms>';"
    assert changes["sql"][1:] == ["GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO 'dms'@'%';",
                                  "GRANT SELECT ON `basis`.* TO 'dms'@'%';"]


@pytest.mark.parametrize(("hours", "load", "catch_up", "severity"), [
    (None, 6, 24, "fail"), (24, 6, 24, "fail"), (30, 6, 24, "info"), (168, 100, 100, "fail"),
])
def test_rds_retention_against_the_expected_load_and_catch_up(hours, load, catch_up, severity):
    facts = rds_mysql8()
    facts["rds_retention_hours"] = hours
    by_id, changes, _ = run(facts, expected_full_load_hours=load, catch_up_hours=catch_up)
    assert by_id["mysql-check-binlog-retention-time"]["severity"] == severity
    if severity == "fail":
        want = min(max(24, load + catch_up), 168)
        assert changes["sql"] == [f"CALL mysql.rds_set_configuration('binlog retention hours', {want});"]
    if load + catch_up > 168:
        assert "at most 168 h" in by_id["mysql-check-binlog-retention-time"]["remediation"]


@pytest.mark.parametrize(("seconds", "days", "severity"), [("0", "0", "info"), ("3600", "0", "fail"),
                                                           ("0", "2", "info"), ("0", "1", "fail"),
                                                           ("172800", "0", "info")])
def test_self_managed_retention(seconds, days, severity):
    facts = rds_mysql8()
    facts["rds"] = None
    facts["variables"].update(binlog_expire_logs_seconds=seconds, expire_logs_days=days)
    by_id, changes, _ = run(facts)
    assert by_id["mysql-check-expire-logs-days"]["severity"] == severity
    assert ("SET GLOBAL binlog_expire_logs_seconds = 108000;" in changes["sql"]) is (severity == "fail")


def test_binlog_off_on_rds_asks_for_backups_and_fails_retention():
    facts = rds_mysql8()
    facts["variables"]["log_bin"] = "OFF"
    facts["rds"]["backup_retention_period"] = 0
    by_id, changes, _ = run(facts)
    assert fails(by_id) == {"mysql-check-binlog-enabled", "mysql-check-binlog-retention-time"}
    assert "aws rds modify-db-instance --db-instance-identifier vendor-basis --backup-retention-period 1 " \
           "--apply-immediately" in changes["aws_cli"]


def test_parameter_group_changes_and_a_pending_reboot():
    facts = rds_mysql8()
    facts["rds"]["parameters"] = {}  # a default group: nothing set explicitly
    by_id, changes, _ = run(facts)
    assert by_id["rds-parameter-group"]["severity"] == "warn"
    assert changes["parameters"] == {"binlog_format": "ROW", "binlog_row_image": "FULL"}
    assert changes["aws_cli"] == ["aws rds modify-db-parameter-group --db-parameter-group-name vendor-basis "
                                  "--parameters ParameterName=binlog_format,ParameterValue=ROW,ApplyMethod=immediate "
                                  "ParameterName=binlog_row_image,ParameterValue=FULL,ApplyMethod=immediate"]
    facts = rds_mysql8()
    facts["variables"]["binlog_format"] = "MIXED"  # the group says ROW; the server was not rebooted
    by_id, changes, _ = run(facts)
    assert fails(by_id) == {"mysql-check-binlog-format"}
    assert changes["parameters"] == {}
    assert changes["aws_cli"][0].startswith("aws rds reboot-db-instance --db-instance-identifier vendor-basis")
    facts["rds"]["parameters"]["binlog_format"] = "MIXED"
    by_id, _, _ = run(facts)
    assert fails(by_id) == {"mysql-check-binlog-format", "rds-parameter-group"}


def test_mysql_compression_checksum_and_replicas():
    facts = rds_mysql8()
    facts["variables"]["binlog_transaction_compression"] = "ON"
    by_id, changes, _ = run(facts, dms_engine_version="3.4.7")
    assert fails(by_id) == {"mysql-check-binlog-compression", "binlog-checksum"}
    assert changes["parameters"] == {"binlog_transaction_compression": "OFF", "binlog_checksum": "NONE"}
    replica = rds_mysql8()
    replica["replica"] = "vendor-primary"
    by_id, _, _ = run(replica)
    assert by_id["mysql-check-source-replica"]["severity"] == "fail"
    replica["variables"]["log_replica_updates"] = "ON"
    by_id, _, _ = run(replica)
    assert by_id["mysql-check-source-replica"]["severity"] == "warn"
    unknown = rds_mysql8()
    unknown["replica"] = None
    assert run(unknown)[0]["mysql-check-database-role"]["severity"] == "warn"


def test_schema_shapes():
    facts = rds_mysql8()
    facts["tables"] += [{"name": "logs", "schema": "basis", "table": "logs", "engine": "MyISAM", "has_key": False},
                        {"name": "docs", "schema": "basis", "table": "docs", "engine": "InnoDB", "has_key": False}]
    facts["lob_columns"] = [{"table": "docs", "column": "body", "type": "longblob", "nullable": False,
                             "max_length": 100_000_000}]
    facts["typed_columns"] = [{"table": "places", "column": "at", "type": "point"}]
    facts["timestamp_columns"] = ["contracts.updated_at"]
    facts["variables"]["time_zone"] = "Asia/Tokyo"
    facts["charset_columns"] = [{"table": "contracts", "column": "memo", "charset": "ujis"}]
    facts["variables"]["net_read_timeout"] = "30"
    by_id, _, _ = run(facts)
    assert by_id["table-with-no-primary-key-or-unique-constraint"]["objects"] == ["logs", "docs"]
    assert by_id["table-with-lob-but-without-primary-key-or-unique-constraint"]["severity"] == "fail"
    assert by_id["lob-truncation"]["objects"] == ["docs.body"]
    assert by_id["mysql-check-max-allowed-packet-lob"]["severity"] == "fail"
    assert by_id["full-lob-not-nullable-at-target"]["objects"] == ["docs.body"]
    assert by_id["mysql-check-table-storage-engine"]["objects"] == ["logs"]
    assert by_id["unsupported-data-types-in-source"]["objects"] == ["places.at"]
    assert by_id["timestamp-time-zone"]["severity"] == "warn"
    assert "ServerTimezone=Asia/Tokyo" in by_id["timestamp-time-zone"]["remediation"]
    assert by_id["character-sets"]["objects"] == ["contracts.memo (ujis)"]
    assert by_id["source-timeouts"]["objects"] == ["net_read_timeout"]


def test_zero_dates_only_with_the_deep_scan():
    facts = rds_mysql8()
    facts["zero_dates"] = {"contracts.end_date": 3}
    assert run(facts)[0]["zero-dates"]["observed"] == "not scanned (deep_scan=false)"
    found = run(facts, deep_scan=True)[0]["zero-dates"]
    assert found["severity"] == "warn" and found["objects"] == ["contracts.end_date"]


def test_markdown_lists_missing_ready_and_the_changes():
    facts = rds_mysql8()
    facts["rds_retention_hours"] = None
    facts["views"] = ["v|bar"]
    _, changes, found = run(facts)
    report = {"source": {"endpoint": "vendor.example:3306", "flavor": "mysql", "version": "8.0.39",
                         "rds_identifier": "vendor-basis"},
              "summary": checks.summary(found), "findings": found, "changes": changes, "databases": ["basis"],
              "login_user": "'dms'@'%'"}
    text = checks.markdown(report)
    assert "Verdict: **not ready** (1 missing" in text
    missing = text.split("## Missing")[1].split("## To decide")[0]
    assert "`mysql-check-binlog-retention-time`" in missing and "`mysql-check-binlog-format`" not in missing
    assert "CALL mysql.rds_set_configuration('binlog retention hours', 30);" in text
    assert "v\\|bar" in text  # a pipe in an object name does not break the table
    assert checks.as_json(report).startswith("{")
    before = copy.deepcopy(report)
    checks.markdown(report)
    assert report == before
