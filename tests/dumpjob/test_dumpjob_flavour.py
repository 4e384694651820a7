"""Client and server flavours: the flags and stream handling of every (client, server) pair, the
first-line filter, and a real run of MariaDB's client against a server that reports itself as
MySQL 8 (a private MariaDB started with --version=8.0.36, which is how VERSION() and dumpjob's
detection see it): the production pair works by default, the sandbox-mode line is dropped, the
manifest records the mode, and the job can keep the line or refuse instead."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from dumpjob_testbed import assert_failed, dumpjob, free_port, wait_until

from dumpjob import mysqldump
from dumpjob.config import parse
from dumpjob.db import ServerInfo
from dumpjob.errors import ConfigError

SANDBOX_LINE = b"/*M!999999\\- enable the sandbox mode */ \n"
MARIADB_CLIENT = mysqldump.Client("/usr/bin/mysqldump", "mysqldump  Ver 10.19 Distrib 10.5.25-MariaDB, for Linux",
                                  "mariadb", 10)
ORACLE_8 = mysqldump.Client("/usr/bin/mysqldump", "mysqldump  Ver 8.0.36 for Linux on x86_64", "mysql", 8)
ORACLE_57 = mysqldump.Client("/usr/bin/mysqldump", "mysqldump  Ver 10.13 Distrib 5.7.44, for Linux", "mysql", 10)
MARIADB_SERVER = ServerInfo("10.11.19-MariaDB", "mariadb")
MYSQL_8 = ServerInfo("8.0.36", "mysql")
MYSQL_57 = ServerInfo("5.7.44-log", "mysql")
COMMON = ["--single-transaction", "--quick", "--no-tablespaces", "--routines", "--events", "--triggers",
          "--hex-blob", "--default-character-set=utf8mb4"]


def _job(**extra):
    body = {"kind": "mysqldump", "secret_id": "s", "bucket": "bkt", "key": "k/{date:%Y}", "databases": ["basis"],
            "tables": ["a", "b"], **extra}
    return parse({"jobs": {"j": body}}).job("j")


@pytest.mark.parametrize(("client", "server", "mode", "extra", "drops"), [
    (MARIADB_CLIENT, MARIADB_SERVER, "native", [], False),
    (MARIADB_CLIENT, MYSQL_8, "mariadb-client-mysql-server", [], True),
    (MARIADB_CLIENT, MYSQL_57, "mariadb-client-mysql-server", [], True),
    (ORACLE_8, MYSQL_8, "native", ["--set-gtid-purged=OFF"], False),
    (ORACLE_8, MYSQL_57, "native", ["--set-gtid-purged=OFF", "--column-statistics=0"], False),
    (ORACLE_8, MARIADB_SERVER, "mysql-client-mariadb-server", ["--set-gtid-purged=OFF", "--column-statistics=0"],
     False),
    (ORACLE_57, MARIADB_SERVER, "mysql-client-mariadb-server", ["--set-gtid-purged=OFF", "--column-statistics=0"],
     False),
])
def test_every_client_server_pair_gets_its_flags_and_mode(client, server, mode, extra, drops):
    compat = mysqldump.compatibility(client, server)
    assert (compat.mode, compat.drop_sandbox_line) == (mode, drops)
    assert mysqldump.flags(compat, _job()) == COMMON + extra + ["--", "basis", "a", "b"]
    assert compat.record == {"mode": mode, "client": client.flavour, "server": server.flavour,
                             "sandbox_line": "dropped" if drops else "kept"}


def test_the_job_can_keep_the_line_or_refuse_the_mismatch():
    kept = mysqldump.compatibility(MARIADB_CLIENT, MYSQL_8, "keep")
    assert kept.mode == "mariadb-client-mysql-server" and not kept.drop_sandbox_line
    with pytest.raises(ConfigError, match="flavour_mismatch: refuse"):
        mysqldump.compatibility(MARIADB_CLIENT, MYSQL_8, "refuse")
    with pytest.raises(ConfigError, match="flavour_mismatch: refuse"):
        mysqldump.compatibility(ORACLE_8, MARIADB_SERVER, "refuse")
    assert mysqldump.compatibility(ORACLE_8, MYSQL_8, "refuse").mode == "native"


def test_the_setting_is_checked_and_the_old_key_names_its_replacement():
    assert _job().flavour_mismatch == "adapt"
    assert _job(flavour_mismatch="keep").flavour_mismatch == "keep"
    with pytest.raises(ConfigError, match="'flavour_mismatch' must be one of adapt, keep, refuse"):
        _job(flavour_mismatch="yes")
    with pytest.raises(ConfigError, match="'allow_flavour_mismatch' was replaced by 'flavour_mismatch: adapt'"):
        _job(allow_flavour_mismatch=True)


def _filtered(active: bool, data: bytes, size: int) -> tuple[bytes, bool]:
    f = mysqldump.FirstLineFilter(active)
    out = b"".join(f.feed(data[i:i + size]) for i in range(0, len(data), size)) + f.flush()
    return out, f.dropped


@pytest.mark.parametrize("size", [1, 7, 39, 41, 4096])
def test_the_first_line_filter_drops_exactly_the_sandbox_line(size):
    body = b"-- MariaDB dump 10.19\n--\n/*M!999999\\- enable the sandbox mode */ \nINSERT 1;\n"
    assert _filtered(True, SANDBOX_LINE + body, size) == (body, True)
    assert _filtered(True, SANDBOX_LINE.replace(b" \n", b"\n") + body, size) == (body, True)
    # a dump without it passes byte-identical, and so does everything when the filter is off
    for data in (body, b"x" * 300 + b"\n" + body, b"no line end at all", b""):
        assert _filtered(True, data, size) == (data, False)
    assert _filtered(False, SANDBOX_LINE + body, size) == (SANDBOX_LINE + body, False)
    # only the first line: the same text further down is data, and so is a longer first line
    assert _filtered(True, b"--\n" + SANDBOX_LINE, size) == (b"--\n" + SANDBOX_LINE, False)
    other = b"/*M!999999\\- enable the sandbox mode */ extra\n" + body
    assert _filtered(True, other, size) == (other, False)


# -- a real run against a server that says it is MySQL 8 --------------------------------------------
@pytest.fixture(scope="module")
def mysql8(tmp_path_factory):
    """A private MariaDB that reports VERSION() 8.0.36 (no 'MariaDB' in it), with a small database."""
    root = Path(tempfile.mkdtemp(prefix="djv", dir="/tmp"))  # short: a unix socket path
    port = free_port()
    datadir, sock, pid = root / "data", root / "s.sock", root / "d.pid"
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
                    "--auth-root-authentication-method=socket", "--skip-test-db"], check=True, capture_output=True)
    proc = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={sock}", f"--port={port}",
                             "--bind-address=127.0.0.1", "--user=root", "--version=8.0.36", f"--pid-file={pid}",
                             "--skip-name-resolve", "--character-set-server=utf8mb4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot"]
    try:
        wait_until(lambda: subprocess.run([*client, "-e", "SELECT 1"], capture_output=True).returncode == 0, 60,
                   "the private server")
        subprocess.run([*client], check=True, capture_output=True, input=b"""
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(8,2));
INSERT INTO shop.items VALUES (1, 'tea', 3.50), (2, 'rice', 12.00), (3, 'O''Neil', NULL);
CREATE VIEW shop.cheap AS SELECT id, name FROM shop.items WHERE price < 5;
CREATE USER 'reader'@'%' IDENTIFIED BY 'r3ader pw';
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO 'reader'@'%';
""")
        yield {"port": port, "client": client}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _run(mysql8, make_secret, jobfile, prefix, env, day: str, **extra):
    secret = make_secret(host="127.0.0.1", port=mysql8["port"], username="reader", password="r3ader pw")
    config = jobfile({"shop": {"kind": "mysqldump", "secret_id": secret, "databases": ["shop"], "min_bytes": 100,
                               "key": f"{prefix}/shop_{{date:%Y%m%d}}.sql.gz", **extra}})
    return dumpjob("run", "shop", "--config", config, "--date", day, "--json", env=env), config


def test_mariadb_client_dumps_a_mysql_server_by_default_without_the_sandbox_line(mysql8, s3, env, jobfile,
                                                                                  make_secret, prefix):
    result, config = _run(mysql8, make_secret, jobfile, prefix, env, "2026-03-01")
    assert result.code == 0, result.stderr
    warnings = result.event("flavour")
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert warnings[0]["mode"] == "mariadb-client-mysql-server" and "dropped" in warnings[0]["msg"]
    body = gzip.decompress(s3.get_object(Bucket="jram-gghouse", Key=result.json["key"])["Body"].read())
    assert not body.startswith(b"/*M!999999") and body.startswith(b"-- MariaDB dump")
    # the rest is what the client wrote: compare with the client's own output, minus that line
    direct = subprocess.run(["mysqldump", *mysql8["client"][1:], *COMMON, "shop"], capture_output=True,
                            check=True).stdout
    assert direct.startswith(SANDBOX_LINE)

    def stable(dump: bytes) -> list[bytes]:
        return [line for line in dump.split(b"\n") if not line.startswith((b"-- Dump completed", b"-- Host:"))]
    assert stable(body) == stable(direct[len(SANDBOX_LINE):])
    doc = json.loads(s3.get_object(Bucket="jram-gghouse", Key=result.json["key"] + ".manifest.json")["Body"].read())
    assert doc["compatibility"] == {"mode": "mariadb-client-mysql-server", "client": "mariadb", "server": "mysql",
                                    "sandbox_line": "dropped"}
    assert doc["versions"]["server"] == "8.0.36" and doc["tables"] == {"items": 3}
    verified = dumpjob("verify", result.json["url"], "--json", env=env)
    assert verified.code == 0, verified.stdout
    # the doctor names the client, the server and the mode that will be used
    report = dumpjob("doctor", "shop", "--config", config, "--json", env=env).json
    flavour = next(c for c in report["jobs"][0]["checks"] if c["name"] == "flavour")
    assert flavour["ok"] and flavour["mode"] == "mariadb-client-mysql-server"
    assert (flavour["client_flavour"], flavour["server_flavour"], flavour["server_version"]) == \
        ("mariadb", "mysql", "8.0.36")
    assert "dropped" in flavour["reason"]


def test_the_job_keeps_the_line_or_refuses_the_mysql_server(mysql8, s3, env, jobfile, make_secret, prefix):
    kept, _ = _run(mysql8, make_secret, jobfile, prefix, env, "2026-03-02", flavour_mismatch="keep")
    assert kept.code == 0, kept.stderr
    body = gzip.decompress(s3.get_object(Bucket="jram-gghouse", Key=kept.json["key"])["Body"].read())
    assert body.startswith(SANDBOX_LINE)
    refused, _ = _run(mysql8, make_secret, jobfile, prefix, env, "2026-03-03", flavour_mismatch="refuse")
    assert_failed(refused, 3, "flavour_mismatch: refuse", "install the mysql client")
    assert not s3.list_objects_v2(Bucket="jram-gghouse", Prefix=f"{prefix}/shop_20260303").get("Contents")


def test_a_mariadb_server_dump_keeps_its_first_line_and_records_native(sandbox, s3, env, jobfile, make_secret,
                                                                        prefix):
    secret = make_secret()
    config = jobfile({"basis": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"], "tables": ["tenants"],
                                "key": f"{prefix}/t_{{date:%Y%m%d}}.sql.gz"}})
    result = dumpjob("run", "basis", "--config", config, "--date", "2026-03-04", "--json", env=env)
    assert result.code == 0, result.stderr
    assert not result.event("flavour")
    body = gzip.decompress(s3.get_object(Bucket="jram-gghouse", Key=result.json["key"])["Body"].read())
    assert body.startswith(SANDBOX_LINE)
    doc = json.loads(s3.get_object(Bucket="jram-gghouse", Key=result.json["key"] + ".manifest.json")["Body"].read())
    assert doc["compatibility"]["mode"] == "native" and doc["compatibility"]["sandbox_line"] == "kept"
