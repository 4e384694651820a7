"""dumpjob catch-up and status: the time arithmetic as pure functions (the scheduled minute passed
while the host was down, the deadline passed, windows over midnight, daylight saving time, days
the schedule does not fire, the next run), and the manifests read from S3 (moto in process): a
day already published is not run again, a run in progress makes the catch-up stand aside,
catch-ups one after the other make the day once, S3 not answering yet at boot is read again
within the deadline, and status reports each day's outcome."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import boto3
import pytest

from dumpjob import catchup, cli, config, run, status
from dumpjob.lock import JobLock
from dumpjob.log import Logger

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
BUCKET = "jram-gghouse"
JOB = {"kind": "mysqldump", "secret_id": "s", "bucket": BUCKET, "databases": ["basis"], "region": "ap-northeast-1",
       "key": "dumps/basis_{date:%Y%m%d}.sql.gz", "schedule": "30 5 * * *", "deadline": "06:40",
       "timezone": "Asia/Tokyo"}


def tokyo(hour: int, minute: int, day: int = 15, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TOKYO)


def _job(tmp_path=None, **keys) -> config.Job:
    body = {**JOB, **keys}
    if tmp_path is not None:
        body["lock_dir"] = str(tmp_path / "lock")
    return config.parse({"jobs": {"basis": {k: v for k, v in body.items() if v is not None}}}, "jobs.yml").jobs["basis"]


# --- the window: pure ---------------------------------------------------------------------

@pytest.mark.parametrize(("now", "due", "words"), [
    (tokyo(5, 45), True, "the run scheduled at 2026-01-15 05:30 Asia/Tokyo was missed and its deadline 06:40"),
    (tokyo(6, 39), True, "was missed"),
    (tokyo(6, 40), False, "the deadline 06:40 Asia/Tokyo of the run scheduled at 2026-01-15 05:30 has passed"),
    (tokyo(14, 0), False, "has passed"),
    (tokyo(5, 29), False, "today's run at 05:30 Asia/Tokyo is still ahead: cron makes it"),
    (datetime(2026, 1, 14, 20, 45, tzinfo=timezone.utc), True, "2026-01-15 05:30"),  # the clock in UTC
])
def test_a_missed_run_is_due_until_its_deadline(now, due, words):
    found = catchup.window("30 5 * * *", "06:40", "Asia/Tokyo", now)
    assert found.due is due and words in found.reason, found
    if due:
        assert found.day == date(2026, 1, 15) and found.deadline == tokyo(6, 40)


def test_a_job_without_a_deadline_is_not_caught_up_and_says_how_to():
    found = catchup.window("30 5 * * *", None, "Asia/Tokyo", tokyo(5, 45))
    assert not found.due and "no deadline" in found.reason and "set 'deadline'" in found.reason


def test_a_window_over_midnight_catches_up_the_day_it_opened():
    found = catchup.window("50 23 * * *", "00:30", "Asia/Tokyo", tokyo(0, 10, day=16))
    assert found.due and found.day == date(2026, 1, 15) and found.deadline == tokyo(0, 30, day=16)
    assert not catchup.window("50 23 * * *", "00:30", "Asia/Tokyo", tokyo(0, 31, day=16)).due


def test_a_weekly_job_is_not_caught_up_on_a_day_it_does_not_run():
    # 2026-01-18 is a Sunday
    assert catchup.window("0 4 * * 0", "06:00", "Asia/Tokyo", tokyo(4, 30, day=18)).due
    found = catchup.window("0 4 * * 0", "06:00", "Asia/Tokyo", tokyo(4, 30, day=15))
    assert not found.due and "does not fire on 2026-01-15 (Thu)" in found.reason


def test_the_window_is_wall_clock_in_the_jobs_zone_across_daylight_saving_time():
    # 2026-03-08: 02:00 EST -> 03:00 EDT in New York. A 01:30 run with a 03:30 deadline.
    assert catchup.window("30 1 * * *", "03:30", "America/New_York",
                          datetime(2026, 3, 8, 3, 20, tzinfo=NEW_YORK)).due
    assert not catchup.window("30 1 * * *", "03:30", "America/New_York",
                              datetime(2026, 3, 8, 3, 31, tzinfo=NEW_YORK)).due
    # 2026-11-01: 02:00 EDT -> 01:00 EST; 01:45 EST (the second 01:45) is still before the 03:30 deadline
    second = datetime(2026, 11, 1, 6, 45, tzinfo=timezone.utc)
    assert second.astimezone(NEW_YORK).strftime("%H:%M %Z") == "01:45 EST"
    assert catchup.window("30 1 * * *", "03:30", "America/New_York", second).due


@pytest.mark.parametrize(("schedule", "now", "expected"), [
    ("30 5 * * *", tokyo(5, 29), tokyo(5, 30)),
    ("30 5 * * *", tokyo(5, 30), tokyo(5, 30, day=16)),
    ("0 4 * * 0", tokyo(12, 0), tokyo(4, 0, day=18)),             # the next Sunday
    ("0 4 * * sun", tokyo(12, 0), tokyo(4, 0, day=18)),
    ("*/15 9-17 * * 1-5", tokyo(17, 50), tokyo(9, 0, day=16)),
    ("0 0 1 * *", tokyo(12, 0), tokyo(0, 0, day=1, month=2)),
    ("0 3 13 * 5", tokyo(12, 0), tokyo(3, 0, day=16)),             # day of month OR day of week (a Friday)
    ("@daily", tokyo(12, 0), tokyo(0, 0, day=16)),
    ("@hourly", tokyo(12, 7), tokyo(13, 0)),
    ("@reboot", tokyo(12, 0), None),
    (None, tokyo(12, 0), None),
])
def test_the_next_run_in_the_jobs_zone(schedule, now, expected):
    assert catchup.next_run(schedule, TOKYO, now) == expected


def test_the_next_run_across_a_daylight_saving_change_is_the_wall_clock_time():
    at = catchup.next_run("30 5 * * *", NEW_YORK, datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK))
    assert at == datetime(2026, 3, 8, 5, 30, tzinfo=NEW_YORK) and at.tzname() == "EDT"


# --- the manifests: moto in process ---------------------------------------------------------

@pytest.fixture
def s3(aws_in_process):
    client = boto3.client("s3", region_name="ap-northeast-1")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"})
    return client


def publish(s3, key: str, run_id: str, day: str, anomaly: dict | None = None, with_object: bool = True, **fields):
    if with_object:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"dump", Metadata={"dumpjob-run": run_id})
    doc = {"format": 2, "run_id": run_id, "job": "basis", "bucket": BUCKET, "key": key,
           "url": f"s3://{BUCKET}/{key}", "date": day, "raw_bytes": 1500 * 2**20, "compressed_bytes": 150 * 2**20,
           "seconds": 42.5, "attempt": 1, "started_at": f"{day}T20:30:00+00:00",
           "finished_at": f"{day}T20:30:42+00:00", "anomaly": anomaly, **fields}
    s3.put_object(Bucket=BUCKET, Key=key + ".manifest.json", Body=json.dumps(doc).encode())


class Runs:
    """run_job as a catch-up calls it: publishes the day in moto as a real run would, and counts."""

    def __init__(self, s3):
        self.s3, self.calls = s3, []

    def __call__(self, job, when, parallel, log):
        key = job.object_key(when, parallel)
        self.calls.append(key)
        publish(self.s3, key, f"run-{len(self.calls)}", when.date().isoformat())
        return {"url": f"s3://{BUCKET}/{key}", "raw_bytes": 10, "compressed_bytes": 5, "seconds": 1.0,
                "anomaly": {"anomalous": False}}


@pytest.fixture
def runs(s3, monkeypatch):
    fake = Runs(s3)
    monkeypatch.setattr(run, "run_job", fake)
    return fake


def test_a_missed_day_is_run_once_and_a_second_catch_up_finds_it_published(tmp_path, s3, runs):
    job = _job(tmp_path)
    first = catchup.catch_up([job], False, Logger(), now=tokyo(5, 50))
    assert [o.action for o in first] == ["ran"] and runs.calls == ["dumps/basis_20260115.sql.gz"]
    second = catchup.catch_up([job], False, Logger(), now=tokyo(5, 55))
    assert [o.action for o in second] == ["skipped"] and len(runs.calls) == 1
    assert "s3://jram-gghouse/dumps/basis_20260115.sql.gz is published already (run run-1" in second[0].reason
    assert catchup.exit_code(first + second) == 0


def test_the_parallel_key_is_the_one_caught_up_with_parallel(tmp_path, s3, runs):
    job = _job(tmp_path, parallel_key="dumps-test/basis_{date:%Y%m%d}.sql.gz")
    catchup.catch_up([job], True, Logger(), now=tokyo(6, 0))
    assert runs.calls == ["dumps-test/basis_20260115.sql.gz"]


def test_a_run_in_progress_makes_the_catch_up_stand_aside(tmp_path, s3, runs):
    job = _job(tmp_path)
    with JobLock(job.lock_dir, job.name):
        (outcome,) = catchup.catch_up([job], False, Logger(), now=tokyo(5, 50))
    assert outcome.action == "skipped" and "a run of the job is in progress" in outcome.reason
    assert runs.calls == []


def test_another_catch_up_of_the_job_in_progress_makes_this_one_stand_aside(tmp_path, s3, runs):
    job = _job(tmp_path)
    with JobLock(job.lock_dir, f"{job.name}.catch-up"):
        (outcome,) = catchup.catch_up([job], False, Logger(), now=tokyo(5, 50))
    assert outcome.action == "skipped" and "another catch-up of the job is running" in outcome.reason
    assert runs.calls == []


def test_a_manifest_of_a_run_that_never_published_does_not_count(tmp_path, s3, runs):
    publish(s3, "dumps/basis_20260115.sql.gz", "dead-run", "2026-01-15", with_object=False)
    (outcome,) = catchup.catch_up([_job(tmp_path)], False, Logger(), now=tokyo(5, 50))
    assert outcome.action == "ran" and len(runs.calls) == 1


def test_after_the_deadline_or_without_one_nothing_runs_and_the_log_says_why(tmp_path, s3, runs, capsys):
    late = catchup.catch_up([_job(tmp_path)], False, Logger(), now=tokyo(6, 41))
    plain = catchup.catch_up([_job(tmp_path, deadline=None)], False, Logger(), now=tokyo(5, 50))
    assert [o.action for o in late + plain] == ["skipped", "skipped"] and runs.calls == []
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["event"], line["action"]) for line in lines] == [("catch-up", "skipped")] * 2
    assert "the deadline 06:40 Asia/Tokyo of the run scheduled at 2026-01-15 05:30 has passed" in lines[0]["msg"]
    assert "the job has no deadline" in lines[1]["msg"]


def test_s3_failing_is_a_failed_catch_up_with_the_storage_code_and_nothing_runs(tmp_path, s3, runs):
    (outcome,) = catchup.catch_up([_job(tmp_path, bucket="no-such-bucket")], False, Logger(), now=tokyo(5, 50))
    assert (outcome.action, outcome.exit_code) == ("failed", 7) and runs.calls == []
    assert "no-such-bucket" in outcome.reason and "\n" not in outcome.reason


def test_status_reports_each_day_and_the_next_run(tmp_path, s3):
    job = _job(tmp_path, schedule="30 5 * * 1-5")  # weekdays; 2026-01-15 is a Thursday
    publish(s3, "dumps/basis_20260115.sql.gz", "r15", "2026-01-15", attempt=3)
    publish(s3, "dumps/basis_20260113.sql.gz", "r13", "2026-01-13", anomaly={
        "anomalous": True, "findings": [{"what": "reservations", "before": 100, "after": 40, "drop_percent": 60.0,
                                         "limit_percent": 50}]})
    publish(s3, "dumps/basis_20260112.sql.gz", "r12", "2026-01-12", with_object=False)
    report = status.job_status(job, 5, now=tokyo(12, 0), s3=s3)
    assert report["next_run"] == "2026-01-16T05:30:00+09:00"
    outcomes = [(r["day"], r["outcome"], r.get("attempts")) for r in report["runs"]]
    assert outcomes == [("2026-01-15", "published", 3), ("2026-01-14", "missing", None),
                        ("2026-01-13", "published with anomaly", 1), ("2026-01-12", "missing", None),
                        ("2026-01-11", "not scheduled", None)]
    first = report["runs"][0]
    assert (first["raw_bytes"], first["compressed_bytes"], first["seconds"]) == (1500 * 2**20, 150 * 2**20, 42.5)
    assert report["runs"][2]["anomaly"] == ["reservations -60.0 %"]
    early = status.job_status(job, 1, now=tokyo(5, 0), s3=s3)
    assert early["runs"][0]["outcome"] == "published"  # published already: the manifest wins
    assert status.job_status(job, 1, now=tokyo(5, 0, day=16), s3=s3)["runs"][0]["outcome"] == "not yet due"

    # a past last day (--date): its days back from there, none "not yet due"; the next run stays from now
    past = status.job_status(job, 3, now=tokyo(5, 0, day=16), s3=s3, last_day=date(2026, 1, 15))
    assert [(r["day"], r["outcome"]) for r in past["runs"]] == [
        ("2026-01-15", "published"), ("2026-01-14", "missing"), ("2026-01-13", "published with anomaly")]
    assert past["next_run"] == "2026-01-16T05:30:00+09:00"

    table = status.text([report]).splitlines()
    assert table[0] == ("job basis (Asia/Tokyo, schedule '30 5 * * 1-5', deadline 06:40): next run "
                        "2026-01-16 05:30 JST")
    assert table[2].split() == ["2026-01-15", "published", "3", "1.5", "GiB", "150.0", "MiB", "42.5", "s", "-"]
    assert table[4].endswith("reservations -60.0 %")


def _cli(tmp_path, *argv):
    path = tmp_path / "jobs.yml"
    path.write_text(json.dumps({"jobs": {"basis": {**JOB, "lock_dir": str(tmp_path / "lock")}}}))
    return cli.main([*argv, "--config", str(path)])


def test_status_on_the_command_line_json_and_one_line_errors(tmp_path, s3, capsys, monkeypatch):
    monkeypatch.setenv("DUMPJOB_NO_SYSLOG", "1")
    assert _cli(tmp_path, "status", "--days", "2", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and [r["outcome"] for r in report["jobs"][0]["runs"]][:1] in (["missing"], ["not yet due"])
    s3.delete_bucket(Bucket=BUCKET)
    assert _cli(tmp_path, "status", "basis") == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "jram-gghouse" in json.loads(err[0])["msg"]
    assert _cli(tmp_path, "status", "nosuch") == 3
    assert "no job named 'nosuch'" in capsys.readouterr().err


def test_at_boot_an_unreachable_s3_is_read_again_before_the_catch_up_decides(tmp_path, s3, runs, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: the network is not up yet
    waits = []

    def network_comes_up(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            monkeypatch.delenv("AWS_ENDPOINT_URL")

    (outcome,) = catchup.catch_up([_job(tmp_path)], False, Logger(), now=tokyo(5, 50), sleep=network_comes_up)
    assert waits == [5, 10] and outcome.action == "ran" and len(runs.calls) == 1


@pytest.mark.parametrize(("now", "expected"), [
    (tokyo(5, 50), list(catchup.BOOT_WAITS)),
    (tokyo(6, 39), [5, 10, 20]),  # a minute before the deadline: no wait that would end after it
])
def test_s3_unreachable_for_good_fails_the_catch_up_after_the_boot_waits(tmp_path, s3, runs, monkeypatch, now,
                                                                         expected):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    waits = []
    (outcome,) = catchup.catch_up([_job(tmp_path)], False, Logger(), now=now, sleep=waits.append)
    assert waits == expected and (outcome.action, outcome.exit_code) == ("failed", 7)
    assert "S3 endpoint unreachable" in outcome.reason and runs.calls == []
