"""Fixtures for the dumpjob tests, on top of the shared `sandbox` fixture (tests/conftest.py).

Tests that only read use the shared MariaDB and moto with unique names; tests that stop a server
or cut S3 use the private MariaDB/moto of `faultbed`, started here and stopped by PID."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import boto3
import pytest
from dumpjob_testbed import PrivateMoto, Proxy, free_port, write_config

from sandbox import config as sandbox_config
from sandbox import mariadb as sandbox_mariadb
from sandbox import procs as sandbox_procs

# The shared sandbox's MariaDB port (SANDBOX_PORT_BASE shifts it).
DB_PORT = sandbox_config.load().mariadb_port

BUCKET = sandbox_config.BUCKET
REGION = sandbox_config.REGION
READER = sandbox_config.LEGACY_DB_USER
READER_PASSWORD = sandbox_config.LEGACY_DB_PASSWORD


@pytest.fixture
def prefix(s3, uid):
    """A key prefix of the test's own in the shared bucket, emptied afterwards."""
    name = f"dumpjob-tests/{uid}"
    yield name
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=name).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def s3(sandbox):
    return sandbox.client("s3")


@pytest.fixture(scope="session")
def sm(sandbox):
    return sandbox.client("secretsmanager")


@pytest.fixture
def env(aws_env) -> dict[str, str]:
    return {**aws_env, "DUMPJOB_NO_SYSLOG": "1"}


def sql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.fixture
def make_secret(sm):
    """make_secret(**fields) -> secret id, in the shared moto; deleted afterwards."""
    made = []

    def make(name: str | None = None, client=None, **fields) -> str:
        client = client or sm
        secret_id = name or f"dumpjob-test/{uuid.uuid4().hex[:10]}"
        doc = {"engine": "mariadb", "host": "127.0.0.1", "port": DB_PORT, "username": READER,
               "password": READER_PASSWORD, "dbname": "basis"}
        doc.update(fields)
        doc = {k: v for k, v in doc.items() if v is not None}
        client.create_secret(Name=secret_id, SecretString=json.dumps(doc, ensure_ascii=False))
        made.append((client, secret_id))
        return secret_id

    yield make
    for client, secret_id in made:
        client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def db_user(sandbox):
    """db_user(password) -> user name with the legacy reader's grants on the shared server; dropped afterwards."""
    made = []

    def make(password: str) -> str:
        user = f"dj_{uuid.uuid4().hex[:10]}"
        sandbox.sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY {sql_quote(password)};\n"
                    f"GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, PROCESS, RELOAD ON *.* TO '{user}'@'%';")
        made.append(user)
        return user

    yield make
    for user in made:
        sandbox.sql(f"DROP USER IF EXISTS '{user}'@'%';")


@pytest.fixture
def jobfile(tmp_path):
    """jobfile(jobs, **defaults) -> path of a job file with private lock and work directories."""
    (tmp_path / "work").mkdir()

    def make(jobs: dict, **defaults) -> str:
        base = {"bucket": BUCKET, "lock_dir": str(tmp_path / "lock"), "work_dir": str(tmp_path / "work"),
                "progress_seconds": 1}
        base.update(defaults)
        return str(write_config(tmp_path / "jobs.yml", jobs, base))

    return make


# -- the private servers of the fault tests ------------------------------------------------------
@dataclasses.dataclass
class FaultBed:
    settings: sandbox_config.Settings
    moto: PrivateMoto
    proxy: Proxy
    s3: object
    sm: object
    prefix: str

    @property
    def db_port(self) -> int:
        return self.settings.mariadb_port

    def env(self, base: dict) -> dict:
        """AWS services at the private moto, S3 through the proxy."""
        return {**base, "AWS_ENDPOINT_URL": self.moto.url, "AWS_ENDPOINT_URL_S3": self.proxy.url,
                "DUMPJOB_NO_SYSLOG": "1"}

    def db_up(self) -> None:
        if not sandbox_mariadb.running(self.settings):
            sandbox_mariadb.up(self.settings)

    def db_down(self) -> None:
        sandbox_procs.stop_daemon(self.settings.pidfile(sandbox_mariadb.NAME), timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_orphaned_faultbeds(settings: sandbox_config.Settings) -> None:
    """Stop the private servers of an earlier session that was killed before its teardown (its
    owner process is gone), by the PIDs it recorded."""
    for state in Path("/tmp").glob("djf*"):
        try:
            owner = int((state / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        sandbox_procs.stop_daemon(dataclasses.replace(settings, state=state).pidfile(sandbox_mariadb.NAME), timeout=60)
        try:
            moto_pid, moto_port = (int(x) for x in (state / "moto.pid").read_text().split())
            if f"-p\0{moto_port}".encode() in Path(f"/proc/{moto_pid}/cmdline").read_bytes():
                os.kill(moto_pid, 15)
        except (OSError, ValueError):
            pass
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def faultbed(sandbox):
    """A private MariaDB (basis at a small scale plus 24 MiB of random blobs, so a dump spans
    several 5 MiB parts) and a private moto behind a proxy that can slow S3 down or cut it off."""
    _reap_orphaned_faultbeds(sandbox.settings)
    state = Path(tempfile.mkdtemp(prefix="djf", dir="/tmp"))
    (state / "owner.pid").write_text(f"{os.getpid()}\n")
    settings = dataclasses.replace(sandbox.settings, state=state, mariadb_port=free_port(), scale=200)
    moto = PrivateMoto()
    (state / "moto.pid").write_text(f"{moto.proc.pid} {moto.port}\n")
    proxy = Proxy(target=moto.port).start()
    try:
        sandbox_mariadb.up(settings)
        sandbox_mariadb.sql(settings, "CREATE TABLE blobs (id INT PRIMARY KEY, body BLOB NOT NULL);"
                                      "INSERT INTO blobs SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_24576;", "basis")
        kw = {"endpoint_url": moto.url, "region_name": REGION, "aws_access_key_id": "sandbox",
              "aws_secret_access_key": "sandbox"}
        s3 = boto3.client("s3", **kw)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        bed = FaultBed(settings, moto, proxy, s3, boto3.client("secretsmanager", **kw),
                       f"faults-{uuid.uuid4().hex[:8]}")
        yield bed
    finally:
        proxy.stop()
        sandbox_mariadb.down(settings)
        moto.stop()
        shutil.rmtree(state, ignore_errors=True)
