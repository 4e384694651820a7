"""outcome_alarm: the alarm it builds for each outcome (a failed last attempt, a published
anomaly), and its main() as Ansible drives it against moto in server mode (conftest's moto_url):
check mode, apply, idempotence, a changed action, absent, bad input refused before any call to AWS."""

from __future__ import annotations

import itertools

import boto3
import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cloudwatch_alarm as ca
from ansible_collections.jram.dumphost.plugins.modules import outcome_alarm as oa
from sandboxtest import run_module

REGION = "ap-northeast-1"
KEY_ID, SECRET = "AKIAUNITTESTMOTO0000", "moto-unit-test-secret-key"
SERIAL = itertools.count(1)
TOPIC = "arn:aws:sns:ap-northeast-1:123456789012:dba-alerts"


def params(**extra) -> dict:
    base = {"name": "a", "outcome": "failure", "namespace": "JRAM/DumpHost", "metric_name": None,
            "dimensions": {"Job": "basis"}, "period": 300, "description": "", "alarm_actions": [TOPIC],
            "ok_actions": [], "insufficient_data_actions": []}
    return {**base, **extra}


@pytest.mark.parametrize(("outcome", "metric", "statistic", "operator"), [
    ("failure", "Succeeded", "Minimum", "LessThanThreshold"),
    ("anomaly", "Anomaly", "Maximum", "GreaterThanOrEqualToThreshold"),
])
def test_each_outcome_watches_its_metric_against_1(outcome, metric, statistic, operator):
    alarm = oa.desired_alarm(params(outcome=outcome))
    assert (alarm["MetricName"], alarm["Statistic"], alarm["ComparisonOperator"]) == (metric, statistic, operator)
    assert alarm["Threshold"] == 1.0 and alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"  # no run is the deadline alarm's to report
    assert alarm["Dimensions"] == [{"Name": "Job", "Value": "basis"}] and alarm["AlarmActions"] == [TOPIC]


def test_a_single_metric_alarm_compares_its_metric_and_period():
    """The shared comparison sees a changed statistic or period of a single-metric alarm."""
    alarm = oa.desired_alarm(params())
    after = ca.comparable(alarm, False)
    assert not ca.differs(ca.comparable(dict(alarm), False), after, False)
    for change in ({"Statistic": "Average"}, {"Period": 60}, {"Dimensions": [{"Name": "Job", "Value": "x"}]},
                   {"AlarmActions": []}):
        assert ca.differs(ca.comparable({**alarm, **change}, False), after, False), change


@pytest.mark.parametrize(("extra", "words"), [
    ({"namespace": ""}, "namespace is required"),
    ({"period": 90}, "multiple of 60"),
    ({"period": 0}, "multiple of 60"),
])
def test_alarms_that_cannot_be_built_are_refused(extra, words):
    with pytest.raises(oa.OutcomeAlarmError, match=words):
        oa.desired_alarm(params(**extra))


def module_args(url: str, name: str, **extra) -> dict:
    return {"name": name, "outcome": "failure", "namespace": "JRAM/DumpHost", "dimensions": {"Job": "basis"},
            "alarm_actions": [TOPIC], "endpoint_url": url, "region": REGION, "access_key": KEY_ID,
            "secret_key": SECRET, **extra}


def alarms(url: str, name: str) -> list:
    client = boto3.client("cloudwatch", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY_ID,
                          aws_secret_access_key=SECRET)
    return client.describe_alarms(AlarmNames=[name])["MetricAlarms"]


@pytest.mark.parametrize("outcome", ["failure", "anomaly"])
def test_check_apply_idempotence_change_and_absent(moto_url, outcome):
    name = f"outcome-{next(SERIAL)}"
    args = module_args(moto_url, name, outcome=outcome)
    planned = run_module(oa.main, args, check=True)
    assert planned["changed"] and planned["diff"]["before"] == {}
    assert alarms(moto_url, name) == []

    applied = run_module(oa.main, args)
    assert applied["changed"]
    (alarm,) = alarms(moto_url, name)
    assert alarm["MetricName"] == {"failure": "Succeeded", "anomaly": "Anomaly"}[outcome]
    assert alarm["AlarmActions"] == [TOPIC] and alarm["Dimensions"] == [{"Name": "Job", "Value": "basis"}]

    again = run_module(oa.main, args)
    assert not again["changed"] and "diff" not in again
    assert not run_module(oa.main, args, check=True)["changed"]

    other = "arn:aws:sns:ap-northeast-1:123456789012:other"
    moved = run_module(oa.main, {**args, "alarm_actions": [other]})
    assert moved["changed"] and moved["diff"]["before"]["alarm_actions"] == [TOPIC]
    assert alarms(moto_url, name)[0]["AlarmActions"] == [other]

    absent = {**args, "state": "absent"}
    assert run_module(oa.main, absent, check=True)["changed"] and alarms(moto_url, name)
    assert run_module(oa.main, absent)["changed"] and alarms(moto_url, name) == []
    assert not run_module(oa.main, absent)["changed"]


@pytest.mark.parametrize(("extra", "words"), [
    ({"period": 45}, "multiple of 60"),
    ({"namespace": None}, "namespace"),
    ({"outcome": None}, "outcome"),
])
def test_bad_input_is_refused_before_any_call_to_aws(extra, words):
    result = run_module(oa.main, module_args("http://127.0.0.1:9", f"outcome-{next(SERIAL)}", **extra))
    assert result["failed"] and words in result["msg"] and "\n" not in result["msg"]
    assert "Could not connect" not in result["msg"]
