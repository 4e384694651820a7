#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: outcome_alarm
short_description: A CloudWatch alarm that fires as soon as a job's run reports a failure or an anomaly
description:
  - Manages one CloudWatch metric alarm per dump job and outcome, next to the job's deadline
    alarm (M(jram.dumphost.deadline_alarm)), so that a bad night is reported when the run ends
    instead of at the deadline.
  - C(failure) watches the job's C(Succeeded) metric (1 or 0 per run, after the last attempt)
    and fires on a period whose C(Minimum) is below 1, that is a run that published C(Succeeded = 0).
  - C(anomaly) watches the job's C(Anomaly) metric (a count, put by a run that published a dump
    much smaller than the previous one) and fires on a period whose C(Maximum) is at least 1.
  - A period without datapoints (no run) is C(notBreaching); a run that never ends is the deadline
    alarm's to report.
  - Shares its comparison with M(jram.dumphost.deadline_alarm) (module_utils/cloudwatch_alarm), so the
    alarm is written only when a setting the module owns differs.
version_added: 0.2.0
author:
  - JRAM infrastructure team (@jram-infra)
options:
  outcome:
    description: What the alarm reports; required with O(state=present).
    type: str
    choices: [failure, anomaly]
  namespace:
    description: CloudWatch namespace the job publishes to (dumpjob's C(metrics_namespace)).
    type: str
  metric_name:
    description: The metric watched. Default C(Succeeded) for C(failure), C(Anomaly) for C(anomaly).
    type: str
  dimensions:
    description: "Dimensions of the metric; for dumpjob C(Job: <job name>)."
    type: dict
    default: {}
  period:
    description: Seconds per evaluated period, a multiple of 60; the alarm fires within about one period of the run's end.
    type: int
    default: 300
  description:
    description: Alarm description; the module appends the condition.
    type: str
    default: ''
extends_documentation_fragment:
  - jram.dumphost.alarm
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Alarm as soon as the nightly dump's last attempt failed
  jram.dumphost.outcome_alarm:
    name: jram-dumphost-basis-failed
    outcome: failure
    namespace: JRAM/DumpHost
    dimensions:
      Job: basis
    alarm_actions:
      - arn:aws:sns:ap-northeast-1:123456789012:dba-alerts

- name: Alarm when the nightly dump was published with an anomaly (much smaller than the last one)
  jram.dumphost.outcome_alarm:
    name: jram-dumphost-basis-anomaly
    outcome: anomaly
    namespace: JRAM/DumpHost
    dimensions:
      Job: basis
    alarm_actions:
      - arn:aws:sns:ap-northeast-1:123456789012:dba-alerts
"""

RETURN = r"""
alarm:
  description: The alarm's settings as compared (desired after a change, current otherwise).
  returned: when state=present
  type: dict
  sample: {"alarm_name": "jram-dumphost-basis-failed", "metric_name": "Succeeded", "statistic": "Minimum",
           "comparison_operator": "LessThanThreshold", "threshold": 1.0}
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.jram.dumphost.plugins.module_utils import cloudwatch_alarm as alarm_state

# outcome -> (default metric, statistic, comparison, what the description says)
OUTCOMES = {
    "failure": ("Succeeded", "Minimum", "LessThanThreshold", "a run published {metric} = 0 (its last attempt failed)"),
    "anomaly": ("Anomaly", "Maximum", "GreaterThanOrEqualToThreshold",
                "a run published {metric} >= 1 (a dump much smaller than the previous one)"),
}


class OutcomeAlarmError(Exception):
    """The alarm cannot be built from the options given; the message names the cause and the fix."""


def desired_alarm(params):
    """The PutMetricAlarm arguments of the alarm the options describe."""
    if not params["namespace"]:
        raise OutcomeAlarmError("namespace is required when state=present: give the namespace the job publishes "
                                "its metrics to (dumpjob's metrics_namespace)")
    if params["period"] < 60 or params["period"] % 60:
        raise OutcomeAlarmError(f"period is {params['period']}; CloudWatch needs a multiple of 60 seconds for a "
                                "standard-resolution metric")
    default_metric, statistic, operator, condition = OUTCOMES[params["outcome"]]
    metric = params["metric_name"] or default_metric
    when = f"Fires when {condition.format(metric=metric)} within {params['period']} s."
    return {
        "AlarmName": params["name"],
        "AlarmDescription": f"{params['description']} {when}".strip(),
        "ActionsEnabled": True,
        "AlarmActions": list(params["alarm_actions"]),
        "OKActions": list(params["ok_actions"]),
        "InsufficientDataActions": list(params["insufficient_data_actions"]),
        "Namespace": params["namespace"],
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": str(v)} for k, v in sorted((params["dimensions"] or {}).items())],
        "Statistic": statistic,
        "Period": params["period"],
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": 1.0,
        "ComparisonOperator": operator,
        "TreatMissingData": "notBreaching",
    }


def main():
    argument_spec = dict(
        **alarm_state.ARGUMENT_SPEC,
        outcome=dict(type="str", choices=list(OUTCOMES)),
        namespace=dict(type="str"),
        metric_name=dict(type="str"),
        dimensions=dict(type="dict", default={}),
        period=dict(type="int", default=300),
        description=dict(type="str", default=""),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("state", "present", ["outcome", "namespace"])])

    def present():
        desired = desired_alarm(module.params)  # before any call to AWS
        # The module sends no evaluation window (the default sliding one): not compared.
        return alarm_state.ensure_present(alarm_state.client_of(module), desired, False, module.check_mode,
                                          f"alarm {module.params['name']} ({module.params['outcome']})")

    alarm_state.run(module, OutcomeAlarmError, present)


if __name__ == "__main__":
    main()
