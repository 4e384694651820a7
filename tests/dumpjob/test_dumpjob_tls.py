"""TLS to the database, verified: with `ssl_ca` every connection (the preflight login, the query
job's, mysqldump's, doctor's) checks the server's certificate against that CA and the host name.

Against the sandbox MariaDB, which serves a certificate of the sandbox's own CA naming only
IP:127.0.0.1 (sandbox/tls.py). The job's database user is created `REQUIRE SSL`, so a connection
without TLS would be refused: a published dump proves that every connection used TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dumpjob_testbed import assert_failed, assert_nothing_published, dumpjob

from dumpjob import mysqldump
from dumpjob.errors import DatabaseError
from dumpjob.secret import DbCredentials
from sandbox import config as sandbox_config
from sandbox import mariadb as sandbox_mariadb
from sandbox import tls as sandbox_tls

DB_PORT = sandbox_config.load().mariadb_port
BUCKET = sandbox_config.BUCKET
READER, READER_PASSWORD = sandbox_config.LEGACY_DB_USER, sandbox_config.LEGACY_DB_PASSWORD

PASSWORD = "Tls-p4ss word#1"  # a test account of its own


@pytest.fixture(scope="module")
def ca(sandbox) -> str:
    """The sandbox's CA (MARIADB_SSL_CA in .sandbox/env), of a MariaDB that serves TLS."""
    path = sandbox.env.get("MARIADB_SSL_CA") or str(sandbox_mariadb.ssl_ca(sandbox.settings))
    if not Path(path).is_file() or not sandbox_mariadb.serves_tls(sandbox.settings):
        pytest.fail("the sandbox MariaDB serves no TLS (started before it did): run 'make sandbox-up' once")
    return path


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory) -> str:
    """A CA that signed nothing the server has."""
    return str(sandbox_tls.write_ca(tmp_path_factory.mktemp("wrong-ca") / "wrong-ca.pem", "some other CA"))


@pytest.fixture
def tls_user(sandbox, db_user) -> str:
    """A user with the reader's grants that the server refuses without TLS."""
    user = db_user(PASSWORD)
    sandbox.sql(f"ALTER USER '{user}'@'%' REQUIRE SSL;")
    return user


def _job(prefix: str, secret: str, ssl_ca: str | None, kind: str = "mysqldump") -> dict:
    job = {"kind": kind, "secret_id": secret, "key": f"{prefix}/dumps/{kind}_{{date:%Y%m%d}}.gz"}
    if kind == "mysqldump":
        job["databases"] = ["basis"]
        job["tables"] = ["properties", "rooms"]
    else:
        job.update(database="basis", query="SELECT id, status, monthly_rent_yen FROM contracts ORDER BY id")
    if ssl_ca is not None:
        job["ssl_ca"] = ssl_ca
    return job


