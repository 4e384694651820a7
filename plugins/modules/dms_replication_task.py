#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dms_replication_task
short_description: An AWS DMS replication task (full load and CDC by default), its table mappings built from rules
description:
  - Creates, converges, starts or deletes one DMS replication task between two endpoints on a
    replication instance. The table mappings are built from O(table_rules) (schema, table, include or
    exclude); the task settings given in O(task_settings) are compared key by key with what DMS stores.
  - The task is created stopped. O(start=true) starts it (C(start-replication) the first time,
    C(resume-processing) after a stop) and appends who, when and why to O(ledger_path) on the machine
    the module runs on; deciding whether it may start is the caller's; the role asks
    M(jram.dumphost.dms_provision_info) for the readiness gate first.
  - A running task is not modified (DMS refuses it); the module says to stop it first. Deleting a running
    task stops it first.
  - No Ansible collection had a module for DMS replication tasks.
version_added: 0.1.0
author:
  - JRAM infrastructure team (@jram-infra)
options:
  identifier:
    description: The replication task identifier.
    type: str
    required: true
  state:
    description: Whether the task exists.
    type: str
    choices: [present, absent]
    default: present
  source_endpoint_arn:
    description: ARN of the source endpoint.
    type: str
  target_endpoint_arn:
    description: ARN of the target endpoint.
    type: str
  replication_instance_arn:
    description: ARN of the replication instance.
    type: str
  migration_type:
    description: What the task does.
    type: str
    choices: [full-load, cdc, full-load-and-cdc]
    default: full-load-and-cdc
  table_rules:
    description:
      - The selection rules, in order; each C(schema) (required), C(table) (default C(%), every table;
        C(%) is a wildcard) and C(action) (V(include), the default, or V(exclude)).
    type: list
    elements: dict
    default: []
  task_settings:
    description: Task settings as DMS names them (for example C(TargetMetadata.LobMaxSize)); only these are compared.
    type: dict
    default: {}
  start:
    description: Start the task when it is not running.
    type: bool
    default: false
  start_reason:
    description: Why the task may start (the readiness report that passed, or an operator's override); recorded in O(ledger_path).
    type: str
    default: ''
  ledger_path:
    description: File on the machine the module runs on to which each start is appended (one JSON object a line); empty, none.
    type: path
    default: ''
  wait_timeout:
    description:
      - Seconds to wait for a task being created or modified to become startable before starting it, and for
        a stop before a delete. 0 starts at once (DMS refuses to start a task that is still being created).
    type: int
    default: 600
extends_documentation_fragment:
  - jram.dumphost.dms
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Full load and CDC of basis without the access log
  jram.dumphost.dms_replication_task:
    identifier: jram-dumphost-basis
    source_endpoint_arn: "{{ source.arn }}"
    target_endpoint_arn: "{{ target.arn }}"
    replication_instance_arn: "{{ instance.arn }}"
    table_rules:
      - schema: basis
      - schema: basis
        table: access_logs
        action: exclude
    task_settings:
      TargetMetadata:
        LimitedSizeLobMode: true
        LobMaxSize: 32
    tags:
      Project: jram-dumphost
      Component: dms
"""

RETURN = r"""
replication_task:
  description: The task as DMS describes it (as it would be created, in check mode).
  returned: when state=present
  type: dict
  sample:
    replication_task_identifier: jram-dumphost-basis
    migration_type: full-load-and-cdc
    status: ready
arn:
  description: The task's ARN (empty in check mode before it exists).
  returned: when state=present
  type: str
  sample: arn:aws:dms:ap-northeast-1:123456789012:task:jram-dumphost-basis
table_mappings:
  description: The table mapping document built from O(table_rules).
  returned: when state=present
  type: dict
  sample:
    rules:
      - rule-type: selection
        rule-id: "1"
        rule-name: include-basis-%
        object-locator: {schema-name: basis, table-name: "%"}
        rule-action: include
started:
  description: Whether this run started the task (would start it, in check mode).
  returned: when state=present
  type: bool
  sample: false
"""

import contextlib
import getpass
import json
import os
from datetime import datetime, timezone

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import dms_provision_aws as dms
from ansible_collections.jram.dumphost.plugins.module_utils.dms_provision import (
    ProvisionError,
    mappings_json,
    parse_json,
    table_mappings,
)

KIND = "replication task"
FIXED = ("SourceEndpointArn", "TargetEndpointArn", "ReplicationInstanceArn")
RUNNING = ("running", "starting")
BUSY = ("creating", "modifying", "stopping", "moving")


def desired_task(params):
    return {"SourceEndpointArn": params["source_endpoint_arn"], "TargetEndpointArn": params["target_endpoint_arn"],
            "ReplicationInstanceArn": params["replication_instance_arn"], "MigrationType": params["migration_type"],
            "TableMappings": table_mappings(params["table_rules"]),
            "ReplicationTaskSettings": params["task_settings"] or None}


def comparable(task):
    return {"SourceEndpointArn": task.get("SourceEndpointArn"), "TargetEndpointArn": task.get("TargetEndpointArn"),
            "ReplicationInstanceArn": task.get("ReplicationInstanceArn"), "MigrationType": task.get("MigrationType"),
            "TableMappings": parse_json(task.get("TableMappings"), "TableMappings"),
            "ReplicationTaskSettings": parse_json(task.get("ReplicationTaskSettings"), "ReplicationTaskSettings"),
            "Status": task.get("Status")}


def as_api(settings):
    """create/modify arguments: the JSON documents as text."""
    api = dict(settings)
    for key in ("TableMappings", "ReplicationTaskSettings"):
        if isinstance(api.get(key), dict):
            api[key] = mappings_json(api[key])
    return api


def record_start(path, identifier, arn, reason):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o750, exist_ok=True)
    entry = {"time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "task": identifier, "arn": arn,
             "action": "start", "reason": reason, "by": getpass.getuser()}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as ledger:
        ledger.write(json.dumps(entry, sort_keys=True) + "\n")


def start_task(module, client, task):
    """Start the task (not in check mode); returns True when it was not running."""
    p = module.params
    status = task.get("Status")
    if status in RUNNING:
        return False
    if module.check_mode:
        return True
    if status in BUSY and p["wait_timeout"] > 0:
        if not dms.wait_until(client, KIND, p["identifier"], lambda t: t is not None and t.get("Status") not in BUSY,
                              p["wait_timeout"], delay=10):
            module.fail_json(msg=f"replication task {p['identifier']} is still {status} after {p['wait_timeout']} s: "
                                 "re-run the play later to start it")
        task = dms.describe_one(client, KIND, p["identifier"])
    kind = "resume-processing" if task.get("Status") == "stopped" else "start-replication"
    client.start_replication_task(aws_retry=True, ReplicationTaskArn=task["ReplicationTaskArn"],
                                  StartReplicationTaskType=kind)
    if p["ledger_path"]:
        record_start(p["ledger_path"], p["identifier"], task["ReplicationTaskArn"], p["start_reason"])
    return True


def ensure_present(module, client):
    p = module.params
    desired = desired_task(p)  # refuses bad table rules before any call to AWS
    current = dms.describe_one(client, KIND, p["identifier"])
    if current is not None:
        have = comparable(current)
        moved = [k for k in FIXED if have[k] != desired[k]]
        if moved:
            raise ProvisionError(f"replication task {p['identifier']} has another {', '.join(moved)}: DMS cannot change "
                                 "it; delete the task (state=absent) and run again")
        if have["Status"] in RUNNING and dms.setting_changes(have, desired):
            raise ProvisionError(f"replication task {p['identifier']} is {have['Status']} and its table mappings or "
                                 "settings differ: stop it in the DMS console or with aws dms stop-replication-task, "
                                 "then run again")

    def create(settings, tags):
        return client.create_replication_task(aws_retry=True, ReplicationTaskIdentifier=p["identifier"], Tags=tags,
                                              **as_api(settings))["ReplicationTask"]

    def modify(arn, changes):
        return client.modify_replication_task(aws_retry=True, ReplicationTaskArn=arn,
                                              **as_api(changes))["ReplicationTask"]

    changed, task, diff = dms.ensure_present(client, KIND, p["identifier"], desired, create, modify, comparable,
                                             p["tags"], p["purge_tags"], module.check_mode)
    started = False
    if p["start"]:
        started = start_task(module, client, task if current is not None or not module.check_mode else {})
        if started:
            diff = diff or {"before": {}, "after": {}, "before_header": f"DMS {KIND} {p['identifier']}",
                            "after_header": f"DMS {KIND} {p['identifier']}"}
            diff["before"] = dict(diff["before"], Status=(current or {}).get("Status"))
            diff["after"] = dict(diff["after"], Status="running", StartReason=p["start_reason"])
            if not module.check_mode:
                task = dms.describe_one(client, KIND, p["identifier"]) or task
    result = {"replication_task": dms.snake(task if "ReplicationTaskArn" in task else {}),
              "arn": task.get("ReplicationTaskArn", ""), "table_mappings": desired["TableMappings"],
              "started": started}
    return changed or started, result, diff


def ensure_absent(module, client):
    p = module.params

    def delete(task):
        arn = task["ReplicationTaskArn"]
        if task.get("Status") in RUNNING:
            client.stop_replication_task(aws_retry=True, ReplicationTaskArn=arn)
            if not dms.wait_until(client, KIND, p["identifier"], lambda t: t is None or t.get("Status") not in
                                  (*RUNNING, "stopping"), p["wait_timeout"], delay=10):
                module.fail_json(msg=f"replication task {p['identifier']} did not stop within {p['wait_timeout']} s: "
                                     "re-run the teardown")
        client.delete_replication_task(aws_retry=True, ReplicationTaskArn=arn)
        if not dms.wait_until(client, KIND, p["identifier"], lambda t: t is None, p["wait_timeout"], delay=10):
            module.fail_json(msg=f"replication task {p['identifier']} is still being deleted after "
                                 f"{p['wait_timeout']} s: re-run the teardown")

    changed, diff = dms.ensure_absent(client, KIND, p["identifier"], delete, comparable, module.check_mode)
    return changed, {}, diff


def main():
    argument_spec = dict(
        identifier=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        source_endpoint_arn=dict(type="str"),
        target_endpoint_arn=dict(type="str"),
        replication_instance_arn=dict(type="str"),
        migration_type=dict(type="str", choices=["full-load", "cdc", "full-load-and-cdc"], default="full-load-and-cdc"),
        table_rules=dict(type="list", elements="dict", default=[]),
        task_settings=dict(type="dict", default={}),
        start=dict(type="bool", default=False),
        start_reason=dict(type="str", default=""),
        ledger_path=dict(type="path", default=""),
        wait_timeout=dict(type="int", default=600),
        tags=dict(type="dict", default={}),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("state", "present", ["source_endpoint_arn", "target_endpoint_arn",
                                                                 "replication_instance_arn"])])
    p = module.params
    try:
        if p["state"] == "present":
            table_mappings(p["table_rules"])  # bad rules are refused before any call to AWS
        client = module.client("dms", retry_decorator=AWSRetry.jittered_backoff())
        if p["state"] == "present":
            changed, result, diff = ensure_present(module, client)
        else:
            changed, result, diff = ensure_absent(module, client)
    except ProvisionError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"DMS replication task {p['identifier']} could not be {p['state']}")
    if diff and module._diff:
        result["diff"] = diff
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
