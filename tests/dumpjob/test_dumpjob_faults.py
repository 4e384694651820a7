"""Faults in the middle of a run, on private servers: mysqldump killed, the DB server stopped,
S3 gone, SIGTERM/SIGINT, a second run of the same job; and a dump that ends without its trailer,
with noise on stderr or below its floor. Each ends with its own exit code and one error line;
nothing is published, no incomplete upload is left, and yesterday's dump is untouched."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest
from dumpjob_testbed import (
    Running,
    assert_failed,
    assert_nothing_published,
    dumpjob,
    snapshot,
    wait_until,
    write_config,
)

from sandbox import config as sandbox_config

BUCKET = sandbox_config.BUCKET
MIB = 1 << 20


@pytest.fixture(scope="module")
def faultjob(faultbed, tmp_path_factory, aws_env):
    """The job on the private servers, and yesterday's dump it published (several parts)."""
    root = tmp_path_factory.mktemp("faultjob")
    (root / "work").mkdir()
    secret = f"dumpjob-faults/{faultbed.prefix}"
    faultbed.sm.create_secret(Name=secret, SecretString=json.dumps({
        "host": "127.0.0.1", "port": faultbed.db_port, "username": sandbox_config.LEGACY_DB_USER,
        "password": sandbox_config.LEGACY_DB_PASSWORD, "dbname": "basis"}))
    config = str(write_config(root / "jobs.yml", {"basis": {
        "kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
        "key": f"{faultbed.prefix}/basis_{{date:%Y%m%d}}.sql.gz", "compression": {"type": "gzip", "level": 1},
        "part_size_mib": 5, "upload_concurrency": 1}},
        {"bucket": BUCKET, "lock_dir": str(root / "lock"), "work_dir": str(root / "work"), "progress_seconds": 1}))
    env = faultbed.env(aws_env)
    faultbed.proxy.rate = None
    result = dumpjob("run", "basis", "--config", config, "--date", "2026-02-01", "--json", env=env)
    assert result.code == 0, result.stderr
    assert result.json["parts"] >= 3, "the fault dataset must span several parts"
    key = f"{faultbed.prefix}/basis_20260201.sql.gz"
    verified = dumpjob("verify", f"s3://{BUCKET}/{key}", "--json", env=env)
    assert verified.code == 0, verified.stdout
    previous = [snapshot(faultbed.s3, BUCKET, key), snapshot(faultbed.s3, BUCKET, key + ".manifest.json")]
    return {"config": config, "env": env, "previous": previous, "root": root}


@pytest.fixture
def slow(faultbed, faultjob):
    """S3 slowed to 1.5 MB/s so that a run is mid-stream for seconds; servers up before and after."""
    faultbed.db_up()
    faultbed.proxy.rate = 1_500_000
    yield faultbed
    faultbed.proxy.rate = None
    faultbed.db_up()


def _start(bed, job, day: str) -> Running:
    run = Running("run", "basis", "--config", job["config"], "--date", day, env=job["env"])
    run.wait_event("mysqldump")
    base = bed.proxy.up_bytes
    wait_until(lambda: bed.proxy.up_bytes - base > 2 * MIB, 60, "the upload to be under way")
    return run


def _published_nothing(bed, job, day: str) -> None:
    assert_nothing_published(bed.s3, BUCKET, f"{bed.prefix}/basis_{day}.sql.gz", job["previous"])
    assert not list((job["root"] / "work").iterdir()), "temporary part files left behind"


def test_mysqldump_killed_mid_stream(slow, faultjob):
    run = _start(slow, faultjob, "2026-02-02")
    os.kill(run.wait_event("mysqldump")["pid"], signal.SIGKILL)
    result = run.finish()
    assert_failed(result, 6, "mysqldump was killed by SIGKILL", "upload aborted")
    progress = result.event("progress")  # a long run reports every `progress_seconds` (1 s here)
    assert progress and {"raw_bytes", "compressed_bytes", "table", "mib_per_s"} <= set(progress[-1])
    assert progress[-1]["table"] == "blobs"
    # yesterday's dump is the previous one: the line says how far along this one is and what is left
    assert 0 < progress[-1]["percent"] < 100 and progress[-1]["eta_seconds"] > 0
    _published_nothing(slow, faultjob, "20260202")


def test_database_server_stopped_mid_dump(slow, faultjob):
    run = _start(slow, faultjob, "2026-02-03")
    slow.db_down()
    result = run.finish()
    assert_failed(result, 5, "database connection lost during the dump", "upload aborted")
    _published_nothing(slow, faultjob, "20260203")


def test_s3_endpoint_gone_mid_upload(slow, faultjob):
    run = _start(slow, faultjob, "2026-02-04")
    slow.proxy.cut()
    try:
        # The upload gives up after its retries; the abort then keeps retrying until S3 is back.
        run.wait_event("aborting", timeout=90)
    finally:
        slow.proxy.restore()
    result = run.finish()
    assert_failed(result, 7, "S3 endpoint unreachable", "upload aborted")
    _published_nothing(slow, faultjob, "20260204")


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_signal_mid_run(slow, faultjob, sig, name):
    run = _start(slow, faultjob, "2026-02-05")
    mysqldump_pid = run.wait_event("mysqldump")["pid"]
    run.proc.send_signal(sig)
    result = run.finish()
    assert_failed(result, 9, f"stopped by {name}", "upload aborted")
    assert not Path(f"/proc/{mysqldump_pid}").exists() or "Z" in Path(f"/proc/{mysqldump_pid}/stat").read_text(), \
        "mysqldump outlived the run"
    _published_nothing(slow, faultjob, "20260205")


