# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_key_owner_info
short_description: Which IAM user owns each access key id, and the key's status
version_added: 0.3.0
description:
  - For each of O(key_ids), C(iam:GetAccessKeyLastUsed) names the IAM user owning the key and
    C(iam:ListAccessKeys) of that user gives its status. Read-only.
  - A key IAM names no owner of (deleted already, another account, or the caller may not call
    C(iam:GetAccessKeyLastUsed)) has C(user) null and C(status) V(absent), unless O(known_users) names its owner.
author:
  - JRAM infrastructure team (@jram)
options:
  key_ids:
    description: The access key ids.
    type: list
    elements: str
    required: true
  known_users:
    description: The owner of a key when it is known (access key id to IAM user name); skips the lookup.
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.static_key_files
"""

EXAMPLES = r"""
- name: Find the IAM user owning each key found on the host
  jram.dumphost.static_key_owner_info:
    key_ids: [AKIA0000EXAMPLEKEY]
  register: owners
"""

RETURN = r"""
owners:
  description: Per access key id, C(user) (the IAM user, or null) and C(status) (V(Active), V(Inactive) or V(absent)).
  returned: always
  type: dict
  sample: {AKIA0000EXAMPLEKEY: {user: legacy-dump, status: Active}}
"""

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def owner_of(iam, key_id: str, known: str | None) -> dict:
    """{user, status} of one access key."""
    user = known
    if not user:
        try:
            user = iam.get_access_key_last_used(aws_retry=True, AccessKeyId=key_id).get("UserName")
        except is_boto3_error_code(["NoSuchEntity", "AccessDenied"]):
            user = None
    status = "absent"
    if user:
        try:
            pages = iam.get_paginator("list_access_keys").paginate(UserName=user)
            for meta in pages.build_full_result()["AccessKeyMetadata"]:
                if meta["AccessKeyId"] == key_id:
                    status = meta["Status"]
        except is_boto3_error_code("NoSuchEntity"):
            pass
    return {"user": user, "status": status}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            key_ids=dict(type="list", elements="str", required=True, no_log=False),
            known_users=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    iam = module.client("iam", retry_decorator=AWSRetry.jittered_backoff())
    known = module.params["known_users"]
    owners = {}
    try:
        for key_id in module.params["key_ids"]:
            owners[key_id] = owner_of(iam, key_id, known.get(key_id))
    except (ClientError, BotoCoreError) as exc:  # pylint: disable=duplicate-except
        module.fail_json_aws(exc, msg="reading the access keys from IAM failed")
    module.exit_json(changed=False, owners=owners)


if __name__ == "__main__":
    main()
