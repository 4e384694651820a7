"""`compare`: the legacy pipeline's object and dumpjob's of the same day are identical; one
changed row makes the verdict `different`, naming the table; AUTO_INCREMENT noise only where asked."""

from __future__ import annotations

import gzip
import subprocess
import time

import pytest
from dumpjob_testbed import dumpjob

from sandbox import config as sandbox_config

# The shared sandbox's MariaDB port (SANDBOX_PORT_BASE shifts it).
DB_PORT = sandbox_config.load().mariadb_port

BUCKET = "jram-gghouse"
DAY = "2026-04-01"


@pytest.fixture
def copy_db(sandbox, uid):
    """A private copy of basis that this test may change."""
    name = f"dj_cmp_{uid}"
    dump = subprocess.run(["mysqldump", "--no-defaults", f"--socket={sandbox.settings.mariadb_socket}", "-uroot",
                           "--single-transaction", "--routines", "--triggers", "--hex-blob", "basis"],
                          capture_output=True, check=True).stdout
    sandbox.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    subprocess.run(["mariadb", "--no-defaults", f"--socket={sandbox.settings.mariadb_socket}", "-uroot", name],
                   input=dump, check=True, capture_output=True)
    yield name
    sandbox.sql(f"DROP DATABASE IF EXISTS `{name}`")


def _legacy_dump(s3, database: str, key: str) -> None:
    """What ggh_datatransit.sh does: mysqldump with its flags | gzip, then upload."""
    dump = subprocess.run(
        ["mysqldump", "-h", "127.0.0.1", "-P", str(DB_PORT), "-u", sandbox_config.LEGACY_DB_USER,
         f"-p{sandbox_config.LEGACY_DB_PASSWORD}", "--single-transaction", "--quick", "--routines", "--triggers",
         "--events", "--hex-blob", "--default-character-set=utf8mb4", database], capture_output=True, check=True)
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(dump.stdout))


def _config(jobfile, make_secret, prefix, database, **extra) -> str:
    return jobfile({"cmp": {"kind": "mysqldump", "secret_id": make_secret(), "databases": [database],
                            "key": f"{prefix}/dumps/cmp_{{date:%Y%m%d}}.sql.gz",
                            "parallel_key": f"{prefix}/dumps-test/cmp_{{date:%Y%m%d}}.sql.gz", **extra}})


def test_identical_then_different_naming_the_table(sandbox, s3, env, jobfile, make_secret, prefix, copy_db):
    config = _config(jobfile, make_secret, prefix, copy_db)
    _legacy_dump(s3, copy_db, f"{prefix}/dumps/cmp_20260401.sql.gz")
    time.sleep(1.1)  # a later second in the dump's trailer: the bytes differ, the data does not
    assert dumpjob("run", "cmp", "--config", config, "--parallel", "--date", DAY, env=env).code == 0

    same = dumpjob("compare", "cmp", "--config", config, "--date", DAY, "--json", env=env)
    assert same.code == 0, same.stderr
    report = same.json
    assert report["legacy"]["url"].endswith("/dumps/cmp_20260401.sql.gz")
    assert report["new"]["url"].endswith("/dumps-test/cmp_20260401.sql.gz")
    assert report["legacy"]["sha256"] != report["new"]["sha256"]
    assert report["verdict"] == "identical", [t for t in report["tables"] if t["verdict"] != "identical"]
    names = {t["name"] for t in report["tables"]}
    assert {"tenants", "contracts", "access_logs", "v_active_contracts (view)", f"(routines {copy_db})"} <= names
    tenants = next(t for t in report["tables"] if t["name"] == "tenants")
    count = int(sandbox.sql(f"SELECT COUNT(*) FROM `{copy_db}`.tenants"))
    assert tenants["legacy"]["rows"] == tenants["new"]["rows"] == count

    sandbox.sql(f"UPDATE `{copy_db}`.tenants SET note = 'changed' WHERE id = 5")
    assert dumpjob("run", "cmp", "--config", config, "--parallel", "--date", DAY, env=env).code == 0
    changed = dumpjob("compare", "cmp", "--config", config, "--date", DAY, "--json", env=env)
    assert changed.code == 11
    report = changed.json
    assert report["verdict"] == "different"
    different = [t for t in report["tables"] if t["verdict"] != "identical"]
    assert [t["name"] for t in different] == ["tenants"]
    assert different[0]["reasons"] == ["row contents differ"]
    text = dumpjob("compare", "cmp", "--config", config, "--date", DAY, env=env)
    assert text.code == 11 and text.stdout.startswith("different")
    assert "tenants (row contents differ)" in text.stdout


def test_auto_increment_counters_ignored_only_when_asked(sandbox, s3, env, jobfile, make_secret, prefix, copy_db):
    strict = _config(jobfile, make_secret, prefix, copy_db)
    assert dumpjob("run", "cmp", "--config", strict, "--date", DAY, env=env).code == 0
    # same rows, higher counter
    sandbox.sql(f"INSERT INTO `{copy_db}`.contracts (tenant_id, room_id, status, start_date, monthly_rent_yen, "
                f"updated_at) VALUES (1, 1, 'pending', '2026-01-01', 1, NOW()); DELETE FROM `{copy_db}`.contracts "
                f"ORDER BY id DESC LIMIT 1;")
    assert dumpjob("run", "cmp", "--config", strict, "--parallel", "--date", DAY, env=env).code == 0
    result = dumpjob("compare", "cmp", "--config", strict, "--date", DAY, "--json", env=env)
    assert result.code == 11
    contracts = next(t for t in result.json["tables"] if t["name"] == "contracts")
    assert contracts["verdict"] == "different" and contracts["reasons"] == ["DDL differs"]
    lenient = _config(jobfile, make_secret, prefix, copy_db, compare={"ignore_auto_increment": True})
    result = dumpjob("compare", "cmp", "--config", lenient, "--date", DAY, "--json", env=env)
    assert result.code == 0 and result.json["verdict"] == "identical", result.stdout


def test_missing_object_is_a_storage_error(env, jobfile, make_secret, prefix):
    config = _config(jobfile, make_secret, prefix, "basis")
    result = dumpjob("compare", "cmp", "--config", config, "--date", "2020-01-01", env=env)
    assert result.code == 7 and "no object at" in result.errors[0]["msg"]