def test_second_concurrent_run_of_the_same_job(slow, faultjob):
    first = _start(slow, faultjob, "2026-02-06")
    second = dumpjob("run", "basis", "--config", faultjob["config"], "--date", "2026-02-06", env=faultjob["env"])
    assert_failed(second, 8, "job 'basis' is already running", f"pid {first.proc.pid}")
    uploads = slow.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{slow.prefix}/").get("Uploads", [])
    assert len(uploads) == 1, "the second run must not start an upload of its own"
    slow.proxy.rate = None
    result = first.finish()
    assert result.code == 0, result.stderr
    key = f"{slow.prefix}/basis_20260206.sql.gz"
    assert dumpjob("verify", f"s3://{BUCKET}/{key}", env=faultjob["env"]).code == 0
    assert_nothing_published(slow.s3, BUCKET, f"{slow.prefix}/basis_20260207.sql.gz", faultjob["previous"])
    slow.s3.delete_object(Bucket=BUCKET, Key=key)
    slow.s3.delete_object(Bucket=BUCKET, Key=key + ".manifest.json")


# -- a dump that is wrong although mysqldump exits 0: a wrapper around the real client -------------
WRAPPER = """#!/bin/bash
# the real mysqldump, then {what}
if [ "$1" = --version ]; then exec mysqldump --version; fi
{body}
"""


def _wrapper(tmp_path: Path, what: str, body: str) -> str:
    path = tmp_path / "mysqldump-wrapper"
    path.write_text(WRAPPER.format(what=what, body=body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def shared_job(sandbox, s3, jobfile, make_secret, uid):
    prefix = f"dumpjob-tests/{uid}"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/w_20260101.sql.gz", Body=b"yesterday")
    previous = [snapshot(s3, BUCKET, f"{prefix}/w_20260101.sql.gz")]

    def make(**extra) -> str:
        return jobfile({"w": {"kind": "mysqldump", "secret_id": make_secret(), "databases": ["basis"],
                              "tables": ["properties"], "key": f"{prefix}/w_{{date:%Y%m%d}}.sql.gz", **extra}})

    yield make, prefix, previous
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


def test_missing_trailer_is_not_published(s3, env, tmp_path, shared_job):
    make, prefix, previous = shared_job
    wrapper = _wrapper(tmp_path, "drop the last line (the trailer), exit 0", 'mysqldump "$@" | head -n -1; exit 0')
    result = dumpjob("run", "w", "--config", make(mysqldump=wrapper), "--date", "2026-01-02", env=env)
    assert_failed(result, 6, "no '-- Dump completed' trailer", "upload aborted")
    assert_nothing_published(s3, BUCKET, f"{prefix}/w_20260102.sql.gz", previous)


def test_unexpected_stderr_is_not_published_unless_declared_harmless(s3, env, tmp_path, shared_job):
    make, prefix, previous = shared_job
    wrapper = _wrapper(tmp_path, "complain on stderr, exit 0",
                       'mysqldump "$@"; echo "mysqldump: Couldn\'t execute \'SHOW CREATE TABLE\'" >&2; exit 0')
    result = dumpjob("run", "w", "--config", make(mysqldump=wrapper), "--date", "2026-01-02", env=env)
    assert_failed(result, 6, "unexpected message on stderr", "Couldn't execute", "harmless_warnings")
    assert_nothing_published(s3, BUCKET, f"{prefix}/w_20260102.sql.gz", previous)
    allowed = dumpjob("run", "w", "--config", make(mysqldump=wrapper, harmless_warnings=["Couldn't execute"]),
                      "--date", "2026-01-03", env=env)
    assert allowed.code == 0, allowed.stderr
    assert allowed.event("mysqldump_stderr"), "a tolerated warning is still logged"


def test_dump_below_the_size_floor_is_not_published(s3, env, shared_job):
    make, prefix, previous = shared_job
    result = dumpjob("run", "w", "--config", make(min_bytes=50 * MIB), "--date", "2026-01-02", env=env)
    assert_failed(result, 6, "below the floor", "min_bytes")
    assert_nothing_published(s3, BUCKET, f"{prefix}/w_20260102.sql.gz", previous)


def test_mysqldump_error_exit(s3, env, tmp_path, shared_job):
    make, prefix, previous = shared_job
    result = dumpjob("run", "w", "--config", make(tables=["no_such_table"]), "--date", "2026-01-02", env=env)
    assert_failed(result, 6, "mysqldump exited", "no_such_table")
    assert_nothing_published(s3, BUCKET, f"{prefix}/w_20260102.sql.gz", previous)
