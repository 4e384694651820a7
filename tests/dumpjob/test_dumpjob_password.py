"""`dumpjob password JOB status|set|test|revert` against the sandbox's MariaDB and moto, with a
database user and a secret of each test's own (the shared reader's password is never changed)."""

from __future__ import annotations

import json

import pytest
from conftest import DB_PORT
from dumpjob_testbed import dumpjob

from dumpjob import db
from dumpjob.password import change_statement

OLD = "old-Pass#1 'x'"
NEW = 'new\\Pass"2;$x 日本'


def test_change_statement_per_flavour():
    """MySQL 8.0.13+ names the current password (password_require_current); MariaDB has no REPLACE
    clause and lets an account without CREATE USER change only its own password with SET PASSWORD."""
    assert change_statement(db.ServerInfo("8.0.39", "mysql")) == (
        "ALTER USER CURRENT_USER() IDENTIFIED BY %s REPLACE %s", 2)
    assert change_statement(db.ServerInfo("8.4.3-commercial", "mysql"))[1] == 2
    assert change_statement(db.ServerInfo("8.0.12", "mysql")) == ("ALTER USER CURRENT_USER() IDENTIFIED BY %s", 1)
    assert change_statement(db.ServerInfo("5.7.44-log", "mysql"))[1] == 1
    assert change_statement(db.ServerInfo("10.11.19-MariaDB-log", "mariadb")) == ("SET PASSWORD = PASSWORD(%s)", 1)


@pytest.fixture
def rotating(sm, make_secret, db_user, jobfile, prefix):
    user = db_user(OLD)
    secret = make_secret(username=user, password=OLD)
    config = jobfile({"rot": {"kind": "mysqldump", "secret_id": secret, "databases": ["basis"], "tables": ["rooms"],
                              "key": f"{prefix}/rot_{{date:%Y%m%d}}.sql.gz"}})
    return user, secret, config


def _pending(sm, secret: str, user: str, password: str) -> str:
    doc = {"engine": "mariadb", "host": "127.0.0.1", "port": DB_PORT, "username": user, "password": password,
           "dbname": "basis"}
    return sm.put_secret_value(SecretId=secret, SecretString=json.dumps(doc, ensure_ascii=False),
                               VersionStages=["AWSPENDING"])["VersionId"]


def _pw(config: str, action: str, env: dict):
    result = dumpjob("password", "rot", action, "--config", config, "--json", env=env)
    for value in (OLD, NEW, json.dumps(NEW)[1:-1]):
        assert value not in result.stdout and value not in result.stderr
    return result


def test_set_test_revert(sandbox, sm, env, rotating):
    user, secret, config = rotating
    before = _pw(config, "status", env)
    assert before.code == 0 and before.json["accepts"] == ["AWSCURRENT"] and before.json["pending_version"] is None

    nothing = _pw(config, "set", env)
    assert nothing.code == 4 and "no AWSPENDING version" in nothing.errors[-1]["msg"]

    pending = _pending(sm, secret, user, NEW)
    assert _pw(config, "status", env).json["accepts"] == ["AWSCURRENT"]
    changed = _pw(config, "set", env)
    assert changed.code == 0 and changed.json["changed"] is True, changed.stderr
    assert changed.json["pending_version"] == pending
    status = _pw(config, "status", env).json
    assert status["accepts"] == ["AWSPENDING"]
    again = _pw(config, "set", env)
    assert again.code == 0 and again.json["changed"] is False

    tested = _pw(config, "test", env)
    assert tested.code == 0 and "privileges sufficient" in tested.json["msg"], tested.stderr

    # a dump started now logs in through the AWSPENDING retry
    run = dumpjob("run", "rot", "--config", config, env=env)
    assert run.code == 0 and run.event("database")[0]["stage"] == "AWSPENDING", run.stderr
    assert OLD not in run.stderr and NEW not in run.stderr

    back = _pw(config, "revert", env)
    assert back.code == 0 and back.json["changed"] is True, back.stderr
    assert _pw(config, "status", env).json["accepts"] == ["AWSCURRENT"]
    assert _pw(config, "revert", env).json["changed"] is False
    refused = _pw(config, "test", env)
    assert refused.code == 5 and "run the set step first" in refused.errors[-1]["msg"]


def test_refused_by_both(sandbox, sm, env, rotating):
    user, secret, config = rotating
    _pending(sm, secret, user, NEW)
    sandbox.sql(f"ALTER USER '{user}'@'%' IDENTIFIED BY 'a third one'")
    result = _pw(config, "set", env)
    assert result.code == 5 and "refuses both" in result.errors[-1]["msg"]
    assert len(result.errors) == 1
