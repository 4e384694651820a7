# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the DMS provisioning modules share on the AWS side: one resource described by its
identifier, its tags read and converged, the present/absent convergence with check and diff
mode, and the resources that carry the collection's tags. The comparison itself is pure
(module_utils/dms_provision.py)."""

from __future__ import annotations

import time

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.jram.dumphost.plugins.module_utils.dms_provision import carries, setting_changes, tag_changes

# kind: (describe call, filter name, result list, ARN key, identifier key)
KINDS = {
    "endpoint": ("describe_endpoints", "endpoint-id", "Endpoints", "EndpointArn", "EndpointIdentifier"),
    "replication instance": ("describe_replication_instances", "replication-instance-id", "ReplicationInstances",
                             "ReplicationInstanceArn", "ReplicationInstanceIdentifier"),
    "replication task": ("describe_replication_tasks", "replication-task-id", "ReplicationTasks",
                         "ReplicationTaskArn", "ReplicationTaskIdentifier"),
}


def describe_one(client, kind, identifier):
    """The resource of ``kind`` named ``identifier`` as DMS describes it, None when absent."""
    call, filter_name, key, _arn, id_key = KINDS[kind]
    try:
        found = getattr(client, call)(aws_retry=True, Filters=[{"Name": filter_name, "Values": [identifier]}])[key]
    except is_boto3_error_code("ResourceNotFoundFault"):
        return None
    found = [r for r in found if str(r.get(id_key, "")).lower() == identifier.lower()]
    return found[0] if found else None


def read_tags(client, arn):
    answer = client.list_tags_for_resource(aws_retry=True, ResourceArn=arn)
    return {t["Key"]: t.get("Value", "") for t in answer.get("TagList", [])}


def aws_tags(tags):
    return [{"Key": str(k), "Value": str(v)} for k, v in sorted((tags or {}).items())]


def converge_tags(client, arn, current, desired, purge, check_mode):
    """Whether the tags change; sets and removes them unless in check mode."""
    to_set, to_remove = tag_changes(current, desired, purge)
    if not check_mode:
        if to_remove:
            client.remove_tags_from_resource(aws_retry=True, ResourceArn=arn, TagKeys=to_remove)
        if to_set:
            client.add_tags_to_resource(aws_retry=True, ResourceArn=arn, Tags=aws_tags(to_set))
    return bool(to_set or to_remove)


def ensure_present(client, kind, identifier, desired, create, modify, comparable, tags, purge_tags, check_mode):
    """(changed, resource, diff) for one DMS resource: created from ``desired`` when absent,
    modified with the settings that differ (``modify(arn, {name: value})``), its tags converged.
    ``comparable(resource)`` gives the current settings in the shape of ``desired``."""
    current = describe_one(client, kind, identifier)
    after = {k: v for k, v in desired.items() if v is not None}
    header = f"DMS {kind} {identifier}"
    if current is None:
        resource = dict(after)
        if not check_mode:
            resource = create(after, aws_tags(tags))
        diff = {"before": {}, "after": dict(after, tags=dict(tags or {})), "before_header": header,
                "after_header": header}
        return True, resource, diff
    arn = current[KINDS[kind][3]]
    before = comparable(current)
    changes = setting_changes(before, after)
    current_tags = read_tags(client, arn)
    tags_changed = converge_tags(client, arn, current_tags, tags, purge_tags, check_mode)
    if changes and not check_mode:
        current = modify(arn, {name: want for name, (_have, want) in changes.items()}) or current
    changed = bool(changes) or tags_changed
    diff = None
    if changed:
        new_tags = dict(current_tags, **{str(k): str(v) for k, v in (tags or {}).items()})
        if purge_tags:
            new_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        diff = {"before": dict({k: before.get(k) for k in after}, tags=current_tags),
                "after": dict(after, tags=new_tags), "before_header": header, "after_header": header}
    return changed, current, diff


def ensure_absent(client, kind, identifier, delete, comparable, check_mode):
    """(changed, diff) for one DMS resource that must not exist."""
    current = describe_one(client, kind, identifier)
    if current is None:
        return False, None
    if not check_mode:
        try:
            delete(current)
        except is_boto3_error_code("ResourceNotFoundFault"):
            pass  # deleted since it was described
    header = f"DMS {kind} {identifier}"
    return True, {"before": comparable(current), "after": {}, "before_header": header, "after_header": header}


def wait_until(client, kind, identifier, done, timeout, delay=15):
    """Describe the resource until ``done(resource or None)``, first after 2 s, then at most every
    ``delay`` s; False when ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    pause = 2
    while True:
        resource = describe_one(client, kind, identifier)
        if done(resource):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(pause, delay))
        pause *= 2


def tagged_resources(client, owner_tags):
    """Every DMS endpoint, replication instance and task whose tags include ``owner_tags``:
    ``{kind: [{identifier, arn, status}]}`` (tasks first in teardown order)."""
    found = {"replication task": [], "endpoint": [], "replication instance": []}
    for kind in found:
        call, _filter, key, arn_key, id_key = KINDS[kind]
        resources = [r for page in client.get_paginator(call).paginate() for r in page[key]]
        for resource in resources:
            if carries(read_tags(client, resource[arn_key]), owner_tags):
                status = (resource.get("Status") or resource.get("ReplicationInstanceStatus") or "")
                found[kind].append({"identifier": resource[id_key], "arn": resource[arn_key], "status": status})
    return found


def subnet_group(client, identifier):
    """The replication subnet group named ``identifier`` (snake_case keys), None when absent."""
    try:
        groups = client.describe_replication_subnet_groups(aws_retry=True, Filters=[
            {"Name": "replication-subnet-group-id", "Values": [identifier]}])["ReplicationSubnetGroups"]
    except is_boto3_error_code("ResourceNotFoundFault"):
        return None
    groups = [g for g in groups if g.get("ReplicationSubnetGroupIdentifier", "").lower() == identifier.lower()]
    return snake(groups[0]) if groups else None


def snake(resource):
    return camel_dict_to_snake_dict(resource or {})
