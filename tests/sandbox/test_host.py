"""The dump host container starts in today's production state, and its legacy jobs, run by
hand, really produce the objects the new jobs will be compared with."""

import datetime as dt
import gzip
import subprocess
import uuid
from zoneinfo import ZoneInfo

import pytest

from sandbox.mariadb import client_argv, row_counts

JOBS = ("ggh_datatransit.sh", "ggh_contract_status.sh", "ggh_schema_snapshot.sh")


def test_systemd_is_pid_1_and_running(sandbox):
    assert sandbox.exec("cat", "/proc/1/comm").stdout.strip() == "systemd"
    state = sandbox.exec("systemctl", "is-system-running", check=False).stdout.strip()
    failed = sandbox.exec("systemctl", "--failed", "--no-legend", check=False).stdout
    assert state == "running", f"systemd says {state}; failed units: {failed}"


def test_cron_active_and_sshd_installed_but_stopped(sandbox):
    assert sandbox.exec("systemctl", "is-active", "cron", check=False).stdout.strip() == "active"
    assert sandbox.exec("test", "-x", "/usr/sbin/sshd", check=False).returncode == 0
    assert sandbox.exec("systemctl", "is-active", "ssh", check=False).stdout.strip() == "inactive"
    assert sandbox.exec("systemctl", "is-enabled", "ssh", check=False).stdout.strip() == "disabled"


def test_host_clock_is_utc_and_networking_is_the_hosts(sandbox):
    assert sandbox.exec("date", "+%Z").stdout.strip() == "UTC"
    # Host networking: the sandbox's loopback services answer from inside.
    port = sandbox.settings.moto_port
    assert sandbox.exec("bash", "-c", f"</dev/tcp/127.0.0.1/{port}", check=False).returncode == 0


def test_legacy_crontab(sandbox):
    crontab = sandbox.exec("crontab", "-l", "-u", "ec2-user").stdout
    assert crontab.startswith("MAILTO=")
    lines = [line for line in crontab.splitlines() if line.strip() and not line.lstrip().startswith("#")
             and "=" not in line.split()[0]]
    assert [line.split()[5] for line in lines] == [f"/home/ec2-user/scripts/{j}" for j in JOBS]
    # 05:30 and 06:00 JST on a UTC clock; the schema snapshot weekly.
    assert [tuple(line.split()[:5]) for line in lines] == [
        ("30", "20", "*", "*", "*"), ("0", "21", "*", "*", "*"), ("0", "19", "*", "*", "6")]
    assert any(line.startswith("#") for line in crontab.splitlines())


def test_legacy_credentials_are_in_place(sandbox):
    creds = sandbox.exec("cat", "/home/ec2-user/.aws/credentials").stdout
    assert sandbox.state["legacy_key"]["id"] in creds
    mode = sandbox.exec("stat", "-c", "%a %U", "/home/ec2-user/.aws/credentials").stdout.split()
    assert mode == ["600", "ec2-user"]
    for job in JOBS:
        script = sandbox.exec("cat", f"/home/ec2-user/scripts/{job}").stdout
        assert "DB_PASS='" in script and "-p$DB_PASS" in script  # the hard-coded password of today
    keys = sandbox.client("iam").list_access_keys(UserName="legacy-dump")["AccessKeyMetadata"]
    assert sandbox.state["legacy_key"]["id"] in {k["AccessKeyId"] for k in keys}


@pytest.fixture(scope="module")
def legacy_objects(sandbox):
    """Run every legacy job by hand, as cron would, and return the keys each produced."""
    s3 = sandbox.client("s3")
    produced = {}

    def listing():
        return {(o["Key"], o["LastModified"], o["ETag"])
                for o in s3.list_objects_v2(Bucket="jram-gghouse", Prefix="dumps/").get("Contents", [])}

    for job in JOBS:
        before = listing()
        proc = subprocess.run(["podman", "exec", "--user", "ec2-user", "--workdir", "/home/ec2-user", sandbox.host,
                               "bash", "-c", f"/home/ec2-user/scripts/{job}"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        fresh = listing() - before
        assert len(fresh) == 1, f"{job} wrote {fresh}"
        produced[job] = fresh.pop()[0]
    return produced


def _body(sandbox, key) -> bytes:
    return gzip.decompress(sandbox.client("s3").get_object(Bucket="jram-gghouse", Key=key)["Body"].read())


def test_legacy_keys_carry_the_jst_date(legacy_objects):
    today = dt.datetime.now(ZoneInfo("Asia/Tokyo"))
    dates = {today.strftime("%Y%m%d"), (today - dt.timedelta(minutes=5)).strftime("%Y%m%d")}
    assert {k.rsplit("_", 1)[-1].split(".")[0] for k in legacy_objects.values()} <= dates
    assert legacy_objects["ggh_datatransit.sh"].startswith("dumps/basis_")
    assert legacy_objects["ggh_contract_status.sh"].startswith("dumps/contract_status_")
    assert legacy_objects["ggh_schema_snapshot.sh"].startswith("dumps/schema/basis_schema_")


def test_full_dump_restores_with_equal_checksums(sandbox, legacy_objects):
    sql = _body(sandbox, legacy_objects["ggh_datatransit.sh"])
    assert b"-- Dump completed" in sql[-200:]
    target = f"restore_{uuid.uuid4().hex[:8]}"
    sandbox.sql(f"CREATE DATABASE {target} CHARACTER SET utf8mb4")
    try:
        proc = subprocess.run(client_argv(sandbox.settings, target), input=sql, capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        tables = sandbox.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'basis' "
                             "AND table_type = 'BASE TABLE' ORDER BY table_name").split()
        for table in tables:
            original = sandbox.sql(f"CHECKSUM TABLE basis.{table}").split()[-1]
            restored = sandbox.sql(f"CHECKSUM TABLE {target}.{table}").split()[-1]
            assert original == restored, table
        for kind, query in (("view", "information_schema.views WHERE table_schema"),
                            ("trigger", "information_schema.triggers WHERE trigger_schema"),
                            ("procedure", "information_schema.routines WHERE routine_schema")):
            assert sandbox.sql(f"SELECT COUNT(*) FROM {query} = '{target}'").strip() == "1", kind
    finally:
        sandbox.sql(f"DROP DATABASE IF EXISTS {target}")


def test_contract_status_export_is_gzipped_csv(sandbox, legacy_objects):
    lines = _body(sandbox, legacy_objects["ggh_contract_status.sh"]).decode().splitlines()
    assert lines[0] == "id,tenant_id,room_id,status,start_date,end_date,monthly_rent_yen,updated_at"
    assert len(lines) - 1 == row_counts(sandbox.settings.scale)["contracts"]


def test_schema_snapshot_has_ddl_and_no_rows(sandbox, legacy_objects):
    sql = _body(sandbox, legacy_objects["ggh_schema_snapshot.sh"]).decode()
    for ddl in ("CREATE TABLE `contracts`", "TRIGGER trg_contracts_status_history", "CREATE VIEW `v_active_contracts`",
                "PROCEDURE `sp_contract_status_counts`"):
        assert ddl in sql, ddl
    assert "INSERT INTO `" not in sql  # no data rows (the trigger body has an INSERT of its own)
