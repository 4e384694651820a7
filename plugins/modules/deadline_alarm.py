#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: deadline_alarm
short_description: A CloudWatch alarm that fires when a job recorded no success by a daily deadline
description:
  - Manages one CloudWatch metric alarm per dump job that goes to C(ALARM) when the job's
    C(Succeeded) metric has no datapoint of at least 1 in the day window that ends at the
    deadline (or in the last O(window_days) such windows, for jobs that do not run daily).
  - The alarm watches the metric math expression C(FILL(m, 0)) over daily C(Sum) periods, so a
    day without any datapoint counts as a breaching 0; CloudWatch's own missing-data handling
    would otherwise fall back to an older real datapoint and stay C(OK).
  - The periods are wall-clock aligned (C(EvaluationWindow.WallClockWindow)) in the fixed UTC
    offset whose midnight is the deadline, so each window closes, and is evaluated, at the
    deadline.
  - Written for the aws_identity role because M(amazon.aws.cloudwatch_metric_alarm) (10.x) cannot set an
    evaluation window and reports a change on every run for metric math alarms.
version_added: 0.1.0
author:
  - JRAM infrastructure team (@jram-infra)
requirements:
  - python >= 3.9 (zoneinfo)
  - botocore >= 1.43.38 (C(EvaluationWindow) of C(PutMetricAlarm))