def _plain_login(user: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """The real client, TLS switched off, as that user."""
    cnf = tmp_path / "plain.cnf"
    cnf.write_text(f"[client]\nuser={user}\npassword=\"{PASSWORD}\"\nhost=127.0.0.1\nport={DB_PORT}\n"
                   "protocol=TCP\nskip-ssl\n")
    cnf.chmod(0o600)
    return subprocess.run(["mariadb", f"--defaults-file={cnf}", "-e", "SELECT 1"], capture_output=True, text=True)


# -- verified TLS end to end ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mysqldump", "query"])
def test_a_job_with_the_sandbox_ca_dumps_over_verified_tls(kind, ca, tls_user, make_secret, jobfile, prefix, env,
                                                           tmp_path):
    refused = _plain_login(tls_user, tmp_path)
    assert refused.returncode != 0 and "Access denied" in refused.stderr, "the user must need TLS"

    config = jobfile({"tls": _job(prefix, make_secret(username=tls_user, password=PASSWORD), ca, kind)})
    result = dumpjob("run", "tls", "--config", config, "--date", "2026-03-01", "--json", env=env)
    assert result.code == 0, result.stderr
    (database,) = result.event("database")
    assert database["tls"], database  # the negotiated cipher, as the server reports it
    assert result.json["rows"] > 0

    checked = dumpjob("verify", result.json["url"], "--json", env=env)
    assert checked.code == 0, checked.stdout + checked.stderr
    assert checked.json["ok"] is True


def test_without_ssl_ca_the_database_event_says_what_was_negotiated(make_secret, jobfile, prefix, env):
    config = jobfile({"plain": _job(prefix, make_secret(), None, "query")})
    result = dumpjob("run", "plain", "--config", config, "--date", "2026-03-01", env=env)
    assert result.code == 0, result.stderr
    (database,) = result.event("database")
    assert "tls" in database  # PyMySQL's unverified opportunistic TLS, or null


def test_doctor_reports_the_cipher_and_the_verifying_ca(ca, tls_user, make_secret, jobfile, prefix, env):
    config = jobfile({"tls": _job(prefix, make_secret(username=tls_user, password=PASSWORD), ca)})
    result = dumpjob("doctor", "tls", "--config", config, "--json", env=env)
    (job,) = result.json["jobs"]
    database = next(c for c in job["checks"] if c["name"] == "database")
    assert database["ok"] is True, database
    assert database["tls"] and database["tls"] in database["reason"]
    assert f"verified against {ca}" in database["reason"]


# -- verification failures: exit 5, one line naming the CA -----------------------------------------
@pytest.mark.parametrize("kind", ["mysqldump", "query"])
def test_a_wrong_ca_fails_with_exit_5_naming_the_ca(kind, wrong_ca, make_secret, jobfile, prefix, env, s3):
    config = jobfile({"tls": _job(prefix, make_secret(), wrong_ca, kind)})
    result = dumpjob("run", "tls", "--config", config, "--date", "2026-03-01", env=env)
    assert_failed(result, 5, "TLS verification of 127.0.0.1", f"against the CA {wrong_ca}",
                  "certificate verify failed", "fix 'ssl_ca'")
    assert_nothing_published(s3, BUCKET, f"{prefix}/dumps/{kind}_20260301.gz")


def test_a_host_name_mismatch_fails_with_exit_5_naming_the_ca(ca, make_secret, jobfile, prefix, env, s3):
    # The certificate names IP:127.0.0.1 only; `localhost` reaches the same server.
    config = jobfile({"tls": _job(prefix, make_secret(host="localhost"), ca)})
    result = dumpjob("run", "tls", "--config", config, "--date", "2026-03-01", env=env)
    assert_failed(result, 5, "TLS verification of localhost", f"against the CA {ca}", "hostname mismatch",
                  "the secret's host")
    assert_nothing_published(s3, BUCKET, f"{prefix}/dumps/mysqldump_20260301.gz")


def test_doctor_fails_the_database_check_on_a_wrong_ca(wrong_ca, make_secret, jobfile, prefix, env):
    config = jobfile({"tls": _job(prefix, make_secret(), wrong_ca)})
    result = dumpjob("doctor", "tls", "--config", config, "--json", env=env)
    assert result.code == 12
    database = next(c for c in result.json["jobs"][0]["checks"] if c["name"] == "database")
    assert database["ok"] is False and f"against the CA {wrong_ca}" in database["reason"]


# -- the mysqldump client's own verification (its option file), with the real client ------------
def _client_dump(ssl_ca: str, host: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, object]:
    creds = DbCredentials(host, DB_PORT, READER, READER_PASSWORD)
    client = mysqldump.detect_client("mysqldump")
    cnf = tmp_path / "client.cnf"
    cnf.write_bytes(mysqldump.option_file(creds, ssl_ca, client.flavour))
    cnf.chmod(0o600)
    proc = subprocess.run([client.path, f"--defaults-extra-file={cnf}", "--no-data", "basis", "properties"],
                          capture_output=True, text=True, env=mysqldump.child_env())
    return proc, mysqldump.failure(proc.returncode, proc.stderr.splitlines(), (), len(proc.stdout), ssl_ca)


def test_the_option_file_makes_the_real_client_verify_ca_and_host_name(ca, wrong_ca, tmp_path):
    good, problem = _client_dump(ca, "127.0.0.1", tmp_path)
    assert good.returncode == 0 and problem is None, good.stderr

    for ssl_ca, host in ((wrong_ca, "127.0.0.1"), (ca, "localhost")):
        bad, problem = _client_dump(ssl_ca, host, tmp_path)
        assert bad.returncode != 0, f"{host} with {ssl_ca} was accepted"
        assert isinstance(problem, DatabaseError), problem
        assert f"against the CA {ssl_ca}" in str(problem) and "2026" in str(problem)


# -- a missing CA file: exit 3 at load time; the controller may skip host files ----------------------
def test_a_missing_ssl_ca_is_a_config_error_found_by_check_config(make_secret, jobfile, prefix, env, tmp_path):
    missing = str(tmp_path / "no-such-ca.pem")
    config = jobfile({"tls": _job(prefix, "rds/none", missing)})

    checked = dumpjob("check-config", "--config", config, env=env)
    assert_failed(checked, 3, "job 'tls'", "key 'ssl_ca'", missing, "does not exist", "dumpjob_ssl_ca_bundle")
    for command in (("run", "tls"), ("doctor", "tls")):
        assert_failed(dumpjob(*command, "--config", config, env=env), 3, missing, "does not exist")

    shape_only = dumpjob("check-config", "--config", config, "--skip-host-files", "--json", env=env)
    assert shape_only.code == 0, shape_only.stderr
    assert "tls" in shape_only.json["jobs"]


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: p.mkdir(), ["a directory"]),
    (lambda p: p.write_text("not a certificate\n"), ["holds no PEM certificate"]),
])
def test_an_unusable_ssl_ca_is_a_config_error(make, words, jobfile, prefix, env, tmp_path):
    path = tmp_path / "ca.pem"
    make(path)
    config = jobfile({"tls": _job(prefix, "rds/none", str(path))})
    assert_failed(dumpjob("check-config", "--config", config, env=env), 3, str(path), *words)


