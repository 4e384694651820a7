"""Credentials: tricky passwords work and never leak (argv, child environment, logs, files);
rotation needs no restart; every credential failure is its own one-line error and publishes nothing."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from dumpjob_testbed import (
    Proxy,
    Running,
    assert_failed,
    assert_nothing_published,
    dumpjob,
    free_port,
    process_tree,
    snapshot,
)

from sandbox import config as sandbox_config

# The shared sandbox's MariaDB port (SANDBOX_PORT_BASE shifts it).
DB_PORT = sandbox_config.load().mariadb_port
BUCKET = "jram-gghouse"
TRICKY = "q'u\"o t$e#s\\;日本語ﾊﾟｽ\\"


@pytest.fixture
def slow_s3(sandbox):
    """S3 (the shared moto) behind a throttling proxy, so that a run lasts a few seconds."""
    proxy = Proxy(target=sandbox.settings.moto_port, rate=250_000).start()
    yield proxy
    proxy.stop()


class Sampler(threading.Thread):
    """Reads every /proc/*/cmdline, and the environ of the run's process tree, until stopped."""

    def __init__(self, root: int, needle: bytes, work_dir: Path):
        super().__init__(daemon=True)
        self.root, self.needle, self.work_dir = root, needle, work_dir
        self.stop = threading.Event()
        self.samples = 0
        self.leaks: list[str] = []
        self.mysqldump_argv: list[list[bytes]] = []
        self.private_modes: list[tuple[int, int]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            tree = set(process_tree(self.root))
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    argv = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if self.needle in argv:
                    self.leaks.append(f"cmdline of {entry}")
                parts = argv.split(b"\0")
                # Only this run's mysqldump: other tests may run theirs at the same time.
                if parts and parts[0].endswith(b"mysqldump") and int(entry) in tree:
                    self.mysqldump_argv.append(parts)
            for pid in tree:
                try:
                    if self.needle in Path(f"/proc/{pid}/environ").read_bytes():
                        self.leaks.append(f"environ of {pid}")
                except OSError:
                    pass
            for d in self.work_dir.glob("dumpjob-*"):
                try:
                    files = [f for f in d.iterdir() if f.is_file()]
                    self.private_modes.append((stat.S_IMODE(d.stat().st_mode),
                                               max((stat.S_IMODE(f.stat().st_mode) for f in files), default=0)))
                except OSError:
                    pass
            self.samples += 1


@pytest.mark.parametrize("transport", ["pipe", "file"])
def test_tricky_password_works_and_never_leaks(s3, env, jobfile, make_secret, db_user, prefix, slow_s3, tmp_path,
                                               transport):
    user = db_user(TRICKY)
    secret = make_secret(username=user, password=TRICKY)
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                                "credentials_transport": transport, "key": f"{prefix}/basis_{{date:%Y%m%d}}.sql.gz"}})
    run = Running("run", "basis", "--config", config, "--json", env={**env, "AWS_ENDPOINT_URL_S3": slow_s3.url})
    sampler = Sampler(run.proc.pid, TRICKY.encode(), tmp_path / "work")
    sampler.start()
    result = run.finish()
    sampler.stop.set()
    sampler.join()
    assert result.code == 0, result.stderr
    assert result.json["rows"] > 0
    dumps = [argv for argv in sampler.mysqldump_argv if b"--version" not in argv]
    assert sampler.samples > 20 and dumps, "the sampler never saw mysqldump dumping"
    assert not sampler.leaks, sampler.leaks
    for argv in dumps:
        assert argv[1].startswith(b"--defaults-extra-file="), argv
        if transport == "pipe":
            assert argv[1].startswith(b"--defaults-extra-file=/dev/fd/")
    if transport == "file":
        assert sampler.private_modes and all(d == 0o700 and f in (0, 0o600) for d, f in sampler.private_modes)
    assert not list((tmp_path / "work").iterdir()), "temporary files left behind"
    for form in (TRICKY, json.dumps(TRICKY)[1:-1], json.dumps(TRICKY, ensure_ascii=False)[1:-1], "t$e#s"):
        assert form not in result.stderr and form not in result.stdout
    assert result.logs[-1]["event"] == "summary", result.stderr


def _finish_rotation(sm, secret: str, pending: str) -> None:
    """What a rotation's finishSecret step does: AWSCURRENT moves to the new version, AWSPENDING goes."""
    current = next(v for v, stages in sm.describe_secret(SecretId=secret)["VersionIdsToStages"].items()
               if "AWSCURRENT" in stages and v != pending)
    sm.update_secret_version_stage(SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=pending,
                                   RemoveFromVersionId=current)
    sm.update_secret_version_stage(SecretId=secret, VersionStage="AWSPENDING", RemoveFromVersionId=pending)


def test_rotation_needs_no_restart(sandbox, sm, s3, env, jobfile, make_secret, db_user, prefix):
    user = db_user("first-Pass#1")
    secret = make_secret(username=user, password="first-Pass#1")
    config = jobfile({"rot": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"], "tables": ["rooms"],
                              "key": f"{prefix}/rot_{{date:%Y%m%d}}.sql.gz"}})
    first = dumpjob("run", "rot", "--config", config, env=env)
    assert first.code == 0 and first.event("database")[0]["stage"] == "AWSCURRENT" and not first.event("auth_retry")

    # Rotation in flight: the DB already has the new password, the secret holds it only as AWSPENDING.
    doc = {"engine": "mariadb", "host": "127.0.0.1", "port": DB_PORT, "username": user, "password": "second Pass;2"}
    sandbox.sql(f"ALTER USER '{user}'@'%' IDENTIFIED BY 'second Pass;2'")
    pending = sm.put_secret_value(SecretId=secret, SecretString=json.dumps(doc),
                                  VersionStages=["AWSPENDING"])["VersionId"]
    second = dumpjob("run", "rot", "--config", config, env=env)
    assert second.code == 0, second.stderr
    assert second.event("auth_retry") and second.event("database")[0]["stage"] == "AWSPENDING"

    # Rotation finished: the next run logs in with AWSCURRENT straight away.
    _finish_rotation(sm, secret, pending)
    third = dumpjob("run", "rot", "--config", config, env=env)
    assert third.code == 0 and third.event("database")[0]["stage"] == "AWSCURRENT" and not third.event("auth_retry")

    # Another complete rotation between two runs: read at the very next run, nothing cached or redeployed.
    sandbox.sql(f"ALTER USER '{user}'@'%' IDENTIFIED BY 'third\\\\Pass\"3'")
    pending = sm.put_secret_value(SecretId=secret, SecretString=json.dumps({**doc, "password": 'third\\Pass"3'}),
                                  VersionStages=["AWSPENDING"])["VersionId"]
    _finish_rotation(sm, secret, pending)
    fourth = dumpjob("run", "rot", "--config", config, env=env)
    assert fourth.code == 0, fourth.stderr
    assert fourth.event("database")[0]["stage"] == "AWSCURRENT" and not fourth.event("auth_retry")
    for result in (first, second, third, fourth):
        for password in ("first-Pass#1", "second Pass;2", 'third\\Pass"3', 'third\\\\Pass\\"3'):
            assert password not in result.stderr


@pytest.fixture
def previous(s3, prefix):
    """Yesterday's published object under the job's key, which every failed run must leave alone."""
    key = f"{prefix}/job_20260101.sql.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"yesterday's dump")
    return snapshot(s3, BUCKET, key)


def _job(jobfile, prefix, secret, **extra) -> str:
    return jobfile({"job": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                            "key": f"{prefix}/job_{{date:%Y%m%d}}.sql.gz", **extra}})


def test_wrong_password(s3, env, jobfile, make_secret, prefix, previous):
    secret = make_secret(password="not-the-Password#9")
    result = dumpjob("run", "job", "--config", _job(jobfile, prefix, secret), "--date", "2026-01-02", env=env)
    assert_failed(result, 5, "authentication failed", "AWSPENDING")
    assert "not-the-Password#9" not in result.stderr
    assert_nothing_published(s3, BUCKET, f"{prefix}/job_20260102.sql.gz", [previous])


def test_secret_missing(s3, env, jobfile, prefix, previous):
    result = dumpjob("run", "job", "--config", _job(jobfile, prefix, "dumpjob-test/no-such-secret"), "--date",
                     "2026-01-02", env=env)
    assert_failed(result, 4, "secret 'dumpjob-test/no-such-secret' does not exist")
    assert_nothing_published(s3, BUCKET, f"{prefix}/job_20260102.sql.gz", [previous])


@pytest.mark.parametrize("key", ["password", "host", "username"])
def test_secret_json_missing_a_key(s3, env, jobfile, make_secret, prefix, previous, key):
    secret = make_secret(**{key: None})
    result = dumpjob("run", "job", "--config", _job(jobfile, prefix, secret), "--date", "2026-01-02", env=env)
    assert_failed(result, 4, f"has no '{key}' key")
    assert_nothing_published(s3, BUCKET, f"{prefix}/job_20260102.sql.gz", [previous])


def test_database_unreachable_at_start(s3, env, jobfile, make_secret, prefix, previous):
    port = free_port()  # nothing listens there
    secret = make_secret(port=port)
    result = dumpjob("run", "job", "--config", _job(jobfile, prefix, secret, connect_timeout=3), "--date",
                     "2026-01-02", env=env)
    assert_failed(result, 5, "cannot reach database", f"127.0.0.1:{port}")
    assert_nothing_published(s3, BUCKET, f"{prefix}/job_20260102.sql.gz", [previous])


def test_bucket_missing(s3, env, jobfile, make_secret, prefix, previous, uid):
    secret = make_secret()
    config = jobfile({"job": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"],
                              "key": f"{prefix}/job_{{date:%Y%m%d}}.sql.gz"}}, bucket=f"no-such-bucket-{uid}")
    result = dumpjob("run", "job", "--config", config, "--date", "2026-01-02", env=env)
    assert_failed(result, 7, f"bucket 'no-such-bucket-{uid}' does not exist")
    assert_nothing_published(s3, BUCKET, f"{prefix}/job_20260102.sql.gz", [previous])
