"""Retry until the deadline, on the private MariaDB and moto of `faultbed` (so that stopping the
server disturbs no other test): the server stopped for 40 s in the middle of a dump, the run
tries again and publishes once it is back; meanwhile a job whose deadline is too close gives up
at once with exit 5, and a second run of the retrying job finds its lock held; a wrong password
is not retried; a signal during the wait ends the run; S3 failing to complete an upload is retried
too. Every case leaves exactly one object and one manifest for the day, or none, and no
incomplete upload."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dumpjob_testbed import (
    Fault,
    Running,
    S3Faults,
    assert_failed,
    assert_nothing_published,
    dumpjob,
    free_port,
    wait_until,
    write_config,
)

from sandbox import config as sandbox_config

BUCKET = sandbox_config.BUCKET
TOKYO = ZoneInfo("Asia/Tokyo")
MIB = 1 << 20
OUTAGE = 40  # seconds the database server is down


def _window(minutes: int) -> dict:
    """A schedule that started this minute and a deadline `minutes` later (Asia/Tokyo)."""
    now = datetime.now(TOKYO)
    return {"schedule": f"{now.minute} {now.hour} * * *",
            "deadline": (now + timedelta(minutes=minutes)).strftime("%H:%M")}


@pytest.fixture(scope="module")
def retrybed(faultbed, tmp_path_factory, aws_env):
    """The job file's common part and yesterday's published dump (whose duration the estimate uses)."""
    root = tmp_path_factory.mktemp("retry")
    (root / "work").mkdir()
    prefix = f"{faultbed.prefix}-retry"
    secret = f"dumpjob-retry/{faultbed.prefix}"
    faultbed.sm.create_secret(Name=secret, SecretString=json.dumps({
        "host": "127.0.0.1", "port": faultbed.db_port, "username": sandbox_config.LEGACY_DB_USER,
        "password": sandbox_config.LEGACY_DB_PASSWORD, "dbname": "basis"}))
    bad_secret = f"{secret}-wrong"
    faultbed.sm.create_secret(Name=bad_secret, SecretString=json.dumps({
        "host": "127.0.0.1", "port": faultbed.db_port, "username": sandbox_config.LEGACY_DB_USER,
        "password": "not-the-password", "dbname": "basis"}))
    job = {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
           "compression": {"type": "gzip", "level": 1}, "part_size_mib": 5, "upload_concurrency": 1}
    defaults = {"bucket": BUCKET, "lock_dir": str(root / "lock"), "work_dir": str(root / "work"),
                "progress_seconds": 1}
    env = faultbed.env(aws_env)
    faultbed.proxy.rate = None
    faultbed.db_up()
    config = write_config(root / "base.yml", {"basis": {**job, "key": f"{prefix}/basis_{{date:%Y%m%d}}.sql.gz"}},
                          defaults)
    first = dumpjob("run", "basis", "--config", str(config), "--date", "2026-04-01", "--json", env=env)
    assert first.code == 0, first.stderr
    return {"root": root, "prefix": prefix, "job": job, "defaults": defaults, "env": env, "bad_secret": bad_secret,
            "seconds": first.json["seconds"]}


def _config(bed: dict, name: str, jobs: dict) -> str:
    return str(write_config(bed["root"] / f"{name}.yml", jobs, bed["defaults"]))


def _only_the_days_dump(s3, bed: dict, key: str) -> None:
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])]
    assert sorted(listed) == [key, key + ".manifest.json"], listed
    assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix=bed["prefix"]).get("Uploads"), \
        "an incomplete upload was left"
    assert not list((bed["root"] / "work").iterdir()), "temporary part files left behind"


def test_database_stopped_for_40_s_mid_dump_the_run_retries_and_publishes_before_the_deadline(faultbed, retrybed):
    bed = retrybed
    retrying = {**bed["job"], **_window(6), "key": f"{bed['prefix']}/basis_{{date:%Y%m%d}}.sql.gz",
                "retry": {"max_attempts": 20, "backoff_seconds": 4, "max_backoff_seconds": 8}}
    # no earlier dump of its own: an attempt is taken to last retry.attempt_seconds (30 min by default)
    hurried = {**bed["job"], **_window(3), "key": f"{bed['prefix']}/hurried_{{date:%Y%m%d}}.sql.gz"}
    config = _config(bed, "retry", {"basis": retrying, "hurried": hurried})
    env = bed["env"]
    faultbed.db_up()
    faultbed.proxy.rate = 1_500_000  # slow S3 down so that the server is stopped mid-dump
    try:
        run = Running("run", "basis", "--config", config, "--date", "2026-04-02", "--json", env=env)
        run.wait_event("mysqldump")
        base = faultbed.proxy.up_bytes
        wait_until(lambda: faultbed.proxy.up_bytes - base > 2 * MIB, 60, "the upload to be under way")
        faultbed.db_down()
        stopped_at = time.monotonic()
    finally:
        faultbed.proxy.rate = None
    try:
        run.wait_event("attempt", timeout=60)

        # The server is down: a job whose deadline leaves no room for another attempt gives up at once.
        started = time.monotonic()
        gave_up = dumpjob("run", "hurried", "--config", config, "--date", "2026-04-02", env=env)
        assert time.monotonic() - started < 20, "the job waited instead of giving up"
        assert_failed(gave_up, 5, "cannot reach database", "attempt 1, not retried",
                      "the next attempt (about 1800 s) could not end by the deadline")
        assert len(gave_up.event("attempt")) == 1 and gave_up.event("attempt")[0]["next_attempt_at"] is None
        assert_nothing_published(faultbed.s3, BUCKET, f"{bed['prefix']}/hurried_20260402.sql.gz")

        # The retrying run holds its job's lock between attempts.
        second = dumpjob("run", "basis", "--config", config, "--date", "2026-04-02", env=env)
        assert_failed(second, 8, "job 'basis' is already running", f"pid {run.proc.pid}")

        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
    finally:
        faultbed.db_up()
    result = run.finish(timeout=120)
    assert result.code == 0, result.stderr
    summary = result.json
    attempts = result.event("attempt")
    assert summary["attempts"] == len(attempts) + 1 >= 3, attempts
    assert attempts[0]["error"] == "database" and "the dump after" in attempts[0]["msg"]  # lost, or interrupted
    assert "upload aborted, nothing published" in attempts[0]["msg"]
    assert all(a["error"] == "database" and a["transient"] and a["next_attempt_at"] for a in attempts)
    assert all(f"attempt {a['attempt'] + 1} at " in a["msg"] for a in attempts)
    assert not result.errors
    deadline = datetime.fromisoformat(result.event("deadline")[0]["deadline"])
    finished = datetime.fromisoformat(result.event("summary")[0]["ts"].replace("Z", "+00:00"))
    assert finished < deadline
    # the estimate came from the earlier dump's manifest, not the 30-minute default
    assert attempts[0]["estimate_seconds"] < 1800

    key = f"{bed['prefix']}/basis_20260402.sql.gz"
    manifest = json.loads(faultbed.s3.get_object(Bucket=BUCKET, Key=key + ".manifest.json")["Body"].read())
    assert manifest["attempt"] == summary["attempts"] and manifest["run_id"] == summary["run_id"]
    assert dumpjob("verify", f"s3://{BUCKET}/{key}", env=env).code == 0
    _only_the_days_dump(faultbed.s3, bed, key)


def test_a_refused_password_is_not_retried(faultbed, retrybed):
    bed = retrybed
    faultbed.db_up()
    job = {**bed["job"], **_window(30), "secret_id": bed["bad_secret"],
           "key": f"{bed['prefix']}/refused_{{date:%Y%m%d}}.sql.gz", "retry": {"backoff_seconds": 1}}
    config = _config(bed, "refused", {"refused": job})
    started = time.monotonic()
    result = dumpjob("run", "refused", "--config", config, "--date", "2026-04-02", env=bed["env"])
    assert time.monotonic() - started < 20
    assert_failed(result, 5, "authentication failed", "AWSCURRENT", "attempt 1, not retried: a permanent failure")
    attempts = result.event("attempt")
    assert len(attempts) == 1 and attempts[0]["transient"] is False and attempts[0]["next_attempt_at"] is None
    assert len(result.event("database")) == 0 and len(result.event("auth_retry")) == 1
    assert_nothing_published(faultbed.s3, BUCKET, f"{bed['prefix']}/refused_20260402.sql.gz")


def test_a_signal_during_the_wait_ends_the_run_at_once(faultbed, retrybed):
    """The database unreachable (nothing listens on its port): the run waits to try again, and a
    SIGTERM in that wait ends it with exit 9 instead of the next attempt."""
    bed = retrybed
    secret = f"dumpjob-retry/{faultbed.prefix}-closed"
    faultbed.sm.create_secret(Name=secret, SecretString=json.dumps({
        "host": "127.0.0.1", "port": free_port(), "username": sandbox_config.LEGACY_DB_USER,
        "password": sandbox_config.LEGACY_DB_PASSWORD}))
    job = {**bed["job"], **_window(30), "secret_id": secret, "key": f"{bed['prefix']}/closed_{{date:%Y%m%d}}.sql.gz",
           "retry": {"backoff_seconds": 60, "attempt_seconds": 60}}
    config = _config(bed, "closed", {"closed": job})
    run = Running("run", "closed", "--config", config, "--date", "2026-04-02", env=bed["env"])
    waiting = run.wait_event("attempt", timeout=60)
    assert waiting["transient"] and waiting["wait_seconds"] == 60 and "attempt 2 at" in waiting["msg"]
    started = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    result = run.finish(timeout=30)
    assert time.monotonic() - started < 10
    assert_failed(result, 9, "stopped by SIGTERM while waiting for attempt 2", "cannot reach database")
    assert_nothing_published(faultbed.s3, BUCKET, f"{bed['prefix']}/closed_20260402.sql.gz")


def test_s3_failing_to_complete_is_retried_and_the_failed_attempt_aborts_its_upload(sandbox, s3, env, jobfile,
                                                                                  make_secret, prefix):
    """S3 answers SlowDown to CompleteMultipartUpload until botocore gives up (the shared MariaDB and
    moto, S3 through a proxy that refuses): the attempt aborts its own upload, the next one publishes."""
    proxy = S3Faults(sandbox.settings.moto_port)
    try:
        # 6: botocore's own try and its 5 retries, all of one attempt's CompleteMultipartUpload
        proxy.faults.append(Fault("POST", query="uploadId=", status=503, code="SlowDown", times=6))
        config = jobfile({"rooms": {"kind": "mysqldump", "secret_id": make_secret(), "databases": ["basis"],
                                    "tables": ["rooms"], "key": f"{prefix}/rooms_{{date:%Y%m%d}}.sql.gz", **_window(30),
                                    "retry": {"backoff_seconds": 1, "attempt_seconds": 60}}})
        result = dumpjob("run", "rooms", "--config", config, "--date", "2026-04-02", "--json",
                         env={**env, "AWS_ENDPOINT_URL_S3": proxy.url})
    finally:
        proxy.stop()
    assert result.code == 0, result.stderr
    assert result.json["attempts"] == 2
    (failed,) = result.event("attempt")
    assert failed["error"] == "storage" and failed["transient"] and "SlowDown" in failed["msg"]
    assert "upload aborted, nothing published" in failed["msg"]
    (aborted,) = result.event("aborted")
    assert aborted["confirmed"]
    created = [path for method, path, status in proxy.seen if method == "POST" and path.endswith("?uploads")]
    completed = {path.split("uploadId=")[1] for method, path, status in proxy.seen
                 if method == "POST" and "uploadId=" in path and status == 200}
    aborted_ids = {path.split("uploadId=")[1] for method, path, status in proxy.seen
                   if method == "DELETE" and "uploadId=" in path}
    assert len(created) == 2 and len(completed) == 1 and len(aborted_ids) == 1, proxy.seen
    assert completed != aborted_ids, "the failed attempt's own upload is the one aborted"
    key = f"{prefix}/rooms_20260402.sql.gz"
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", []))
    assert listed == [key, key + ".manifest.json"]
    assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads")
    assert dumpjob("verify", f"s3://{BUCKET}/{key}", env=env).code == 0