options:
  namespace:
    description: CloudWatch namespace the job publishes to (dumpjob's C(metrics_namespace)).
    type: str
  metric_name:
    description: The success metric (1 per successful run).
    type: str
    default: Succeeded
  dimensions:
    description: "Dimensions of the metric; for dumpjob C(Job: <job name>)."
    type: dict
    default: {}
  deadline:
    description:
      - Time of day (HH:MM, minutes a multiple of 5) in O(timezone) by which a success must be
        recorded. Default, the start time in O(schedule) plus O(grace_minutes), rounded up to 5 minutes.
    type: str
  schedule:
    description:
      - The job's cron schedule (five fields or a macro), read in O(timezone). Gives the default
        O(deadline) and O(window_days); schedules that run on days of the month or months are
        refused (CloudWatch alarms look back at most 7 days).
    type: str
  grace_minutes:
    description: Minutes after the scheduled start by which a run must have succeeded (default deadline).
    type: int
    default: 75
  timezone:
    description: IANA time zone of O(deadline).
    type: str
    default: Asia/Tokyo
  window_days:
    description:
      - Number of consecutive day windows without a success that make the alarm fire; 1 for
        daily jobs, 7 for weekly jobs (CloudWatch allows at most 7 days). 0 derives it from
        O(schedule) (the longest gap between run days), or 1 without a schedule.
    type: int
    default: 0
  description:
    description: Alarm description; the module appends the deadline it computed.
    type: str
    default: ''
  verify_evaluation_window:
    description:
      - Compare the evaluation window the service reports. Set false only for an endpoint that
        accepts but does not report C(EvaluationWindow) (moto); the window is still sent.
    type: bool
    default: true
extends_documentation_fragment:
  - jram.dumphost.alarm
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Alarm when the nightly dump has not succeeded by 06:45 JST
  jram.dumphost.deadline_alarm:
    name: jram-dumphost-basis-deadline
    namespace: JRAM/DumpHost
    dimensions:
      Job: basis
    schedule: "30 5 * * *"
    deadline: "06:45"
    timezone: Asia/Tokyo
    alarm_actions:
      - arn:aws:sns:ap-northeast-1:123456789012:dba-alerts
"""

RETURN = r"""
alarm:
  description: The alarm's settings as compared (desired after a change, current otherwise).
  returned: when state=present
  type: dict
  sample: {"alarm_name": "jram-dumphost-basis-deadline", "evaluation_periods": 1, "threshold": 1.0}
deadline:
  description: The deadline used (HH:MM in O(timezone)).
  returned: when state=present
  type: str
  sample: "06:45"
window_days:
  description: The number of day windows evaluated.
  returned: when state=present
  type: int
  sample: 1
wall_clock_timezone:
  description: The fixed UTC offset whose midnight is the deadline.
  returned: when state=present
  type: str
  sample: "+02:15"
deadline_utc:
  description: The deadline in UTC (HH:MM).
  returned: when state=present
  type: str
  sample: "21:45"
"""

import re
from datetime import datetime, timezone

try:
    from zoneinfo import ZoneInfo
except ImportError:  # Python < 3.9: refused in main()
    ZoneInfo = None

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.jram.dumphost.plugins.module_utils import cloudwatch_alarm as alarm_state
from ansible_collections.jram.dumphost.plugins.module_utils.cron_schedule import parse_schedule
from ansible_collections.jram.dumphost.plugins.module_utils.errors import ScheduleError

DAY = 86400
MINUTES_PER_DAY = 1440
# The first botocore whose CloudWatch model has PutMetricAlarm's EvaluationWindow.
BOTOCORE_FLOOR = "1.43.38"
METRIC_ID = "succeeded"
EXPRESSION_ID = "missing"
DEADLINE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class DeadlineAlarmError(Exception):
    """The alarm cannot be built from the options given; the message names the cause and the fix."""


def from_schedule(schedule):
    """(start minute of day or None, the longest gap in days between runs) of a cron schedule,
    read with the collection's cron grammar (module_utils/cron_schedule)."""
    try:
        parsed = parse_schedule(schedule)
    except ScheduleError as exc:
        raise DeadlineAlarmError(str(exc)) from None
    if parsed.reboot:
        raise DeadlineAlarmError(f"schedule '{schedule}' runs at boot, not by the clock; an alarm needs a "
                                 "daily or weekly schedule")
    minute, hour, dom, month, dow = parsed.fields
    if not dom.unrestricted or not month.unrestricted:
        raise DeadlineAlarmError(f"schedule '{schedule}' runs on chosen days of the month or months; a CloudWatch "
                                 "alarm looks back at most 7 days, so skip this job's alarm or give it a weekly "
                                 "schedule")
    days = sorted(dow.values)
    gaps = [((days[(i + 1) % len(days)] - day) % 7) or 7 for i, day in enumerate(days)]
    single = len(minute.values) == 1 and len(hour.values) == 1
    return (min(hour.values) * 60 + min(minute.values) if single else None), max(gaps)


def default_deadline(start, grace_minutes):
    """HH:MM of the start plus the grace, rounded up to 5 minutes (wrapping past midnight)."""
    due = (start + grace_minutes + 4) // 5 * 5 % MINUTES_PER_DAY
    return f"{due // 60:02d}:{due % 60:02d}"


def zone(name):
    if ZoneInfo is None:
        raise DeadlineAlarmError("this module needs Python 3.9 or later (zoneinfo) where it runs")
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise DeadlineAlarmError(f"timezone '{name}' is not a known IANA time zone") from None


def wall_clock_offset(deadline, tz, now):
    """(the UTC offset "+02:15" whose local midnight is ``deadline`` in ``tz`` at ``now``, the
    deadline in UTC "HH:MM", whether ``tz`` changes its offset during ``now``'s year)."""
    match = DEADLINE.match(deadline or "")
    if not match:
        raise DeadlineAlarmError(f"deadline '{deadline}' is not a time of day like 06:45")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes % 5:
        raise DeadlineAlarmError(f"deadline '{deadline}': CloudWatch aligns windows to offsets in steps of 5 "
                                 "minutes; use a deadline whose minutes are a multiple of 5")
    seasons = {datetime(now.year, month, 1, tzinfo=tz).utcoffset() for month in (1, 7)}
    local_offset = int(now.astimezone(tz).utcoffset().total_seconds() // 60)
    deadline_utc = (hours * 60 + minutes - local_offset) % MINUTES_PER_DAY
    window = (-deadline_utc) % MINUTES_PER_DAY
    if window > 14 * 60:  # offsets run from -12:00 to +14:00
        window -= MINUTES_PER_DAY
    sign = "+" if window >= 0 else "-"
    text = f"{sign}{abs(window) // 60:02d}:{abs(window) % 60:02d}"
    return text, f"{deadline_utc // 60:02d}:{deadline_utc % 60:02d}", len(seasons) > 1


def plan(params, now):
    """What the alarm must be: (desired PutMetricAlarm arguments, the module's result fields,
    whether the zone observes daylight saving time)."""
    if not params["namespace"]:  # required_if counts a namespace given as null or '' as given
        raise DeadlineAlarmError("namespace is required when state=present: give the namespace the job publishes "
                                 "its Succeeded metric to (dumpjob's metrics_namespace)")
    start, days = from_schedule(params["schedule"]) if params["schedule"] else (None, 1)
    deadline = params["deadline"]
    if not deadline:
        if start is None:
            what = f"schedule '{params['schedule']}' has no single start time" if params["schedule"] else "no schedule"
            raise DeadlineAlarmError(f"{what} to derive the deadline from; give the alarm a deadline")
        deadline = default_deadline(start, params["grace_minutes"])
    if params["window_days"]:
        days = params["window_days"]
    if not 1 <= days <= 7:
        raise DeadlineAlarmError(f"window_days is {days}; CloudWatch evaluates at most 7 day windows")
    window_tz, deadline_utc, observes_dst = wall_clock_offset(deadline, zone(params["timezone"]), now)
    desired = desired_alarm(params, window_tz, days, deadline, deadline_utc)
    fields = {"deadline": deadline, "window_days": days, "wall_clock_timezone": window_tz, "deadline_utc": deadline_utc}
    return desired, fields, observes_dst


def desired_alarm(params, window_tz, days, deadline, deadline_utc):
    dimensions = [{"Name": k, "Value": str(v)} for k, v in sorted((params["dimensions"] or {}).items())]
    # The deadline is also written into the description: an endpoint that does not report the
    # evaluation window still sees a changed deadline.
    window = "the day window" if days == 1 else f"{days} day windows"
    when = (f"Fires when {window} ending at {deadline} {params['timezone']} ({deadline_utc} UTC, wall-clock "
            f"UTC{window_tz}) recorded no {params['metric_name']} >= 1.")
    return {
        "AlarmName": params["name"],
        "AlarmDescription": f"{params['description']} {when}".strip(),
        "ActionsEnabled": True,
        "AlarmActions": list(params["alarm_actions"]),
        "OKActions": list(params["ok_actions"]),
        "InsufficientDataActions": list(params["insufficient_data_actions"]),
        "Metrics": [
            {
                "Id": METRIC_ID,
                "MetricStat": {
                    "Metric": {"Namespace": params["namespace"], "MetricName": params["metric_name"],
                               "Dimensions": dimensions},
                    "Period": DAY,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
            {
                "Id": EXPRESSION_ID,
                "Expression": f"FILL({METRIC_ID}, 0)",
                "Label": f"{params['metric_name']} per day window, missing days as 0",
                "ReturnData": True,
            },
        ],
        "Threshold": 1.0,
        "ComparisonOperator": "LessThanThreshold",
        "EvaluationPeriods": days,
        "DatapointsToAlarm": days,
        "TreatMissingData": "breaching",
        "EvaluationWindow": {"WallClockWindow": {"Timezone": window_tz}},
    }


def ensure_present(client, params, desired, fields, check_mode):
    """(changed, result) for state=present: ``desired`` and ``fields`` come from :func:`plan`; writes
    only when the alarm differs, and not in check mode."""
    header = (f"alarm {params['name']} (deadline {fields['deadline']} {params['timezone']}, "
              f"{fields['deadline_utc']} UTC)")
    changed, result = alarm_state.ensure_present(client, desired, params["verify_evaluation_window"], check_mode,
                                                 header)
    return changed, dict(fields, **result)


def main():
    argument_spec = dict(
        **alarm_state.ARGUMENT_SPEC,
        namespace=dict(type="str"),
        metric_name=dict(type="str", default="Succeeded"),
        dimensions=dict(type="dict", default={}),
        deadline=dict(type="str"),
        timezone=dict(type="str", default="Asia/Tokyo"),
        window_days=dict(type="int", default=0),
        schedule=dict(type="str"),
        grace_minutes=dict(type="int", default=75),
        description=dict(type="str", default=""),
        verify_evaluation_window=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("state", "present", ["namespace"])])

    def present():
        params = module.params
        module.require_botocore_at_least(BOTOCORE_FLOOR, reason="to set an alarm's EvaluationWindow")
        desired, fields, observes_dst = plan(params, datetime.now(timezone.utc))  # before any call to AWS
        if observes_dst:
            module.warn(f"timezone {params['timezone']} observes daylight saving time: the alarm window is "
                        "aligned with today's offset; re-run the playbook after each change of offset")
        return ensure_present(alarm_state.client_of(module), params, desired, fields, module.check_mode)

    alarm_state.run(module, DeadlineAlarmError, present)


if __name__ == "__main__":
    main()
