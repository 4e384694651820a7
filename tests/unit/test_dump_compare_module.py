"""dump_compare's main(), driven as Ansible drives it, with the ledger under a temporary directory.

The dumpjob program is replaced by a script printing answers in the documented `--json` shapes and
exit codes (docs/dumpjob.md); the real program against S3 runs in the molecule scenario
`cutover` (tests/molecule/test_scenarios.py). Shown here: a verdict is recorded once (check mode
predicts and writes nothing, a second run changes nothing), a superseding verdict is recorded, a
missing object is an `incomplete` day, other program failures record nothing, production runs are
recorded from `verify`, and bad input is refused before the program runs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.modules import dump_compare
from sandboxtest import run_module

COMPARE = {"job": "contract_status", "date": "2026-11-24", "verdict": "identical", "ignore_auto_increment": False,
           "legacy": {"url": "s3://b/dumps/c_20261124.csv.gz", "compressed_bytes": 10, "sha256": "aa", "raw_bytes": 20},
           "new": {"url": "s3://b/dumps-test/c_20261124.csv.gz", "compressed_bytes": 11, "sha256": "bb",
                   "raw_bytes": 20},
           "tables": [{"name": "(query)", "kind": "query", "verdict": "identical", "reasons": [],
                       "legacy": {"rows": 3}, "new": {"rows": 3}}]}
CONFIG = {"ok": True, "config": "/etc/dumpjob/jobs.yml",
          "jobs": {"contract_status": {"kind": "query", "bucket": "b", "key": "dumps/c_{date:%Y%m%d}.csv.gz",
                                       "parallel_key": "dumps-test/c_{date:%Y%m%d}.csv.gz",
                                       "legacy_key": "dumps/c_{date:%Y%m%d}.csv.gz", "schedule": "0 6 * * *",
                                       "timezone": "Asia/Tokyo", "compression": "gzip"}}}
VERIFY = {"ok": True, "url": "s3://b/dumps/c_20261127.csv.gz", "manifest": "s3://b/dumps/c_20261127.csv.gz.manifest.json",
          "job": "contract_status", "sha256": "cc", "compressed_bytes": 12, "raw_bytes": 21,
          "checks": [{"name": "size", "ok": True, "reason": "12 bytes"}]}


class Host:
    def __init__(self, root: Path):
        self.root = root
        self.ledger = root / "lib" / "cutover.json"
        self.ledger.parent.mkdir()
        self.program = root / "dumpjob"
        self.calls = root / "calls"
        self.answer({"compare": (0, COMPARE)})

    def answer(self, answers: dict) -> None:
        """The stand-in prints the answer for its first argument and exits with its code."""
        lines = ["#!/bin/sh", f'echo "$*" >> {self.calls}', 'case "$1" in']
        for command, (code, doc) in answers.items():
            text = json.dumps(doc).replace("'", "'\\''")
            lines.append(f"  {command}) echo '{{\"level\": \"info\"}}' >&2; printf '%s\\n' '{text}'; exit {code};;")
        lines += ["esac", "echo unknown command >&2", "exit 2", ""]
        self.program.write_text("\n".join(lines))
        self.program.chmod(0o755)

    def args(self, **extra) -> dict:
        return {"job": "contract_status", "date": "2026-11-24", "run_as": "", "dumpjob_bin": str(self.program),
                "ledger_path": str(self.ledger), **extra}

    def ledger_bytes(self):
        return self.ledger.read_bytes() if self.ledger.exists() else None


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def run(args: dict, check: bool = False, diff: bool = True) -> dict:
    return run_module(dump_compare.main, args, check=check, diff=diff)


def test_a_verdict_is_recorded_once_and_check_mode_predicts_it(host):
    predicted = run(host.args(), check=True)
    assert predicted["changed"] is True and predicted["verdict"] == "identical"
    assert predicted["diff"]["after"] and host.ledger_bytes() is None, "check mode wrote the ledger"
    applied = run(host.args())
    assert applied["changed"] is True and applied["validated_days"] == ["2026-11-24"]
    assert applied["tables"][0]["name"] == "(query)" and applied["legacy"]["sha256"] == "aa"
    assert host.ledger.stat().st_mode & 0o777 == 0o600
    entry = lg.load(str(host.ledger))["jobs"]["contract_status"]["verdicts"]
    assert [(e["date"], e["verdict"]) for e in entry] == [("2026-11-24", "identical")]
    assert entry[0]["details"]["tables"] == {"(query)": {"verdict": "identical", "reasons": []}}
    assert {k: v for k, v in applied["entry"].items() if k != "recorded_at"} == \
        {k: v for k, v in predicted["entry"].items() if k != "recorded_at"}
    recorded = host.ledger_bytes()
    again = run(host.args(), check=True)
    final = run(host.args())
    assert again["changed"] is False and final["changed"] is False and "diff" not in final
    assert final["entry"] is None and host.ledger_bytes() == recorded


def test_a_different_verdict_supersedes_and_unvalidates_the_day(host):
    run(host.args())
    table = {**COMPARE["tables"][0], "verdict": "different", "reasons": ["row count 3 (legacy) vs 2 (new)"]}
    different = {**COMPARE, "verdict": "different", "tables": [table]}
    host.answer({"compare": (11, different)})
    result = run(host.args())
    assert result["changed"] is True and result["verdict"] == "different" and result["validated_days"] == []
    assert lg.latest_verdict(lg.load(str(host.ledger)), "contract_status")["verdict"] == "different"


@pytest.mark.parametrize("code, error", [
    (7, "no object at s3://b/dumps-test/c_20261124.csv.gz"),
    (10, "s3://b/dumps/c_20261124.csv.gz ends in the middle of its compressed stream (truncated)"),
])
def test_a_missing_or_truncated_object_is_an_incomplete_day(host, code, error):
    host.answer({"compare": (code, {"ok": False, "error": error, "kind": "storage", "exit_code": code})})
    result = run(host.args())
    assert result["changed"] is True and result["verdict"] == "incomplete" and result["reason"] == error
    assert result["validated_days"] == []


@pytest.mark.parametrize("code, kind, error", [
    (7, "storage", "S3 is unreachable at http://127.0.0.1:1: connection refused"),
    (3, "config", "config /etc/dumpjob/jobs.yml: no job 'contract_status'"),
])
def test_other_program_failures_fail_and_record_nothing(host, code, kind, error):
    host.answer({"compare": (code, {"ok": False, "error": error, "kind": kind, "exit_code": code})})
    result = run(host.args())
    assert result["failed"] is True and error in result["msg"] and "nothing was recorded" in result["msg"]
    assert host.ledger_bytes() is None


def test_a_production_run_is_recorded_from_verify_of_the_days_production_key(host):
    host.answer({"check-config": (0, CONFIG), "verify": (0, VERIFY)})
    args = host.args(date="2026-11-27", record_run=True)
    predicted = run(args, check=True)
    assert predicted["changed"] is True and predicted["status"] == "ok" and host.ledger_bytes() is None
    applied = run(args)
    assert applied["changed"] is True and applied["production_run_days"] == ["2026-11-27"]
    assert "verify s3://b/dumps/c_20261127.csv.gz --json" in host.calls.read_text()
    assert run(args)["changed"] is False
    failed = {"ok": False, "error": "s3://b/dumps/c_20261128.csv.gz has no manifest", "kind": "verify",
              "exit_code": 10}
    host.answer({"check-config": (0, CONFIG), "verify": (10, failed)})
    result = run(host.args(date="2026-11-28", record_run=True))
    assert result["changed"] is True and result["status"] == "failed" and "no manifest" in result["reason"]
    assert lg.latest_production_run(lg.load(str(host.ledger)), "contract_status")["status"] == "failed"


@pytest.mark.parametrize("extra, needle", [
    ({"date": "2026-02-30"}, "date '2026-02-30' is not a YYYY-MM-DD calendar date"),
    ({"date": "20261124"}, "date '20261124'"),
    ({"job": "../etc"}, "job name '../etc' is not usable"),
    ({"record_run": True, "new_url": "s3://b/x"}, "legacy_url and new_url are for compares"),
    ({"dumpjob_bin": "/nonexistent/dumpjob"}, "(dumpjob_bin) is not an executable"),
])
def test_bad_input_is_refused_before_the_program_runs(host, extra, needle):
    result = run(host.args(**extra))
    assert result["failed"] is True and needle in result["msg"], result["msg"]
    assert not host.calls.exists() and host.ledger_bytes() is None


def test_a_day_compared_again_after_a_rollback_is_recorded_and_only_fresh_days_are_returned(host):
    t0 = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    ledger = lg.empty()
    lg.record_transition(ledger, "contract_status", "legacy", "parallel", t0, "alice")
    lg.record_verdict(ledger, "contract_status", "2026-11-23", "identical", when=t0 + dt.timedelta(days=1))
    lg.record_transition(ledger, "contract_status", "parallel", "legacy", t0 + dt.timedelta(days=2), "alice")
    lg.record_transition(ledger, "contract_status", "legacy", "parallel", t0 + dt.timedelta(days=3), "alice")
    lg.write(str(host.ledger), ledger)
    first = run(host.args())
    assert first["changed"] is True and first["validated_days"] == ["2026-11-24"]  # 11-23 was before the rollback
    assert run(host.args())["changed"] is False
