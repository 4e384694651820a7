"""deadline_alarm: its time arithmetic (schedule -> start and gap, deadline -> the wall-clock
offset CloudWatch aligns the day windows to, in zones with and without daylight saving time) as
pure functions, and its main() as Ansible drives it against moto in server mode (conftest's
moto_url): check mode, apply, idempotence, diff, absent, bad input refused before any call to AWS."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cloudwatch_alarm as ca
from ansible_collections.jram.dumphost.plugins.modules import deadline_alarm as da
from sandboxtest import run_module

REGION = "ap-northeast-1"
KEY_ID, SECRET = "AKIAUNITTESTMOTO0000", "moto-unit-test-secret-key"
SERIAL = itertools.count(1)
WINTER = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
SUMMER = dt.datetime(2026, 7, 15, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("schedule", "expected"), [
    ("30 5 * * *", (330, 1)),
    ("@daily", (0, 1)),
    ("@weekly", (0, 7)),
    ("@hourly", (None, 1)),
    ("*/15 1 * * *", (None, 1)),
    ("0 4 * * sun", (240, 7)),
    ("0 4 * * 7", (240, 7)),              # 7 is Sunday too
    ("0 4 * * 0,7", (240, 7)),
    ("0 4 * * mon,thu", (240, 4)),        # Thursday to Monday
    ("0 4 * * 1-5", (240, 3)),            # Friday to Monday
    ("0 4 * * */2", (240, 2)),            # Sunday, Tuesday, Thursday, Saturday
    ("0 23 * * mon-fri", (1380, 3)),
])
def test_schedule_gives_the_start_and_the_longest_gap(schedule, expected):
    assert da.from_schedule(schedule) == expected


@pytest.mark.parametrize(("schedule", "words"), [
    ("0 4 1 * *", "chosen days of the month"),
    ("0 4 * jan *", "chosen days of the month or months"),
    ("@reboot", "runs at boot"),
    ("0 4 * * sat-sun", "runs backwards"),     # the collection's grammar refuses what cron never fires
    ("0 4 * *", "has 4 fields"),
    ("61 4 * * *", "outside 0-59"),
    ("0 4 * * funday", "not a number or a name"),
])
def test_schedules_an_alarm_cannot_watch_are_refused(schedule, words):
    with pytest.raises(da.DeadlineAlarmError, match=words):
        da.from_schedule(schedule)


@pytest.mark.parametrize(("start", "grace", "expected"), [
    (330, 75, "06:45"),
    (331, 75, "06:50"),    # rounded up to 5 minutes
    (335, 0, "05:35"),     # already on a 5-minute step
    (1430, 75, "01:05"),   # past midnight
])
def test_default_deadline_is_start_plus_grace_rounded_up(start, grace, expected):
    assert da.default_deadline(start, grace) == expected


@pytest.mark.parametrize(("deadline", "zone", "now", "expected"), [
    ("06:45", "Asia/Tokyo", WINTER, ("+02:15", "21:45", False)),
    ("06:45", "Asia/Tokyo", SUMMER, ("+02:15", "21:45", False)),
    ("00:00", "UTC", WINTER, ("+00:00", "00:00", False)),
    ("10:00", "UTC", WINTER, ("+14:00", "10:00", False)),   # the largest offset there is
    ("09:55", "UTC", WINTER, ("-09:55", "09:55", False)),   # beyond +14:00: the same midnight, west
    ("06:45", "Asia/Kolkata", WINTER, ("-01:15", "01:15", False)),
    ("06:00", "Europe/London", WINTER, ("-06:00", "06:00", True)),
    ("06:00", "Europe/London", SUMMER, ("-05:00", "05:00", True)),
    ("06:00", "America/New_York", WINTER, ("+13:00", "11:00", True)),
    ("06:00", "America/New_York", SUMMER, ("+14:00", "10:00", True)),
    ("06:00", "Australia/Sydney", WINTER, ("+05:00", "19:00", True)),   # southern summer: +11
])
def test_wall_clock_offset_puts_midnight_at_the_deadline(deadline, zone, now, expected):
    window, deadline_utc, dst = da.wall_clock_offset(deadline, ZoneInfo(zone), now)
    assert (window, deadline_utc, dst) == expected
    # the fixed offset's midnight is the deadline, as an instant
    sign = 1 if window[0] == "+" else -1
    offset = dt.timezone(sign * dt.timedelta(hours=int(window[1:3]), minutes=int(window[4:6])))
    local = now.astimezone(ZoneInfo(zone))
    at_deadline = local.replace(hour=int(deadline[:2]), minute=int(deadline[3:]), second=0, microsecond=0)
    assert at_deadline.astimezone(offset).time() == dt.time(0, 0)
    assert at_deadline.astimezone(dt.timezone.utc).strftime("%H:%M") == deadline_utc


@pytest.mark.parametrize(("deadline", "words"), [
    ("6:45", "is not a time of day like 06:45"),
    ("24:00", "is not a time of day"),
    ("06:47", "multiple of 5"),
    (None, "is not a time of day"),
])
def test_bad_deadlines_are_refused(deadline, words):
    with pytest.raises(da.DeadlineAlarmError, match=words):
        da.wall_clock_offset(deadline, ZoneInfo("Asia/Tokyo"), WINTER)


def test_unknown_zone_is_refused():
    with pytest.raises(da.DeadlineAlarmError, match="'Mars/Olympus' is not a known IANA time zone"):
        da.zone("Mars/Olympus")


def params(**extra) -> dict:
    base = {"name": "a", "namespace": "JRAM/DumpHost", "metric_name": "Succeeded", "dimensions": {"Job": "basis"},
            "deadline": None, "schedule": "30 5 * * *", "grace_minutes": 75, "timezone": "Asia/Tokyo",
            "window_days": 0, "description": "", "alarm_actions": [], "ok_actions": [],
            "insufficient_data_actions": []}
    return {**base, **extra}


def test_plan_derives_deadline_and_window_from_the_schedule():
    desired, fields, dst = da.plan(params(schedule="0 4 * * mon,thu"), WINTER)
    assert fields == {"deadline": "05:15", "window_days": 4, "wall_clock_timezone": "+03:45",
                      "deadline_utc": "20:15"} and not dst
    assert desired["EvaluationPeriods"] == desired["DatapointsToAlarm"] == 4
    assert desired["EvaluationWindow"] == {"WallClockWindow": {"Timezone": "+03:45"}}
    assert "05:15 Asia/Tokyo (20:15 UTC" in desired["AlarmDescription"]


@pytest.mark.parametrize(("extra", "words"), [
    ({"schedule": None}, "no schedule to derive the deadline from"),
    ({"schedule": "*/15 * * * *"}, "has no single start time"),
    ({"window_days": 8}, "window_days is 8"),
])
def test_plan_refuses_what_gives_no_alarm(extra, words):
    with pytest.raises(da.DeadlineAlarmError, match=words):
        da.plan(params(**extra), WINTER)


def test_the_evaluation_window_is_compared_only_when_the_endpoint_reports_it():
    """moto stores the window but does not report it (verify_evaluation_window: false); AWS does."""
    desired, _fields, _dst = da.plan(params(), WINTER)
    moved = dict(desired, EvaluationWindow={"WallClockWindow": {"Timezone": "+03:00"}})
    unreported = {k: v for k, v in desired.items() if k != "EvaluationWindow"}
    for verify, expected in ((True, [False, True, True]), (False, [False, False, False])):
        after = ca.comparable(desired, verify)
        found = [ca.differs(ca.comparable(described, verify), after, verify)
                 for described in (desired, moved, unreported)]
        assert found == expected, verify
    assert ca.differs(None, ca.comparable(desired, True), True)


def module_args(url: str, name: str, **extra) -> dict:
    return {"name": name, "namespace": "JRAM/DumpHost", "dimensions": {"Job": "basis"}, "schedule": "30 5 * * *",
            "timezone": "Asia/Tokyo", "verify_evaluation_window": False, "endpoint_url": url, "region": REGION,
            "access_key": KEY_ID, "secret_key": SECRET, **extra}


def alarms(url: str, name: str) -> list:
    client = boto3.client("cloudwatch", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET)
    return client.describe_alarms(AlarmNames=[name])["MetricAlarms"]


def test_check_apply_idempotence_change_and_absent(moto_url):
    name = f"deadline-{next(SERIAL)}"
    args = module_args(moto_url, name)
    planned = run_module(da.main, args, check=True)
    assert planned["changed"] and planned["deadline"] == "06:45" and planned["wall_clock_timezone"] == "+02:15"
    assert planned["diff"]["before"] == {} and planned["diff"]["after"]["evaluation_periods"] == 1
    assert alarms(moto_url, name) == []

    applied = run_module(da.main, args)
    assert applied["changed"]
    (alarm,) = alarms(moto_url, name)
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["TreatMissingData"] == "breaching"
    assert alarm["Threshold"] == 1.0 and alarm["EvaluationPeriods"] == 1
    assert {m["Id"] for m in alarm["Metrics"]} == {"succeeded", "missing"}
    assert "06:45 Asia/Tokyo (21:45 UTC" in alarm["AlarmDescription"]

    again = run_module(da.main, args)
    assert not again["changed"] and "diff" not in again
    assert not run_module(da.main, args, check=True)["changed"]

    later = run_module(da.main, {**args, "deadline": "07:30"})
    assert later["changed"] and later["deadline_utc"] == "22:30"
    assert "21:45 UTC" in later["diff"]["before"]["alarm_description"]
    assert "22:30 UTC" in later["diff"]["after"]["alarm_description"]
    assert "22:30 UTC" in alarms(moto_url, name)[0]["AlarmDescription"]

    absent = {**args, "state": "absent"}
    assert run_module(da.main, absent, check=True)["changed"] and alarms(moto_url, name)
    gone = run_module(da.main, absent)
    assert gone["changed"] and gone["diff"]["after"] == {} and alarms(moto_url, name) == []
    assert not run_module(da.main, absent)["changed"]


@pytest.mark.parametrize(("extra", "words"), [
    ({"deadline": "06:47"}, "multiple of 5"),
    ({"schedule": "0 4 1 * *"}, "chosen days of the month"),
    ({"timezone": "Mars/Olympus"}, "not a known IANA time zone"),
    ({"namespace": None}, "namespace"),
])
def test_bad_input_is_refused_before_any_call_to_aws(extra, words):
    """The endpoint is a closed port: a refusal that named a connection error would have called it."""
    result = run_module(da.main, module_args("http://127.0.0.1:9", f"deadline-{next(SERIAL)}", **extra))
    assert result["failed"] and words in result["msg"] and "\n" not in result["msg"]
    assert "Could not connect" not in result["msg"]
