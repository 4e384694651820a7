"""dms_validate against the sandbox's real MariaDB source and the DMS target stand-in
(`python -m sandbox dms-target up`): the target loaded with a copy of the source compares
identical; one changed row, one missing row, one extra table (and a missing table, an extra
column, a changed row of the keyless table) are each reported for the right table; the ledger
records the day's verdict and the playbook's second run changes nothing.

Only the target is changed (the source's `basis` is dumped by other tests at the same time): a
fresh copy is loaded before each test. The source is not restarted, so the module is not serial."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sandboxtest import RECAP, collections_root, run_module, run_playbook

from sandbox import mariadb
from sandbox.config import LEGACY_DB_PASSWORD, LEGACY_DB_USER

COLLECTIONS = collections_root()
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.jram.dumphost.plugins.module_utils import dms_source, dms_validation  # noqa: E402
from ansible_collections.jram.dumphost.plugins.modules import (  # noqa: E402
    dms_validate,
    dms_validation_ledger_info,
)

SOURCE_SECRET = "jram/dumphost/dms-validate-source-test"
TARGET_SECRET = "jram/dumphost/dms-validate-target-test"
TABLES = ["basis.access_logs", "basis.contract_status_history", "basis.contracts", "basis.documents",
          "basis.payments", "basis.properties", "basis.rooms", "basis.tenants"]
WRITES = ("Com_insert", "Com_update", "Com_delete", "Com_replace", "Com_create_table", "Com_drop_table",
          "Com_alter_table", "Innodb_rows_inserted", "Innodb_rows_updated", "Innodb_rows_deleted")


def _target_counters(box) -> dict:
    names = ", ".join(f"'{n}'" for n in WRITES)
    out = target(box, f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
    return dict(line.split("\t") for line in out.splitlines())


@pytest.fixture(scope="module")
def dms(sandbox):
    was_running = mariadb.target_running(sandbox.settings)
    mariadb.target_up(sandbox.settings)
    sm = sandbox.client("secretsmanager")
    target_port = mariadb.target_port(sandbox.settings)
    for name, user, password, port in (
            (SOURCE_SECRET, LEGACY_DB_USER, LEGACY_DB_PASSWORD, sandbox.settings.mariadb_port),
            (TARGET_SECRET, mariadb.DMS_TARGET_USER, mariadb.DMS_TARGET_PASSWORD, target_port)):
        sm.create_secret(Name=name, SecretString=json.dumps(
            {"engine": "mariadb", "host": "127.0.0.1", "port": port, "username": user, "password": password,
             "dbname": "basis"}))
    try:
        yield sandbox
    finally:
        for name in (SOURCE_SECRET, TARGET_SECRET):
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        target(sandbox, "DROP DATABASE basis; CREATE DATABASE basis CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        if not was_running:
            mariadb.target_down(sandbox.settings)


def target(box, statements: str) -> str:
    return mariadb.target_sql(box.settings, statements)


@pytest.fixture
def copy(dms):
    """The target as a finished full load leaves it: a copy of the source's tables (no triggers:
    DMS does not copy them), loaded afresh for each test."""
    target(dms, "DROP DATABASE basis; CREATE DATABASE basis CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    dump = subprocess.run([mariadb._binary("mariadb-dump", "mysqldump"), "--no-defaults",
                           f"--socket={dms.settings.mariadb_socket}", "-uroot", "--single-transaction",
                           "--skip-triggers", "--hex-blob", "basis"], capture_output=True, check=True)
    subprocess.run(mariadb.client_argv(dms.settings, "basis", mariadb.target_socket(dms.settings)),
                   input=dump.stdout, capture_output=True, check=True)
    return dms


def validate(box, check=False, **args) -> dict:
    params = {"source_secret_id": SOURCE_SECRET, "target_secret_id": TARGET_SECRET,
              "ssl_ca": box.env["MARIADB_SSL_CA"], "chunk_rows": 700, "settle_rechecks": 0,
              "endpoint_url": box.env["AWS_ENDPOINT_URL"], "region": box.env["AWS_DEFAULT_REGION"],
              "access_key": "sandbox", "secret_key": "sandbox", **args}
    # The target's login may write (DMS writes as it) and nothing else writes to the target while this
    # module runs; the source's login (the dump's) may only read, and other tests write to the source.
    before = _target_counters(box)
    result = run_module(dms_validate.main, params, check=check)
    assert not result.get("failed"), result.get("msg")
    assert _target_counters(box) == before, "the comparison wrote to the target"
    assert result["changed"] is False
    text = json.dumps(result)
    assert LEGACY_DB_PASSWORD not in text and mariadb.DMS_TARGET_PASSWORD not in text
    return result


def by_table(result) -> dict:
    return {t["table"]: t for t in result["tables"]}


def test_a_copy_is_identical(copy):
    result = validate(copy, check=True)
    assert result["verdict"] == "identical", result["lines"]
    tables = by_table(result)
    assert sorted(tables) == TABLES  # the view is not compared
    assert all(t["verdict"] == "identical" for t in tables.values())
    assert tables["basis.access_logs"]["method"] == "multiset" and tables["basis.access_logs"]["key"] == []
    payments = tables["basis.payments"]
    assert (payments["method"], payments["key"], payments["key_kind"]) == ("key", ["id"], "primary")
    rows = int(copy.sql("SELECT COUNT(*) FROM basis.payments").strip())
    assert payments["source_rows"] == payments["target_rows"] == rows
    assert payments["chunks"] == rows // 700 + 1 and payments["differing_chunks"] == 0
    # The servers' digest is dumpjob's: the sum of the rows' SHA-256 modulo 2^256.
    columns = [(c, t) for c, t in (line.split("\t") for line in copy.sql(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'basis' AND "
        "TABLE_NAME = 'documents' ORDER BY ORDINAL_POSITION").splitlines())]
    hashes = copy.sql(f"SELECT {dms_validation.row_hash_sql(columns)} FROM basis.documents").split()
    assert tables["basis.documents"]["source_digest"] == dms_validation.multiset_digest(hashes)
    assert result["summary"] == {"tables": 8, "identical": 8, "columns_differ": 0, "rows_differ": 0,
                                 "missing_table": 0, "extra_table": 0}
    assert result["lines"] == []
    # a normal run is the same comparison
    again = validate(copy)
    assert [(t["table"], t["source_digest"]) for t in again["tables"]] == [
        (t["table"], t["source_digest"]) for t in result["tables"]]


def test_each_difference_is_reported_for_its_table(copy):
    payment = int(copy.sql("SELECT MIN(id) + 1000 FROM basis.payments").strip())
    target(copy, f"""
