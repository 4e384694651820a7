"""The DMS validation modules' main(), driven as Ansible drives them: the ledger module records a
day once (check mode writes nothing, the file is 0600), the info module reads the gate, and
dms_validate refuses bad input in one line before any connection (moto in-process for Secrets
Manager). ansible-doc renders every one of them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.modules import (
    dms_validate,
    dms_validation_ledger,
    dms_validation_ledger_info,
)
from sandboxtest import collections_root, run_module

REGION = "ap-northeast-1"
DETAILS = {"tables": {"basis.a": {"verdict": "identical"}}}


def record(path, check=False, **args):
    return run_module(dms_validation_ledger.main, {"ledger_path": str(path), "verdict": "identical",
                                                   "details": DETAILS, "date": "2026-11-30", **args}, check=check)


def test_ledger_records_the_day_once(tmp_path):
    path = tmp_path / "lib" / "dms_validation.json"
    predicted = record(path, check=True)
    assert predicted["changed"] is True and not path.exists()
    assert json.loads(predicted["diff"]["after"])["verdict"] == "identical"
    first = record(path, required_days=1)
    assert first["changed"] is True and first["entry"]["date"] == "2026-11-30"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert first["gate"]["consecutive_identical_days"] == ["2026-11-30"]
    again = record(path, required_days=1)
    assert again["changed"] is False and again["entry"] is None and "diff" not in again
    other = record(path, verdict="different", details={"tables": {"basis.a": {"verdict": "rows_differ"}}})
    assert other["changed"] is True and other["gate"]["open"] is False
    assert len(json.loads(path.read_text())["verdicts"]) == 2


def test_ledger_refusals_are_one_line(tmp_path):
    path = tmp_path / "dms_validation.json"
    for args, needle in (({"date": "30/11/2026"}, "is not a YYYY-MM-DD calendar date"),
                         ({"required_days": 0}, "required_days must be 1 or more"),
                         ({"timezone": "Mars/Olympus", "date": None}, "time zone 'Mars/Olympus' is unknown")):
        result = record(path, **args)
        assert result["failed"] is True and needle in result["msg"] and "\n" not in result["msg"]
    assert not path.exists()
    path.write_text("[]")
    result = record(path)
    assert result["failed"] is True and "is not a DMS validation ledger" in result["msg"]


def test_ledger_info_reads_the_gate(tmp_path):
    path = tmp_path / "dms_validation.json"
    empty = run_module(dms_validation_ledger_info.main, {"ledger_path": str(path)})
    assert empty["days"] == [] and empty["gate"]["open"] is False and empty["changed"] is False
    today = record(path, date=None, timezone="UTC")["date"]
    info = run_module(dms_validation_ledger_info.main, {"ledger_path": str(path), "required_days": 1,
                                                       "timezone": "UTC"}, check=True)
    assert [(d["date"], d["verdict"]) for d in info["days"]] == [(today, "identical")]
    assert info["gate"] == {"open": True, "problems": [], "consecutive_identical_days": [today],
                            "latest": {"date": today, "verdict": "identical"}}
    other = tmp_path / "other.json"
    record(other, date="2026-11-29")
    retire = run_module(dms_validation_ledger_info.main, {"ledger_path": str(other), "required_days": 1,
                                                         "month_end": True})
    assert "no month end among the consecutive identical days" in retire["gate"]["problems"]


@pytest.fixture
def sm(aws_in_process):
    return boto3.client("secretsmanager", region_name=REGION)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put_secret(sm, name, **values):
    sm.create_secret(Name=name, SecretString=json.dumps({"host": "127.0.0.1", "port": closed_port(), "username": "u",
                                                         "password": "pw-not-shown", "dbname": "basis", **values}))


def refused(args, *needles):
    result = run_module(dms_validate.main, {"region": REGION, "source_secret_id": "src", "target_secret_id": "tgt",
                                            **args}, diff=False)
    assert result["failed"] is True and "\n" not in result["msg"]
    for needle in needles:
        assert needle in result["msg"], result["msg"]
    assert "pw-not-shown" not in json.dumps(result)
    return result


def test_validate_refuses_bad_input_before_connecting(sm, tmp_path):
    refused({"chunk_rows": 0}, "chunk_rows must be 1 or more")
    refused({"settle_seconds": -1}, "settle_seconds must be 0 or more")
    refused({"append_only": {"access_logs": "logged_at"}}, "append_only takes database.table: column")
    refused({"ssl_ca": str(tmp_path / "none.pem")}, "ssl_ca", "is not a file")
    refused({}, "secret src does not exist")
    put_secret(sm, "src")
    sm.create_secret(Name="tgt", SecretString="just-a-password")
    refused({}, "secret tgt is not RDS secret JSON (missing host, port, username, password)")
    put_secret(sm, "tgt2")
    put_secret(sm, "src2", dbname="")
    refused({"source_secret_id": "src2", "target_secret_id": "tgt2"}, "no databases", "set databases")
    refused({"target_secret_id": "tgt2"}, "cannot connect to 127.0.0.1:", "(secret src)")


@pytest.mark.parametrize("module", [dms_validate, dms_validation_ledger, dms_validation_ledger_info],
                         ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_ansible_doc_renders_every_option(module):
    name = f"jram.dumphost.{module.__name__.rsplit('.', 1)[-1]}"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_root(), "ANSIBLE_NOCOLOR": "1"}
    doc = subprocess.run([Path(sys.executable).parent / "ansible-doc", "--json", name],
                         env=env, capture_output=True, text=True, check=True)
    rendered = json.loads(doc.stdout)[name]
    documented = rendered["doc"]["options"]
    source = Path(module.__file__).read_text()
    spec = source[source.index("argument_spec=dict("):source.index("supports_check_mode=True")]
    options = [line.split("=dict(")[0].strip() for line in spec.splitlines()[1:] if "=dict(" in line]
    assert options and all(o in documented for o in options), [o for o in options if o not in documented]
    assert rendered["return"] and rendered["examples"]
