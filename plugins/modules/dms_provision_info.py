#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dms_provision_info
short_description: The DMS resources carrying the collection's tags, and whether the replication task may start
description:
  - Lists the DMS replication tasks, endpoints and replication instances whose tags include every tag of
    O(owner_tags) - what the provisioning created, and what its teardown removes. A resource without those
    tags is never listed.
  - With O(readiness_report), reads the last readiness report (the JSON C(playbooks/dms_readiness.yml)
    writes) and tells whether the task may start; it may when the report has no C(fail) finding and is at
    most O(max_report_age_hours) old, or when O(start_override_reason) says why it starts anyway. The
    report's age is its C(generated_at) time when it has one; else, with C(checked_on) (the day of the
    check, written by M(jram.dumphost.dms_readiness)), the file's modification time when it falls on that
    day, else that day's start (UTC); else the file's modification time.
  - Reads only; the module runs where the report is (the controller).
version_added: 0.1.0
author:
  - JRAM infrastructure team (@jram-infra)
options:
  owner_tags:
    description: The tags that mark a resource as the provisioning's own.
    type: dict
    required: true
  readiness_report:
    description: Path of the readiness report (JSON); omitted, no start gate is computed.
    type: path
  max_report_age_hours:
    description: How old the report may be; 0 accepts any age.
    type: int
    default: 168
  start_override_reason:
    description: Why the task may start although the report does not pass (recorded by the caller).
    type: str
    default: ''
  subnet_group:
    description: A replication subnet group to look up by name (subnet groups carry no tags through the API the role uses).
    type: str
  table_rules:
    description:
      - The replication task's table rules (as M(jram.dumphost.dms_replication_task) takes them), checked here so
        that a bad rule is refused before anything is provisioned; the mapping document is returned.
    type: list
    elements: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Reads only; the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so shows no diff.
    support: none
"""

EXAMPLES = r"""
- name: What the DMS provisioning created, and whether the task may start
  jram.dumphost.dms_provision_info:
    owner_tags:
      Project: jram-dumphost
      Component: dms
    readiness_report: ~/dms-readiness/dms_readiness.json
  register: dms_state

- name: Refuse the start in one line
  ansible.builtin.fail:
    msg: "{{ dms_state.start_gate.reason }}"
  when: not dms_state.start_gate.allowed
"""

RETURN = r"""
replication_tasks:
  description: The tagged replication tasks.
  returned: always
  type: list
  elements: dict
  sample: [{identifier: jram-dumphost-basis, arn: "arn:aws:dms:ap-northeast-1:123456789012:task:jram-dumphost-basis", status: ready}]
endpoints:
  description: The tagged endpoints.
  returned: always
  type: list
  elements: dict
  sample: [{identifier: jram-dumphost-source, arn: "arn:aws:dms:ap-northeast-1:123456789012:endpoint:ABC", status: active}]
replication_instances:
  description: The tagged replication instances.
  returned: always
  type: list
  elements: dict
  sample: [{identifier: jram-dumphost-dms, arn: "arn:aws:dms:ap-northeast-1:123456789012:rep:ABC", status: available}]
subnet_group:
  description: The replication subnet group named by O(subnet_group) as DMS describes it; null when it does not exist.
  returned: when subnet_group is given
  type: dict
  sample: {replication_subnet_group_identifier: jram-dumphost-dms, subnet_group_status: Complete}
table_mappings:
  description: The table mapping document built from O(table_rules).
  returned: when table_rules is given
  type: dict
  sample: {rules: [{rule-type: selection, rule-id: "1", rule-name: include-basis-%, rule-action: include}]}
start_gate:
  description: Whether the task may start, and why (one line).
  returned: when readiness_report is given
  type: dict
  contains:
    allowed:
      description: Whether the task may start.
      type: bool
      sample: false
    reason:
      description: One line naming what passed, the override, or the failing findings and the fix.
      type: str
      sample: >-
        the replication task is not started: the readiness report /root/dms-readiness/dms_readiness.json fails
        mysql-check-binlog-format: have the vendor make the changes it lists, then run playbooks/dms_readiness.yml
        again, or give start_override_reason
    age_hours:
      description: The report's age in hours (null without a report).
      type: float
      sample: 2.5
"""

import contextlib
import json
import os
import time
from datetime import date, datetime, timezone

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils.dms_provision import (
    ProvisionError,
    start_gate,
    table_mappings,
)
from ansible_collections.jram.dumphost.plugins.module_utils.dms_provision_aws import (
    subnet_group,
    tagged_resources,
)


def read_report(path):
    """(report or None, age in hours or None)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        modified = os.stat(path).st_mtime
    except FileNotFoundError:
        return None, None
    try:
        report = json.loads(text)
    except ValueError:
        return "not json", None
    stamp = report.get("generated_at") if isinstance(report, dict) else None
    day = report.get("checked_on") if isinstance(report, dict) else None
    if isinstance(stamp, str):
        with contextlib.suppress(ValueError):
            modified = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    elif isinstance(day, str):
        # dms_readiness writes the day of the check: the file keeps the time of the day's first
        # run (re-runs that day change nothing), else the day's start counts - never later.
        with contextlib.suppress(ValueError):
            start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=timezone.utc).timestamp()
            modified = modified if start <= modified < start + 86400 else start
    return report, max(0.0, (time.time() - modified) / 3600)


def main():
    module = AnsibleAWSModule(argument_spec=dict(
        owner_tags=dict(type="dict", required=True),
        readiness_report=dict(type="path"),
        max_report_age_hours=dict(type="int", default=168),
        start_override_reason=dict(type="str", default=""),
        table_rules=dict(type="list", elements="dict"),
        subnet_group=dict(type="str"),
    ), supports_check_mode=True)
    p = module.params
    if not p["owner_tags"]:
        module.fail_json(msg="owner_tags is empty: give the tags that mark the provisioning's resources")
    result = {}
    if p["table_rules"] is not None:
        try:
            result["table_mappings"] = table_mappings(p["table_rules"])
        except ProvisionError as exc:
            module.fail_json(msg=str(exc))
    if p["readiness_report"]:
        report, age = read_report(p["readiness_report"])
        allowed, reason = start_gate(report, age or 0.0, p["max_report_age_hours"], p["start_override_reason"],
                                     p["readiness_report"])
        result["start_gate"] = {"allowed": allowed, "reason": reason, "age_hours": None if age is None else round(age, 2)}
    client = module.client("dms", retry_decorator=AWSRetry.jittered_backoff())
    try:
        found = tagged_resources(client, p["owner_tags"])
        if p["subnet_group"]:
            result["subnet_group"] = subnet_group(client, p["subnet_group"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="cannot list the DMS resources and their tags (dms:Describe*, dms:ListTagsForResource)")
    module.exit_json(changed=False, replication_tasks=found["replication task"], endpoints=found["endpoint"],
                     replication_instances=found["replication instance"], **result)


if __name__ == "__main__":
    main()
