"""The private MariaDB: the `basis` schema has the shapes a dump must survive."""

import os
import subprocess

import pytest

from sandbox.config import LEGACY_DB_PASSWORD, LEGACY_DB_USER
from sandbox.mariadb import row_counts


def test_tables_and_row_counts(sandbox):
    tables = sandbox.sql("SELECT table_name FROM information_schema.tables "
                         "WHERE table_schema = 'basis' AND table_type = 'BASE TABLE'").split()
    assert len(tables) >= 6
    for table, expected in row_counts(sandbox.settings.scale).items():
        assert sandbox.sql(f"SELECT COUNT(*) FROM basis.{table}").strip() == str(expected), table


def test_row_counts_scale_with_the_variable():
    small, large = row_counts(1000), row_counts(100000)
    assert all(large[t] == small[t] * 100 for t in ("contracts", "payments", "access_logs"))


def test_contracts_status_column(sandbox):
    statuses = set(sandbox.sql("SELECT DISTINCT status FROM basis.contracts").split())
    assert {"active", "terminated", "cancelled"} <= statuses


def test_utf8mb4_japanese_text_round_trips(sandbox):
    assert sandbox.sql("SELECT note FROM basis.tenants WHERE id = 7").strip() == "ペット可の部屋を希望 🐈 7"
    charset = sandbox.sql("SELECT default_character_set_name FROM information_schema.schemata "
                          "WHERE schema_name = 'basis'").strip()
    assert charset == "utf8mb4"


def test_special_shapes_exist(sandbox):
    blob = sandbox.sql("SELECT data_type FROM information_schema.columns "
                       "WHERE table_schema = 'basis' AND table_name = 'documents' AND column_name = 'body'")
    assert blob.strip() == "mediumblob"
    no_pk = sandbox.sql("""
        SELECT t.table_name FROM information_schema.tables t
         WHERE t.table_schema = 'basis' AND t.table_type = 'BASE TABLE'
           AND NOT EXISTS (SELECT 1 FROM information_schema.table_constraints c
                            WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                              AND c.constraint_type = 'PRIMARY KEY')""").split()
    assert no_pk == ["access_logs"]
    assert sandbox.sql("SELECT COUNT(*) FROM information_schema.views WHERE table_schema = 'basis'").strip() == "1"
    assert sandbox.sql("SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = 'basis'").strip() == "1"
    assert sandbox.sql("SELECT COUNT(*) FROM information_schema.routines "
                       "WHERE routine_schema = 'basis' AND routine_type = 'PROCEDURE'").strip() == "1"


def test_trigger_wrote_history(sandbox):
    assert int(sandbox.sql("SELECT COUNT(*) FROM basis.contract_status_history")) > 0


def test_server_listens_on_loopback_only(sandbox):
    assert sandbox.sql("SELECT @@bind_address").strip() == "127.0.0.1"


@pytest.mark.parametrize("password, ok", [(LEGACY_DB_PASSWORD, True), ("wrong", False)])
def test_legacy_account_over_tcp(sandbox, password, ok):
    # The password goes in through an inherited pipe, never argv.
    r, w = os.pipe()
    os.write(w, f'[client]\npassword="{password}"\n'.encode())
    os.close(w)
    try:
        proc = subprocess.run(
            ["mariadb", f"--defaults-extra-file=/dev/fd/{r}", "-h", "127.0.0.1",
             "-P", str(sandbox.settings.mariadb_port), "-u", LEGACY_DB_USER, "-N",
             "-e", "SELECT COUNT(*) FROM basis.contracts"],
            capture_output=True, text=True, pass_fds=(r,))
    finally:
        os.close(r)
    assert (proc.returncode == 0) is ok, proc.stderr
    if ok:
        assert proc.stdout.strip() == str(sandbox.settings.scale)