UPDATE basis.contracts SET monthly_rent_yen = monthly_rent_yen + 1 WHERE id = 17;
DELETE FROM basis.payments WHERE id = {payment};
CREATE TABLE basis.dms_extra (id INT PRIMARY KEY);
RENAME TABLE basis.properties TO basis.properties_moved;
ALTER TABLE basis.tenants ADD COLUMN dms_note VARCHAR(10) NULL;
UPDATE basis.access_logs SET action = 'changed' ORDER BY logged_at LIMIT 1;
""")
    result = validate(copy, settle_rechecks=1, settle_seconds=0)
    tables = by_table(result)
    assert result["verdict"] == "different"
    verdicts = {name: t["verdict"] for name, t in tables.items() if t["verdict"] != "identical"}
    assert verdicts == {"basis.contracts": "rows_differ", "basis.payments": "rows_differ",
                        "basis.dms_extra": "extra_table", "basis.properties": "missing_table",
                        "basis.properties_moved": "extra_table", "basis.tenants": "columns_differ",
                        "basis.access_logs": "rows_differ"}
    contracts = tables["basis.contracts"]
    assert (contracts["changed"], contracts["missing_on_target"], contracts["extra_on_target"]) == (1, 0, 0)
    assert contracts["sample_keys"]["changed"] == [17] and contracts["differing_chunks"] == 1
    assert contracts["rechecks"] == 1  # read again once before it counted
    payments = tables["basis.payments"]
    assert (payments["changed"], payments["missing_on_target"], payments["extra_on_target"]) == (0, 1, 0)
    assert payments["sample_keys"]["missing_on_target"] == [payment]
    assert payments["source_rows"] == payments["target_rows"] + 1
    assert tables["basis.tenants"]["columns"]["extra_on_target"] == ["dms_note"]
    assert tables["basis.properties"]["columns"]["missing_on_target"][0] == "id"
    logs = tables["basis.access_logs"]  # no key: one missing and one extra row, no key named
    assert (logs["method"], logs["changed"], logs["missing_on_target"], logs["extra_on_target"]) == (
        "multiset", None, 1, 1)
    assert logs["sample_keys"] == {"changed": [], "missing_on_target": [], "extra_on_target": []}
    assert result["details"]["tables"]["basis.payments"] == {
        "verdict": "rows_differ", "changed": 0, "missing_on_target": 1, "extra_on_target": 0,
        "columns_missing_on_target": [], "columns_extra_on_target": []}
    assert "'changed'" not in json.dumps(result) and "\"changed\"" not in json.dumps(result["lines"])
    assert any(line.startswith("basis.payments: rows differ (key, ") and "1 missing on target" in line
               for line in result["lines"])


def test_append_only_tables_compare_up_to_the_targets_high_water_mark(copy):
    # CDC has not applied the newest log rows yet: the target lacks the latest logged_at.
    newest = target(copy, "SELECT MAX(logged_at) FROM basis.access_logs").strip()
    target(copy, f"DELETE FROM basis.access_logs WHERE logged_at = '{newest}'")
    plain = by_table(validate(copy))["basis.access_logs"]
    assert plain["verdict"] == "rows_differ" and plain["missing_on_target"] >= 1
    marked = by_table(validate(copy, append_only={"basis.access_logs": "logged_at"}))["basis.access_logs"]
    assert marked["verdict"] == "identical"
    assert marked["high_water"]["column"] == "logged_at" and marked["high_water"]["value"] < newest
    refused = run_module(dms_validate.main, {
        "source_secret_id": SOURCE_SECRET, "target_secret_id": TARGET_SECRET, "append_only": {"access_logs": "id"},
        "endpoint_url": copy.env["AWS_ENDPOINT_URL"], "region": copy.env["AWS_DEFAULT_REGION"],
        "access_key": "sandbox", "secret_key": "sandbox"}, diff=False)
    assert refused["failed"] and "append_only takes database.table: column" in refused["msg"]


def test_settling_waits_once_per_round_for_every_table(copy):
    """Differing ranges of several tables are read again together: the wait is settle_rechecks x
    settle_seconds, however many ranges differ."""
    import pymysql
    import pymysql.cursors

    target(copy, "UPDATE basis.contracts SET status = 'cancelled' WHERE id IN (3, 1500);"
                 "DELETE FROM basis.payments WHERE id % 1000 = 7;"
                 "UPDATE basis.access_logs SET ip = '192.0.2.1' ORDER BY logged_at DESC LIMIT 1")
    logins = [{"host": "127.0.0.1", "port": copy.settings.mariadb_port, "username": LEGACY_DB_USER,
               "password": LEGACY_DB_PASSWORD},
              {"host": "127.0.0.1", "port": mariadb.target_port(copy.settings), "username": mariadb.DMS_TARGET_USER,
               "password": mariadb.DMS_TARGET_PASSWORD}]
    conns = [dms_source.connect(pymysql, login, copy.env["MARIADB_SSL_CA"], 10) for login in logins]
    waits = []
    try:
        for conn in conns:
            dms_validation.session(conn)
        comparison = dms_validation.Comparison(*conns, chunk_rows=500, settle_rechecks=3, settle_seconds=7,
                                               streaming_cursor=pymysql.cursors.SSCursor, sleep=waits.append)
        tables = {t["table"]: t for t in dms_validation.compare(comparison, ["basis"], [], {})}
    finally:
        for conn in conns:
            conn.close()
    assert waits == [7, 7, 7]
    differing = {name: (t["differing_chunks"], t["rechecks"]) for name, t in tables.items()
                 if t["verdict"] != "identical"}
    assert differing["basis.contracts"] == (2, 3) and differing["basis.access_logs"] == (1, 3)
    assert set(differing) == {"basis.contracts", "basis.payments", "basis.access_logs"}
    assert differing["basis.payments"][0] > 10 and tables["basis.payments"]["missing_on_target"] > 10
    assert all(t["rechecks"] == 0 for t in tables.values() if t["verdict"] == "identical")


def _changed(proc) -> int:
    return sum(int(m.group(2)) for m in RECAP.finditer(proc.stdout))


def test_playbook_records_the_days_verdict_once(copy, tmp_path):
    ledger = tmp_path / "dms_validation.json"
    env = {**copy.env, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
    args = ["-e", "dms_validate_hosts=localhost", "-e", f"dms_validate_source_secret_id={SOURCE_SECRET}",
            "-e", f"dms_validate_target_secret_id={TARGET_SECRET}",
            "-e", f"dms_validate_ssl_ca={copy.env['MARIADB_SSL_CA']}",
            "-e", f"dms_validate_ledger_path={ledger}", "-e", "dms_validate_date=2026-11-30",
            "-e", "dms_validate_become=false", "-e", f"dms_validate_python={sys.executable}",
            "-e", "dms_validate_required_days=1", "-e", "dms_validate_timezone=UTC"]
    checked = run_playbook("playbooks/dms_validate.yml", *args, "--check", "--diff", env=env)
    assert _changed(checked) == 1 and not ledger.exists()
    first = run_playbook("playbooks/dms_validate.yml", *args, env=env)
    assert _changed(first) == 1
    assert oct(ledger.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(ledger.read_text())
    assert [(e["date"], e["verdict"]) for e in doc["verdicts"]] == [("2026-11-30", "identical")]
    assert doc["verdicts"][0]["details"]["tables"]["basis.payments"] == {"verdict": "identical"}
    second = run_playbook("playbooks/dms_validate.yml", *args, "-vvv", env=env)
    assert _changed(second) == 0 and "failed=0" in second.stdout
    for password in (LEGACY_DB_PASSWORD, mariadb.DMS_TARGET_PASSWORD):
        assert password not in second.stdout
    # a difference the same day supersedes the verdict; require_identical stops the play in one line
    target(copy, "DELETE FROM basis.payments ORDER BY id DESC LIMIT 1")
    refused = run_playbook("playbooks/dms_validate.yml", *args, "-e", "dms_validate_require_identical=true",
                           env=env, check=False)
    assert refused.returncode != 0
    assert "the DMS target differs from the source: basis.payments: rows differ" in refused.stdout
    info = run_module(dms_validation_ledger_info.main, {"ledger_path": str(ledger), "required_days": 1,
                                                       "timezone": "UTC"})
    assert [(d["date"], d["verdict"]) for d in info["days"]] == [("2026-11-30", "different")]
    assert info["gate"]["open"] is False and info["gate"]["consecutive_identical_days"] == []
    assert info["days"][0]["details"]["tables"]["basis.payments"]["missing_on_target"] == 1
    assert len(json.loads(ledger.read_text())["verdicts"]) == 2
    assert os.stat(ledger).st_mode & 0o077 == 0


@pytest.fixture
def probe(dms):
    """A database of this test's own on both sides (other tests dump the source's `basis`): a
    composite primary key with binary and NULL values, and a table keyed only by a NOT NULL unique key."""
    ddl = """
