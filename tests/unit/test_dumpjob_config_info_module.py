"""dumpjob_config_info runs dumpjob's own validator (the collection's src/dumpjob, as the
job_config role runs it on the controller) and returns the jobs as data: merged over the
defaults with the keys dumpjob derives, a rejected job file refused in one line naming the
inventory variable to fix, and its temporary job file gone either way."""

from __future__ import annotations

from ansible_collections.jram.dumphost.plugins.modules import dumpjob_config_info
from conftest import REPO
from sandboxtest import run_module

DEFAULTS = {"secret_id": "jram/dumphost/basis-reader", "bucket": "jram-gghouse", "timezone": "Asia/Tokyo",
            "compression": {"type": "gzip", "level": 6}}
JOBS = {"basis": {"kind": "mysqldump", "databases": ["basis"], "key": "dumps/basis_{date:%Y%m%d}.sql.gz",
                  "schedule": "30 5 * * *"}}


def run(tmp_path, jobs, defaults=DEFAULTS, check=False):
    result = run_module(dumpjob_config_info.main, {"jobs": jobs, "defaults": defaults, "src": str(REPO / "src"),
                                                   "_ansible_remote_tmp": str(tmp_path)}, check=check)
    assert list(tmp_path.rglob("dumpjob-jobs.*")) == []  # the temporary job file is removed
    return result


def test_the_jobs_come_back_merged_with_what_dumpjob_derives(tmp_path):
    for check in (False, True):
        result = run(tmp_path, JOBS, check=check)
        assert result["changed"] is False
        basis = result["jobs"]["basis"]
        assert basis["secret_id"] == "jram/dumphost/basis-reader" and basis["databases"] == ["basis"]
        assert basis["compression"] == {"type": "gzip", "level": 6}  # the inventory's, not dumpjob's answer
        assert basis["parallel_key"] == result["parsed"]["basis"]["parallel_key"]
        assert basis["parallel_key"] != basis["key"] and basis["timezone"] == "Asia/Tokyo"
        assert result["parsed"]["basis"]["compression"] == "gzip"


def test_a_job_dumpjob_rejects_is_refused_with_the_variable_to_fix(tmp_path):
    without_secret = {key: value for key, value in DEFAULTS.items() if key != "secret_id"}
    result = run(tmp_path, JOBS, defaults=without_secret)
    assert result["failed"] and "\n" not in result["msg"]
    assert result["msg"].startswith("dumpjob_jobs is invalid: job 'basis': missing key 'secret_id'"), result["msg"]
    assert result["msg"].endswith("(found by dumpjob check-config; fix dumpjob_jobs['basis'].secret_id "
                                  "(or dumpjob_defaults.secret_id) in the inventory)"), result["msg"]
    assert str(tmp_path) not in result["msg"]


def test_a_bad_schedule_names_the_job_and_key(tmp_path):
    result = run(tmp_path, {"basis": {**JOBS["basis"], "schedule": "30 29 * * *"}})
    assert result["failed"] and "job 'basis': key 'schedule' is '30 29 * * *'" in result["msg"]
    assert "fix dumpjob_jobs['basis'].schedule" in result["msg"]