def test_a_relative_ssl_ca_is_refused_even_when_host_files_are_skipped(jobfile, prefix, env):
    config = jobfile({"tls": _job(prefix, "rds/none", "certs/ca.pem")})
    result = dumpjob("check-config", "--config", config, "--skip-host-files", env=env)
    assert_failed(result, 3, "key 'ssl_ca'", "absolute path")


# -- unit: the option file per client flavour -----------------------------------------------------
CREDS = DbCredentials("db.example", 3306, "u", "p")


@pytest.mark.parametrize(("flavour", "verify", "other"), [
    ("mariadb", "ssl-verify-server-cert", "ssl-mode=VERIFY_IDENTITY"),
    ("mysql", "ssl-mode=VERIFY_IDENTITY", "ssl-verify-server-cert"),
])
def test_option_file_carries_the_flavours_verify_option(flavour, verify, other):
    lines = mysqldump.option_file(CREDS, "/etc/dumpjob/rds-ca.pem", flavour).decode().splitlines()
    assert 'ssl-ca="/etc/dumpjob/rds-ca.pem"' in lines
    assert verify in lines and other not in lines


@pytest.mark.parametrize("flavour", ["mariadb", "mysql"])
def test_option_file_without_ssl_ca_has_no_tls_option(flavour):
    text = mysqldump.option_file(CREDS, None, flavour).decode()
    assert "ssl" not in text


@pytest.mark.parametrize("line", [
    'mysqldump: Got error: 2026: "TLS/SSL error: Validation of SSL server certificate failed" when trying to connect',
    "mysqldump: Got error: 2026: SSL connection error: error:0A000086:SSL routines::certificate verify failed "
    "when trying to connect",
])
def test_a_tls_failure_on_mysqldumps_stderr_is_a_database_error_naming_the_ca(line):
    problem = mysqldump.failure(2, [line], (), 0, "/etc/dumpjob/rds-ca.pem")
    assert isinstance(problem, DatabaseError)
    assert "against the CA /etc/dumpjob/rds-ca.pem" in str(problem)


def test_a_tls_error_during_the_dump_is_not_taken_for_a_verification_failure():
    # The server went away under a TLS session: the run's probe decides whether it was lost.
    line = "mysqldump: Error 2026: TLS/SSL error: unexpected eof while reading when dumping table `blobs` at row: 18543"
    problem = mysqldump.failure(2, [line], (), 10, "/etc/dumpjob/rds-ca.pem")
    assert not isinstance(problem, DatabaseError) and "CA" not in str(problem)