CREATE DATABASE dms_valid_probe;
CREATE TABLE dms_valid_probe.composite (a INT NOT NULL, b VARCHAR(5) NOT NULL, v VARBINARY(8) NULL,
  note TEXT NULL, PRIMARY KEY (a, b));
CREATE TABLE dms_valid_probe.coded (code CHAR(4) NOT NULL, n INT NULL, UNIQUE KEY by_code (code));
INSERT INTO dms_valid_probe.composite VALUES (1, 'x', 0x00ff, NULL), (1, 'y', NULL, 'ねこ'), (2, 'x', 0x01, ''),
  (2, 'y', 0x02, 'N'), (3, 'a', NULL, NULL), (3, 'b', 0x0a, 'b'), (4, 'x', 0x0b, 'x');
INSERT INTO dms_valid_probe.coded VALUES ('A001', 1), ('A002', NULL), ('B001', 3), ('C001', 4);
"""
    dms.sql(ddl + f"GRANT SELECT ON dms_valid_probe.* TO '{LEGACY_DB_USER}'@'%';")
    target(dms, ddl + f"GRANT SELECT ON dms_valid_probe.* TO '{mariadb.DMS_TARGET_USER}'@'%';")
    try:
        yield dms
    finally:
        dms.sql(f"DROP DATABASE dms_valid_probe; REVOKE SELECT ON dms_valid_probe.* FROM '{LEGACY_DB_USER}'@'%'")
        target(dms, "DROP DATABASE dms_valid_probe")


def test_composite_and_unique_keys_in_small_chunks(probe):
    same = by_table(validate(probe, databases=["dms_valid_probe"], chunk_rows=2))
    assert {name: (t["verdict"], t["key"], t["key_kind"], t["chunks"]) for name, t in same.items()} == {
        "dms_valid_probe.composite": ("identical", ["a", "b"], "primary", 4),
        "dms_valid_probe.coded": ("identical", ["code"], "unique by_code", 3)}
    # NULL and the empty string, 'N' and NULL, are different values
    target(probe, "UPDATE dms_valid_probe.composite SET note = NULL WHERE a = 2 AND b = 'x';"
                  "UPDATE dms_valid_probe.composite SET note = NULL WHERE a = 2 AND b = 'y';"
                  "DELETE FROM dms_valid_probe.coded WHERE code = 'B001';"
                  "INSERT INTO dms_valid_probe.coded VALUES ('Z999', 9)")
    found = by_table(validate(probe, databases=["dms_valid_probe"], chunk_rows=2, sample_keys=1))
    composite, coded = found["dms_valid_probe.composite"], found["dms_valid_probe.coded"]
    assert (composite["verdict"], composite["changed"], composite["differing_chunks"]) == ("rows_differ", 2, 1)
    assert composite["sample_keys"]["changed"] == [[2, "x"]]  # one sample asked for
    assert (coded["missing_on_target"], coded["extra_on_target"]) == (1, 1)
    assert coded["sample_keys"] == {"changed": [], "missing_on_target": ["B001"], "extra_on_target": ["Z999"]}
