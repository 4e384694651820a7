"""A `query` export stops reading at once when it is interrupted: SIGTERM, or S3 failing under it.

The query streams two billion generated rows (MariaDB's sequence engine), far more than a test
could ever drain: PyMySQL's unbuffered cursor reads the whole rest of a result set when it is
closed, so a run that closed its cursor on the way out would never end. Private servers of the
faultbed (tests/dumpjob/conftest.py): S3 through a proxy that can be cut."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import pytest
from dumpjob_testbed import Running, assert_failed, assert_nothing_published, wait_until, write_config

from sandbox import config as sandbox_config
from sandbox import mariadb as sandbox_mariadb

BUCKET = sandbox_config.BUCKET
MIB = 1 << 20


@pytest.fixture
def endless(faultbed, tmp_path, aws_env):
    """A query job whose result set would take hours to read, and a marker to find its session."""
    faultbed.db_up()
    faultbed.proxy.rate = None
    marker = f"endless_{uuid.uuid4().hex[:8]}"
    secret = f"dumpjob-query-interrupt/{marker}"
    faultbed.sm.create_secret(Name=secret, SecretString=json.dumps({
        "host": "127.0.0.1", "port": faultbed.db_port, "username": sandbox_config.LEGACY_DB_USER,
        "password": sandbox_config.LEGACY_DB_PASSWORD}))
    (tmp_path / "work").mkdir()
    config = write_config(tmp_path / "jobs.yml", {"endless": {
        "kind": "query", "secret_id": secret, "database": "basis",
        "query": f"SELECT seq AS {marker}, RPAD('x', 200, 'x') AS pad FROM seq_1_to_2000000000",
        "key": f"{faultbed.prefix}/{marker}_{{date:%Y%m%d}}.csv.gz", "compression": {"type": "gzip", "level": 1},
        "part_size_mib": 5, "upload_concurrency": 1}},
        {"bucket": BUCKET, "lock_dir": str(tmp_path / "lock"), "work_dir": str(tmp_path / "work"),
         "progress_seconds": 1})
    yield {"config": str(config), "env": faultbed.env(aws_env), "marker": marker, "key_prefix":
           f"{faultbed.prefix}/{marker}_", "work": tmp_path / "work"}
    faultbed.proxy.rate = None


def _sessions(faultbed, marker: str) -> list[str]:
    """Server sessions still running the job's query."""
    out = sandbox_mariadb.sql(faultbed.settings, "SELECT ID FROM information_schema.PROCESSLIST "
                                                 f"WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'")
    return out.split()


def _start(faultbed, job) -> Running:
    run = Running("run", "endless", "--config", job["config"], "--date", "2026-05-01", env=job["env"])
    base = faultbed.proxy.up_bytes
    wait_until(lambda: faultbed.proxy.up_bytes - base > 6 * MIB, 120, "the export to be under way")
    assert _sessions(faultbed, job["marker"]), "the query is not running on the server"
    return run


def _left_nothing(faultbed, job) -> None:
    key = f"{job['key_prefix']}20260501.csv.gz"
    assert_nothing_published(faultbed.s3, BUCKET, key)
    assert not list(job["work"].iterdir()), "temporary part files left behind"
    wait_until(lambda: not _sessions(faultbed, job["marker"]), 10, "the server to end the query")


def test_sigterm_mid_export_ends_the_run_within_seconds(faultbed, endless):
    run = _start(faultbed, endless)
    sent = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    try:
        run.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        pytest.fail("the run was still reading 5 s after SIGTERM")
    elapsed = time.monotonic() - sent
    result = run.finish()
    assert_failed(result, 9, "stopped by SIGTERM", "upload aborted, nothing published")
    assert elapsed < 5
    _left_nothing(faultbed, endless)


def test_s3_failing_mid_export_stops_the_read_and_exits_7(faultbed, endless):
    run = _start(faultbed, endless)
    faultbed.proxy.cut()
    try:
        # The part upload gives up after botocore's retries; the abort then waits for S3. The read
        # has stopped by then: the server ends the query while the run still waits to abort.
        aborting = run.wait_event("aborting", timeout=200)  # a part in flight may wait out the 120 s read timeout
        wait_until(lambda: not _sessions(faultbed, endless["marker"]), 5, "the server to end the query")
        assert run.proc.poll() is None and not run.event_seen("aborted")
    finally:
        faultbed.proxy.restore()
    try:
        run.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        pytest.fail("the run did not end once S3 was back")
    result = run.finish()
    assert_failed(result, 7, "S3 endpoint unreachable", "upload aborted, nothing published")
    assert "uploading part" in aborting["msg"]
    _left_nothing(faultbed, endless)
