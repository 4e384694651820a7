"""The job file: what check-config accepts, and the one-line errors naming job and key."""

from __future__ import annotations

import pytest
import yaml
from dumpjob_testbed import assert_failed, dumpjob

GOOD = {
    "defaults": {"bucket": "jram-gghouse", "timezone": "Asia/Tokyo"},
    "jobs": {
        "basis": {"kind": "mysqldump", "secret_id": "rds/basis", "databases": ["basis"],
                  "key": "dumps/basis_{date:%Y%m%d}.sql.gz", "schedule": "30 5 * * *",
                  "compression": {"type": "gzip", "level": 6}},
        "contract_status": {"kind": "query", "secret_id": "rds/basis", "database": "basis",
                            "query": "SELECT id, status FROM contracts",
                            "key": "dumps/contract_status_{date:%Y%m%d}.csv.gz",
                            "legacy_key": "dumps/contract_status_{date:%Y%m%d}.csv.gz", "schedule": "0 6 * * *"},
    },
}


def _check(tmp_path, doc, env) -> tuple:
    path = tmp_path / "jobs.yml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return dumpjob("check-config", "--config", str(path), "--json", env=env)


def test_a_valid_file_passes_with_defaults_applied(tmp_path, env):
    result = _check(tmp_path, GOOD, env)
    assert result.code == 0, result.stderr
    jobs = result.json["jobs"]
    assert set(jobs) == {"basis", "contract_status"}
    assert jobs["basis"]["parallel_key"] == "dumps-test/basis_{date:%Y%m%d}.sql.gz"
    assert jobs["basis"]["legacy_key"] == "dumps/basis_{date:%Y%m%d}.sql.gz"
    assert jobs["basis"]["timezone"] == "Asia/Tokyo"
    assert jobs["contract_status"]["compression"] == "gzip"


def _with(job: str, **changes) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    for key, value in changes.items():
        if value is None:
            doc["jobs"][job].pop(key)
        else:
            doc["jobs"][job][key] = value
    return doc


@pytest.mark.parametrize("schedule", ["30 5 * * *", "0 4 * * sun", "0 4 * * 0,7", "*/15 1-5 * * mon-fri",
                                      "0 0 1 jan-mar,dec *", "59 23 31 12 6", "@daily", "@weekly"])
def test_cron_schedules_in_range_pass(tmp_path, env, schedule):
    result = _check(tmp_path, _with("basis", schedule=schedule), env)
    assert result.code == 0, result.stderr
    assert result.json["jobs"]["basis"]["schedule"] == schedule


@pytest.mark.parametrize(("doc", "words"), [
    (_with("basis", bukcet="x"), ["job 'basis'", "unknown key 'bukcet'"]),
    (_with("basis", secret_id=None), ["job 'basis'", "missing key 'secret_id'"]),
    (_with("basis", databases=None), ["job 'basis'", "missing key 'databases'"]),
    (_with("contract_status", query=None), ["job 'contract_status'", "missing key 'query'"]),
    (_with("contract_status", databases=["basis"]), ["job 'contract_status'", "'databases'", "not valid for kind"]),
    (_with("basis", kind="pgdump"), ["job 'basis'", "'kind'"]),
    (_with("basis", key="dumps/{day}.gz"), ["job 'basis'", "'key'", "unknown field '{day}'"]),
    (_with("basis", timezone="Mars/Olympus"), ["job 'basis'", "'timezone'"]),
    (_with("basis", schedule="every day"), ["job 'basis'", "'schedule'"]),
    (_with("basis", schedule="30 29 * * *"), ["job 'basis'", "'schedule'", "hour '29' is outside 0-23"]),
    (_with("basis", schedule="0 4 * * sat-sun"), ["job 'basis'", "'schedule'", "runs backwards"]),
    (_with("basis", schedule="*/0 * * * *"), ["job 'basis'", "'schedule'", "step '0'"]),
    (_with("basis", schedule="0 4 * foo *"), ["job 'basis'", "'schedule'", "month 'foo'"]),
    (_with("basis", bucket="JRAM-GGHouse"), ["job 'basis'", "'bucket'", "not a valid S3 bucket name"]),
    (_with("basis", bucket="jram..gghouse"), ["job 'basis'", "'bucket'", "not a valid S3 bucket name"]),
    (_with("basis", bucket="10.0.0.1"), ["job 'basis'", "'bucket'", "not a valid S3 bucket name"]),
    (_with("basis", key="dumps/basis_latest.sql.gz"), ["job 'basis'", "'key'", "no {date:...} field"]),
    (_with("contract_status", legacy_key="dumps/cs.csv.gz"), ["job 'contract_status'", "'legacy_key'", "no {date"]),
    (_with("basis", compression={"type": "gzip", "level": 11}), ["job 'basis'", "'compression.level'"]),
    (_with("basis", compression={"type": "gzip", "lvl": 1}), ["job 'basis'", "'compression.lvl'"]),
    (_with("basis", parallel_key="dumps/basis_{date:%Y%m%d}.sql.gz"), ["job 'basis'", "'parallel_key'"]),
    (_with("basis", tables=["a"], databases=["x", "y"]), ["job 'basis'", "'tables'"]),
    ({"jobs": {}}, ["missing key 'jobs'"]),
    ({"jobs": GOOD["jobs"], "extra": 1}, ["unknown top-level key 'extra'"]),
    ("jobs: [unclosed", ["not valid YAML"]),
])
def test_bad_files_fail_with_one_line_naming_job_and_key(tmp_path, env, doc, words):
    result = _check(tmp_path, doc, env)
    error = assert_failed(result, 3, *words)
    assert result.json["exit_code"] == 3 and result.json["error"] == error["msg"]


def test_missing_file_and_unknown_job(tmp_path, env):
    assert_failed(dumpjob("check-config", "--config", str(tmp_path / "none.yml"), env=env), 3, "does not exist")
    path = tmp_path / "jobs.yml"
    path.write_text(yaml.safe_dump(GOOD))
    assert_failed(dumpjob("run", "nosuchjob", "--config", str(path), env=env), 3, "no job named 'nosuchjob'")


def test_help_documents_every_exit_code(env):
    result = dumpjob("--help", env=env)
    assert result.code == 0
    for code, word in [(3, "config"), (4, "secret"), (5, "database"), (6, "dump incomplete"), (7, "storage"),
                       (8, "lock held"), (9, "interrupted")]:
        assert f" {code}  {word}" in result.stdout
    run_help = dumpjob("run", "--help", env=env)
    assert "--date" in run_help.stdout and "--parallel" in run_help.stdout and "lock held" in run_help.stdout
