#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dms_replication_instance
short_description: An AWS DMS replication instance
description:
  - Creates, converges or deletes one DMS replication instance in a replication subnet group, with
    its security groups, and tags it.
  - Settings are compared with what DMS describes; a change is applied with
    C(ModifyReplicationInstance) at once (O(apply_immediately)).
  - No Ansible collection had a module for DMS replication instances.
version_added: 0.1.0
author:
  - JRAM infrastructure team (@jram-infra)
options:
  identifier:
    description: The replication instance identifier.
    type: str
    required: true
  state:
    description: Whether the instance exists.
    type: str
    choices: [present, absent]
    default: present
  instance_class:
    description: The instance class, for example V(dms.t3.medium) or V(dms.r5.large).
    type: str
  allocated_storage:
    description: Storage in GiB (for the task logs and cached changes of a full load).
    type: int
  engine_version:
    description: The DMS engine version; omitted, DMS chooses its default and the module leaves it alone.
    type: str
  subnet_group:
    description: The replication subnet group (its VPC holds the instance).
    type: str
  security_group_ids:
    description: VPC security groups of the instance.
    type: list
    elements: str
  multi_az:
    description: A standby in a second availability zone.
    type: bool
    default: false
  publicly_accessible:
    description: Give the instance a public address (the collection's deployments keep it private).
    type: bool
    default: false
  apply_immediately:
    description: Apply a modification now rather than in the next maintenance window.
    type: bool
    default: true
  wait:
    description: Wait until the instance is C(available) after creating it, or gone after deleting it.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait).
    type: int
    default: 1800
extends_documentation_fragment:
  - jram.dumphost.dms
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The replication instance of the DMS copy of basis
  jram.dumphost.dms_replication_instance:
    identifier: jram-dumphost-dms
    instance_class: dms.t3.medium
    allocated_storage: 50
    subnet_group: jram-dumphost-dms
    security_group_ids: [sg-0123456789abcdef0]
    wait: true
    tags:
      Project: jram-dumphost
      Component: dms
"""

RETURN = r"""
replication_instance:
  description: The instance as DMS describes it (as it would be created, in check mode).
  returned: when state=present
  type: dict
  sample:
    replication_instance_identifier: jram-dumphost-dms
    replication_instance_class: dms.t3.medium
    replication_instance_status: available
arn:
  description: The instance's ARN (empty in check mode before it exists).
  returned: when state=present
  type: str
  sample: arn:aws:dms:ap-northeast-1:123456789012:rep:jram-dumphost-dms
"""

import contextlib

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import dms_provision_aws as dms

KIND = "replication instance"


def desired_instance(params):
    return {"ReplicationInstanceClass": params["instance_class"], "AllocatedStorage": params["allocated_storage"],
            "EngineVersion": params["engine_version"], "ReplicationSubnetGroupIdentifier": params["subnet_group"],
            "VpcSecurityGroupIds": params["security_group_ids"], "MultiAZ": params["multi_az"],
            "PubliclyAccessible": params["publicly_accessible"]}


def comparable(instance):
    group = instance.get("ReplicationSubnetGroup") or {}
    return {"ReplicationInstanceClass": instance.get("ReplicationInstanceClass"),
            "AllocatedStorage": instance.get("AllocatedStorage"), "EngineVersion": instance.get("EngineVersion"),
            "ReplicationSubnetGroupIdentifier": group.get("ReplicationSubnetGroupIdentifier"),
            "VpcSecurityGroupIds": [g.get("VpcSecurityGroupId") for g in instance.get("VpcSecurityGroups") or []],
            "MultiAZ": bool(instance.get("MultiAZ")), "PubliclyAccessible": bool(instance.get("PubliclyAccessible"))}


def main():
    argument_spec = dict(
        identifier=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        instance_class=dict(type="str"),
        allocated_storage=dict(type="int"),
        engine_version=dict(type="str"),
        subnet_group=dict(type="str"),
        security_group_ids=dict(type="list", elements="str"),
        multi_az=dict(type="bool", default=False),
        publicly_accessible=dict(type="bool", default=False),
        apply_immediately=dict(type="bool", default=True),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=1800),
        tags=dict(type="dict", default={}),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("state", "present", ["instance_class", "subnet_group"])])
    p = module.params
    result = {}
    client = module.client("dms", retry_decorator=AWSRetry.jittered_backoff())
    try:
        if p["state"] == "present":
            desired = desired_instance(p)

            def create(settings, tags):
                return client.create_replication_instance(aws_retry=True, ReplicationInstanceIdentifier=p["identifier"],
                                                          Tags=tags, **settings)["ReplicationInstance"]

            def modify(arn, changes):
                return client.modify_replication_instance(aws_retry=True, ReplicationInstanceArn=arn,
                                                          ApplyImmediately=p["apply_immediately"],
                                                          **changes)["ReplicationInstance"]

            current = dms.describe_one(client, KIND, p["identifier"])
            group = comparable(current)["ReplicationSubnetGroupIdentifier"] if current else None
            if group and group != p["subnet_group"]:
                module.fail_json(msg=f"replication instance {p['identifier']} is in subnet group {group}, not "
                                     f"{p['subnet_group']}: DMS cannot move it; delete it (state=absent) first")

            changed, instance, diff = dms.ensure_present(client, KIND, p["identifier"], desired, create, modify,
                                                         comparable, p["tags"], p["purge_tags"], module.check_mode)
            if p["wait"] and not module.check_mode and not dms.wait_until(
                    client, KIND, p["identifier"],
                    lambda r: r is not None and r.get("ReplicationInstanceStatus") == "available", p["wait_timeout"]):
                module.fail_json(msg=f"replication instance {p['identifier']} is not available after "
                                     f"{p['wait_timeout']} s: see its events in the DMS console, then re-run")
            result = {"replication_instance": dms.snake(instance), "arn": instance.get("ReplicationInstanceArn", "")}
        else:
            changed, diff = dms.ensure_absent(
                client, KIND, p["identifier"],
                lambda r: client.delete_replication_instance(aws_retry=True,
                                                             ReplicationInstanceArn=r["ReplicationInstanceArn"]),
                comparable, module.check_mode)
            if changed and p["wait"] and not module.check_mode and not dms.wait_until(
                    client, KIND, p["identifier"], lambda r: r is None, p["wait_timeout"]):
                module.fail_json(msg=f"replication instance {p['identifier']} still exists after {p['wait_timeout']} s")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"DMS replication instance {p['identifier']} could not be {p['state']}")
    if diff and module._diff:
        result["diff"] = diff
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
