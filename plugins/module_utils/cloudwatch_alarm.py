# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One CloudWatch metric alarm, compared and converged: the part the collection's alarm modules
(deadline_alarm, outcome_alarm) share. A desired alarm is a dict of PutMetricAlarm arguments;
it is written only when the settings the modules own differ from the described alarm."""

from __future__ import annotations

import contextlib

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore

# The options every alarm module has (doc fragment jram.dumphost.alarm).
ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    alarm_actions=dict(type="list", elements="str", default=[]),
    ok_actions=dict(type="list", elements="str", default=[]),
    insufficient_data_actions=dict(type="list", elements="str", default=[]),
)

# A single-metric alarm's own settings (a metric math alarm has Metrics instead).
SINGLE_METRIC = ("Namespace", "MetricName", "Statistic", "Period")


def _dimensions(dimensions) -> list:
    return sorted(({"Name": d["Name"], "Value": d["Value"]} for d in dimensions or []), key=lambda d: d["Name"])


def comparable(alarm, verify_window):
    """The settings the modules own, in one canonical shape, from a desired or a described alarm."""
    metrics = []
    for query in alarm.get("Metrics") or []:
        item = {"Id": query.get("Id"), "ReturnData": bool(query.get("ReturnData", True))}
        if query.get("Expression"):
            item["Expression"] = query["Expression"]
            item["Label"] = query.get("Label") or ""
        stat = query.get("MetricStat")
        if stat:
            metric = stat.get("Metric", {})
            item["MetricStat"] = {
                "Metric": {
                    "Namespace": metric.get("Namespace"),
                    "MetricName": metric.get("MetricName"),
                    "Dimensions": _dimensions(metric.get("Dimensions")),
                },
                "Period": int(stat.get("Period") or 0),
                "Stat": stat.get("Stat"),
            }
        metrics.append(item)
    result = {
        "AlarmName": alarm.get("AlarmName"),
        "AlarmDescription": alarm.get("AlarmDescription") or "",
        "ActionsEnabled": bool(alarm.get("ActionsEnabled", True)),
        "AlarmActions": sorted(alarm.get("AlarmActions") or []),
        "OKActions": sorted(alarm.get("OKActions") or []),
        "InsufficientDataActions": sorted(alarm.get("InsufficientDataActions") or []),
        "Metrics": sorted(metrics, key=lambda m: m["Id"]),
        "Threshold": float(alarm.get("Threshold") or 0),
        "ComparisonOperator": alarm.get("ComparisonOperator"),
        "EvaluationPeriods": int(alarm.get("EvaluationPeriods") or 0),
        "DatapointsToAlarm": int(alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods") or 0),
        "TreatMissingData": alarm.get("TreatMissingData") or "missing",
    }
    if alarm.get("MetricName"):
        result.update({key: alarm.get(key) for key in SINGLE_METRIC})
        result["Period"] = int(result["Period"] or 0)
        result["Dimensions"] = _dimensions(alarm.get("Dimensions"))
    window = alarm.get("EvaluationWindow")
    if window or verify_window:
        result["EvaluationWindow"] = window or {"SlidingWindow": {}}
    return result


def differs(before, after, verify_window):
    """Whether the alarm must be written; without ``verify_window`` the evaluation window the
    endpoint does not report is left out of the comparison."""
    if before is None:
        return True
    if verify_window:
        return before != after
    return dict(before, EvaluationWindow=None) != dict(after, EvaluationWindow=None)


def describe(client, name):
    answer = client.describe_alarms(aws_retry=True, AlarmNames=[name], AlarmTypes=["MetricAlarm"])
    alarms = answer.get("MetricAlarms") or []
    return alarms[0] if alarms else None


def ensure_present(client, desired, verify_window, check_mode, after_header):
    """(changed, result) for state=present: the alarm is put only when it differs from the one
    described, and not in check mode; ``result`` holds ``alarm`` and, on a change, ``diff``."""
    name = desired["AlarmName"]
    current = describe(client, name)
    after = comparable(desired, verify_window)
    before = comparable(current, verify_window) if current else None
    changed = differs(before, after, verify_window)
    if changed and not check_mode:
        client.put_metric_alarm(aws_retry=True, **desired)
    result = {"alarm": camel_dict_to_snake_dict(after if changed else before)}
    if changed:
        result["diff"] = {"before": camel_dict_to_snake_dict(before) if before else {},
                          "after": camel_dict_to_snake_dict(after),
                          "before_header": f"alarm {name}", "after_header": after_header}
    return changed, result


def ensure_absent(client, name, check_mode):
    """(changed, result) for state=absent."""
    current = describe(client, name)
    if not current:
        return False, {}
    if not check_mode:
        try:
            client.delete_alarms(aws_retry=True, AlarmNames=[name])
        except is_boto3_error_code("ResourceNotFound"):
            pass  # deleted since it was described
    return True, {"diff": {"before": camel_dict_to_snake_dict(comparable(current, False)), "after": {},
                           "before_header": f"alarm {name}", "after_header": f"alarm {name}"}}


def client_of(module):
    return module.client("cloudwatch", retry_decorator=AWSRetry.jittered_backoff())


def run(module, refusal, present):
    """The part of main() the alarm modules share: ``present()`` (state=present: check the options,
    then converge, returning ``(changed, result)``) or ensure_absent; ``refusal``, the module's own
    error class, and AWS errors become one fail_json; the diff only in diff mode."""
    params = module.params
    try:
        if params["state"] == "present":
            changed, result = present()
        else:
            changed, result = ensure_absent(client_of(module), params["name"], module.check_mode)
    except refusal as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to {'put' if params['state'] == 'present' else 'delete'} "
                                      f"alarm {params['name']}")
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(changed=changed, **result)
