"""dumpjob's retries as pure functions: the deadline's window (over midnight, across daylight
saving time), the backoff, the estimate of an attempt from earlier runs, the decision to try
again; which failures are transient; the job file's retry, deadline and anomaly keys; and the
run metrics (Attempts, Anomaly) as CloudWatch stores them (moto in process)."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dumpjob import config, metrics, mysqldump, retry
from dumpjob.aws import transient_aws_error
from dumpjob.errors import ConfigError, DatabaseError, DumpJobError, StorageError
from dumpjob.upload import CompleteError, storage_error

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
POLICY = retry.RetryPolicy(max_attempts=6, backoff_seconds=30, max_backoff_seconds=300, attempt_seconds=1800)


def tokyo(hour: int, minute: int, second: int = 0, day: int = 15) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=TOKYO)


@pytest.mark.parametrize(("now", "expected"), [
    (tokyo(5, 30, 2), tokyo(6, 40)),          # the scheduled run
    (tokyo(6, 39, 59), tokyo(6, 40)),         # still inside the window
    (tokyo(6, 0), tokyo(6, 40)),              # a late start (a catch-up) inside the window
    (tokyo(6, 40), None),                     # the deadline itself: passed
    (tokyo(10, 0), None),                     # a manual run in the morning
    (tokyo(5, 29), None),                     # before the window opens
    (tokyo(5, 30, 0).astimezone(timezone.utc), tokyo(6, 40)),  # the clock in UTC, the window in the job's zone
])
def test_the_deadline_closes_the_window_opened_by_the_schedule(now, expected):
    assert retry.deadline_for(now, TOKYO, time(5, 30), time(6, 40)) == expected


def test_a_window_over_midnight_ends_the_next_day():
    start, deadline = time(23, 50), time(0, 30)
    assert retry.window_minutes(start, deadline) == 40
    assert retry.deadline_for(tokyo(23, 55), TOKYO, start, deadline) == tokyo(0, 30, day=16)
    assert retry.deadline_for(tokyo(0, 10, day=16), TOKYO, start, deadline) == tokyo(0, 30, day=16)
    assert retry.deadline_for(tokyo(23, 40), TOKYO, start, deadline) is None


def test_seconds_until_the_deadline_are_real_seconds_across_a_daylight_saving_change():
    # 2026-03-08 02:00 EST -> 03:00 EDT: from 01:30 wall clock to 03:30 is one real hour
    start = datetime(2026, 3, 8, 1, 30, tzinfo=NEW_YORK)
    deadline = retry.deadline_for(start, NEW_YORK, time(1, 30), time(3, 30))
    assert deadline == datetime(2026, 3, 8, 3, 30, tzinfo=NEW_YORK)
    assert retry.seconds_until(start, deadline) == 3600


@pytest.mark.parametrize(("schedule", "expected"), [
    ("30 5 * * *", time(5, 30)), ("0 4 * * 0", time(4, 0)), ("@daily", time(0, 0)), ("@weekly", time(0, 0)),
    ("*/15 5 * * *", None), ("30 5-6 * * *", None), ("@hourly", None), ("@reboot", None), (None, None),
])
def test_schedule_time_only_for_one_fixed_time_of_day(schedule, expected):
    assert retry.schedule_time(schedule) == expected


def test_backoff_doubles_up_to_its_maximum():
    assert [retry.backoff(POLICY, n) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


def test_the_estimate_is_the_longest_recent_run_with_a_margin_or_the_conservative_default():
    assert retry.estimate([100.0, 240.2, 180], POLICY) == 361
    assert retry.estimate([None, "x", 0], POLICY) == 1800
    assert retry.estimate([], POLICY) == 1800


def test_decide_retries_while_the_next_attempt_can_end_by_the_deadline():
    deadline = tokyo(6, 40)
    again = retry.decide(tokyo(5, 31), deadline, POLICY, 1, 600)
    assert again.retry and again.wait == 30
    # 06:28: 12 minutes left, 10 needed: the 4th backoff (240 s) is cut to the 120 s that still fit
    cut = retry.decide(tokyo(6, 28), deadline, POLICY, 4, 600)
    assert cut.retry and cut.wait == 120
    late = retry.decide(tokyo(6, 31), deadline, POLICY, 1, 600)
    assert not late.retry and "could not end by the deadline 06:40" in late.reason
    spent = retry.decide(tokyo(5, 40), deadline, POLICY, 6, 60)
    assert not spent.retry and "6 attempts" in spent.reason
    outside = retry.decide(tokyo(10, 0), None, POLICY, 1, 60)
    assert not outside.retry and "outside" in outside.reason


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(("exc", "transient"), [
    (_client_error("SlowDown", 503), True),
    (_client_error("InternalError", 500), True),
    (_client_error("RequestTimeout", 400), True),
    (_client_error("ThrottlingException", 400), True),
    (_client_error("InvalidArgument", 400), False),
    (_client_error("KMS.NotFoundException", 400), False),
])
def test_aws_answers_worth_another_attempt(exc, transient):
    assert transient_aws_error(exc) is transient


@pytest.mark.parametrize(("exc", "transient"), [
    (EndpointConnectionError(endpoint_url="http://s3"), True),
    (_client_error("SlowDown", 503), True),
    (_client_error("NoSuchBucket", 404), False),
    (_client_error("AccessDenied", 403), False),
])
def test_storage_errors_are_transient_unless_s3_refused(exc, transient):
    assert storage_error("uploading", "s3://b/k", exc).transient is transient


@pytest.mark.parametrize(("lines", "returncode", "kind", "transient"), [
    (["mysqldump: Error 2013: Lost connection to server during query when dumping table `t`"], 2, "database", True),
    (["mysqldump: Got error: 2002: \"Can't connect to server on '127.0.0.1' (115)\" when trying to connect"], 2,
     "database", True),
    (["mysqldump: Error 1317: Query execution was interrupted when dumping table `t` at row: 7"], 3, "database",
     True),
    (["mysqldump: Error 1927: Connection was killed when dumping table `t`"], 3, "database", True),
    (["mysqldump: Got error: 1045: \"Access denied for user 'u'@'h'\" when trying to connect"], 2, "database",
     False),
    (["mysqldump: Couldn't find table: \"nope\""], 2, "dump_incomplete", False),
])
def test_mysqldump_failures_caused_by_the_server_are_transient(lines, returncode, kind, transient):
    error = mysqldump.failure(returncode, lines, (), 100)
    assert (error.kind, error.transient) == (kind, transient)


def test_classes_default_to_permanent_and_extended_keeps_class_and_transience():
    assert not DumpJobError("x").transient and not ConfigError("x").transient and not DatabaseError("x").transient
    assert StorageError("x").transient
    lost = DatabaseError("lost", transient=True).extended("upload aborted")
    assert type(lost) is DatabaseError and lost.transient and str(lost) == "lost; upload aborted"
    complete = CompleteError("failed", code="InternalError").extended("upload aborted")
    assert type(complete) is CompleteError and complete.code == "InternalError" and complete.transient


JOB = {"kind": "mysqldump", "secret_id": "s", "bucket": "jram-gghouse", "databases": ["basis"],
       "key": "dumps/basis_{date:%Y%m%d}.sql.gz", "schedule": "30 5 * * *"}


def _job(**keys) -> config.Job:
    return config.parse({"jobs": {"basis": {**JOB, **keys}}}, "jobs.yml").jobs["basis"]


def test_the_job_file_carries_deadline_retry_and_anomaly():
    job = _job(deadline="06:40", retry={"max_attempts": 4, "backoff_seconds": 10, "max_backoff_seconds": 60,
                                        "attempt_seconds": 900},
               anomaly={"action": "refuse", "raw_bytes_drop_percent": 30, "table_rows_drop_percent": 40.5,
                        "table_gone": False})
    assert job.deadline == "06:40"
    assert job.retry == retry.RetryPolicy(4, 10.0, 60.0, 900.0)
    assert (job.anomaly.action, job.anomaly.raw_bytes_drop_percent, job.anomaly.table_rows_drop_percent,
            job.anomaly.table_gone) == ("refuse", 30.0, 40.5, False)
    plain = _job()
    assert plain.deadline is None and plain.retry == retry.RetryPolicy() and plain.anomaly.action == "publish"


@pytest.mark.parametrize(("keys", "words"), [
    ({"deadline": 400}, "key 'deadline' must be a quoted 'HH:MM' (YAML reads an unquoted 6:40 as the number 400)"),
    ({"deadline": "6:40"}, "key 'deadline' is '6:40', not a time of day 'HH:MM'"),
    ({"deadline": "24:00"}, "not a time of day"),
    ({"deadline": "06:40", "schedule": "*/15 * * * *"}, "key 'deadline' needs a 'schedule' that starts at one time"),
    ({"deadline": "06:40", "schedule": None}, "needs a 'schedule'"),
    ({"deadline": "05:30"}, "key 'deadline' is the schedule's own start 05:30"),
    ({"retry": {"max_attempts": 0}}, "key 'retry.max_attempts' must be an integer from 1 to 100"),
    ({"retry": {"backoff_seconds": "30"}}, "key 'retry.backoff_seconds' must be a number from 1 to 3600"),
    ({"retry": {"backoff_seconds": 60, "max_backoff_seconds": 30}}, "key 'retry.max_backoff_seconds' is 30, below"),
    ({"retry": {"attempts": 3}}, "key 'retry.attempts' is unknown (allowed: attempt_seconds, backoff_seconds,"),
    ({"anomaly": {"action": "warn"}}, "key 'anomaly.action' must be one of"),
    ({"anomaly": {"table_rows_drop_percent": 150}}, "key 'anomaly.table_rows_drop_percent' must be a number from 0"),
    ({"anomaly": {"table_gone": "yes"}}, "key 'anomaly.table_gone' must be true or false"),
])
def test_bad_retry_deadline_and_anomaly_keys_are_refused_in_one_line(keys, words):
    with pytest.raises(ConfigError) as caught:
        _job(**keys)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert "job 'basis'" in str(caught.value)


def test_metrics_carry_attempts_and_anomaly_with_the_job_dimension(aws_in_process):
    cloudwatch = boto3.client("cloudwatch")
    assert metrics.put_run(cloudwatch, "Test/DumpJob", "basis", True, 10, 1.5, 3, True) is None
    assert metrics.put_run(cloudwatch, "Test/DumpJob", "failing", False, 0, 2.0, 2, None) is None
    listed = cloudwatch.list_metrics(Namespace="Test/DumpJob")["Metrics"]
    names = {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed}
    assert {("Succeeded", "basis"), ("Attempts", "basis"), ("Anomaly", "basis")} <= names
    assert ("Anomaly", "failing") not in names and ("Attempts", "failing") in names
    assert all(m["Dimensions"] == [{"Name": "Job", "Value": m["Dimensions"][0]["Value"]}] for m in listed)
    stats = cloudwatch.get_metric_statistics(
        Namespace="Test/DumpJob", MetricName="Anomaly", Dimensions=[{"Name": "Job", "Value": "basis"}],
        StartTime=datetime(2000, 1, 1, tzinfo=timezone.utc), EndTime=datetime(2100, 1, 1, tzinfo=timezone.utc),
        Period=60, Statistics=["Maximum"])
    assert [p["Maximum"] for p in stats["Datapoints"]] == [1.0]
    assert stats["Datapoints"][0]["Unit"] == "Count"


def test_the_job_config_role_passes_the_new_keys_and_names_the_variable_to_fix(tmp_path):
    """jram.dumphost.job_config validates the jobs with dumpjob_config_info (dumpjob check-config)."""
    from ansible_collections.jram.dumphost.plugins.modules import dumpjob_config_info
    from conftest import REPO
    from sandboxtest import run_module

    def run(job: dict) -> dict:
        return run_module(dumpjob_config_info.main, {
            "jobs": {"basis": {**JOB, **job}}, "defaults": {}, "src": str(REPO / "src"),
            "_ansible_remote_tmp": str(tmp_path)})

    good = run({"deadline": "06:40", "retry": {"max_attempts": 3}, "anomaly": {"action": "refuse"}})
    assert good["parsed"]["basis"]["deadline"] == "06:40"
    basis = good["jobs"]["basis"]
    assert (basis["deadline"], basis["retry"], basis["anomaly"]) == ("06:40", {"max_attempts": 3},
                                                                    {"action": "refuse"})
    assert run({})["parsed"]["basis"]["deadline"] is None
    bad = run({"deadline": 400})
    assert bad["failed"] and "job 'basis': key 'deadline' must be a quoted 'HH:MM'" in bad["msg"]
    assert "fix dumpjob_jobs['basis'].deadline (or dumpjob_defaults.deadline) in the inventory" in bad["msg"]
    nested = run({"anomaly": {"action": "warn"}})
    assert nested["failed"] and "fix dumpjob_jobs['basis'].anomaly.action" in nested["msg"]
