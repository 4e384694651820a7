# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_secret_rotation_info
short_description: The rotation stages of database secrets, without their values
version_added: 0.2.0
description:
  - For each secret, whether it exists, the version id of its AWSCURRENT, AWSPENDING and AWSPREVIOUS
    stages, whether a rotation is in flight, and whether its versions show that its value was changed
    after it was created (C(rotated)). Phase 1 uses this to leave a rotated value alone.
  - Reads only C(DescribeSecret); never a value.
author:
  - JRAM infrastructure team (@jram)
options:
  secret_ids:
    description: Names or ARNs of the secrets.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the stages of the jobs' secret
  jram.dumphost.db_secret_rotation_info:
    secret_ids: [jram/dumphost/basis-reader]
  register: stages
"""

RETURN = r"""
secrets:
  description: Per secret id - C(exists), C(stages) (stage to version id), C(pending) (the version a rotation in flight
    created, else null), C(rotated), C(versions) (how many).
  returned: always
  type: dict
  sample:
    jram/dumphost/basis-reader:
      exists: true
      stages: {AWSCURRENT: 5f1c0d9e-aaaa-bbbb-cccc-000000000002, AWSPENDING: null, AWSPREVIOUS: 5f1c0d9e-aaaa-bbbb-cccc-000000000001}
      pending: null
      rotated: true
      versions: 2
"""

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import secret_rotation as rot


def main():
    module = AnsibleAWSModule(argument_spec=dict(secret_ids=dict(type="list", elements="str", no_log=False, required=True)),
                              supports_check_mode=True)
    client = module.client("secretsmanager", retry_decorator=AWSRetry.jittered_backoff())
    out = {}
    for secret_id in module.params["secret_ids"]:
        try:
            stages = client.describe_secret(SecretId=secret_id, aws_retry=True).get("VersionIdsToStages", {})
        except is_boto3_error_code("ResourceNotFoundException"):
            out[secret_id] = {"exists": False, "stages": rot.labels({}), "pending": None, "rotated": False,
                              "versions": 0}
            continue
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            module.fail_json_aws(e, msg=f"cannot describe secret '{secret_id}'; grant secretsmanager:DescribeSecret")
        out[secret_id] = {"exists": True, "stages": rot.labels(stages), "pending": rot.pending_version(stages),
                          "rotated": rot.rotated(stages), "versions": len(stages)}
    module.exit_json(changed=False, secrets=out)


if __name__ == "__main__":
    main()
