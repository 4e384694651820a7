# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_keys_escrow_info
short_description: Read a key-retirement escrow from Secrets Manager for the rollback
version_added: 0.3.0
description:
  - Reads the escrow key retirement made of a user's key files (O(secret_id), a JSON document with C(user),
    C(key_ids) and C(files)), checks that it holds the key files of O(user) with O(key_ids) as the ledger records,
    and returns the files.
  - B(Returns the key material) (RV(files[].content_base64)) - run the task with C(no_log=true).
  - Read-only.
author:
  - JRAM infrastructure team (@jram)
options:
  secret_id:
    description: The escrow's name or ARN.
    type: str
    required: true
  user:
    description: The OS user the escrow must belong to.
    type: str
    required: true
  key_ids:
    description: The access key ids the escrow must hold.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.static_keys_ledger_info
"""

EXAMPLES = r"""
- name: Read the escrow of ec2-user
  jram.dumphost.static_keys_escrow_info:
    secret_id: jram-dumphost/escrow/ec2-user/AKIA0000EXAMPLEKEY
    user: ec2-user
    key_ids: [AKIA0000EXAMPLEKEY]
  register: escrow
  no_log: true
"""

RETURN = r"""
files:
  description:
    - The escrowed files - C(path), C(owner), C(group), C(mode), C(dir_owner), C(dir_group), C(dir_mode) and
      C(content_base64) (the key material).
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The key file.
      type: str
    owner:
      description: Its owner.
      type: str
    group:
      description: Its group.
      type: str
    mode:
      description: Its mode.
      type: str
    dir_owner:
      description: The owner of its directory.
      type: str
    dir_group:
      description: The group of its directory.
      type: str
    dir_mode:
      description: The mode of its directory.
      type: str
    content_base64:
      description: The key material, base64-encoded.
      type: str
  sample:
    - path: /home/ec2-user/.aws/credentials
      owner: ec2-user
      group: ec2-user
      mode: "0600"
      dir_owner: ec2-user
      dir_group: ec2-user
      dir_mode: "0700"
      content_base64: "..."
"""

import json

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

FIELDS = ("path", "owner", "group", "mode", "dir_owner", "dir_group", "dir_mode", "content_base64")


def check(doc, secret_id: str, user: str, key_ids: list) -> list:
    """The escrow's files; ValueError with the one-line refusal when it is not the user's."""
    if (not isinstance(doc, dict) or doc.get("user") != user or doc.get("key_ids") != key_ids
            or not isinstance(doc.get("files"), list) or not doc["files"]
            or any(not isinstance(f, dict) or any(name not in f for name in FIELDS) for f in doc["files"])):
        raise ValueError(f"the escrow {secret_id} does not hold the key files of {user} with key(s) "
                         f"{', '.join(key_ids)} as the ledger records: restore by hand; nothing was changed for {user}")
    return [{name: f[name] for name in FIELDS} for f in doc["files"]]


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            secret_id=dict(type="str", required=True),
            user=dict(type="str", required=True),
            key_ids=dict(type="list", elements="str", required=True, no_log=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    client = module.client("secretsmanager", retry_decorator=AWSRetry.jittered_backoff())
    try:
        value = client.get_secret_value(aws_retry=True, SecretId=p["secret_id"])["SecretString"]
    except is_boto3_error_code("ResourceNotFoundException"):
        module.fail_json(msg=f"the escrow {p['secret_id']} does not exist (deleted?): the key files of {p['user']} "
                             "cannot be restored from it; restore by hand")
    except (ClientError, BotoCoreError) as exc:  # pylint: disable=duplicate-except
        module.fail_json_aws(exc, msg=f"reading the escrow {p['secret_id']} failed")
    try:
        files = check(json.loads(value), p["secret_id"], p["user"], p["key_ids"])
    except ValueError as exc:
        module.fail_json(msg=str(exc).splitlines()[0])
    module.exit_json(changed=False, files=files)


if __name__ == "__main__":
    main()
