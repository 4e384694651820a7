# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: instance_settings_info
short_description: The instance profile association, metadata options and phase 3 record of one EC2 instance
version_added: 0.2.0
description:
  - Reads one instance - whether it exists and its state, the instance profile associated with it, its
    metadata options - and the record phase 3 leaves on it as tags (prefix O(record_tag_prefix)), with
    the settings that record says to put back, or what is wrong with it.
  - Reads only; the settings are in the form M(jram.dumphost.instance_settings) takes and returns.
author:
  - JRAM infrastructure team (@jram)
options:
  instance_id:
    description: The instance.
    type: str
    required: true
  record_tag_prefix:
    description: Key prefix of the tags the phase 3 record is made of.
    type: str
    default: "jram-dumphost:phase3:"
seealso:
  - module: jram.dumphost.instance_settings
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the dump host's instance and its phase 3 record
  jram.dumphost.instance_settings_info:
    instance_id: i-0123456789abcdef0
  register: instance

- name: Refuse unless phase 3 is in place
  ansible.builtin.assert:
    that:
      - instance.record | length > 0
      - instance.settings.http_tokens == 'required'
"""

RETURN = r"""
exists:
  description: Whether the instance exists and is not terminated (or on its way there).
  returned: always
  type: bool
  sample: true
state:
  description: The instance's state name, null when it does not exist.
  returned: always
  type: str
  sample: running
settings:
  description:
    - C(profile) (the associated instance profile's ARN, or C(none)), C(http_tokens), C(hop_limit) and
      C(http_endpoint) (when EC2 reports it); empty when the instance does not exist.
  returned: always
  type: dict
  sample: {profile: none, http_tokens: optional, hop_limit: 2, http_endpoint: enabled}
record:
  description: The phase 3 record - the tags under O(record_tag_prefix), keyed without it; empty when there is none.
  returned: always
  type: dict
  sample:
    previous-profile: none
    previous-http-tokens: optional
    previous-hop-limit: "2"
    previous-http-endpoint: enabled
    attached-at: "2026-11-30T05:12:09Z"
    attach-mode: live
recorded:
  description: The settings the record says to put back (in the form of RV(settings)); null without a valid record.
  returned: always
  type: dict
  sample: {profile: none, http_tokens: optional, hop_limit: 2, http_endpoint: enabled}
record_tags:
  description: The tags the record is made of, with their full keys (what removing the record removes).
  returned: always
  type: dict
  sample: {"jram-dumphost:phase3:previous-profile": none, "jram-dumphost:phase3:attach-mode": live}
instance_id:
  description: O(instance_id), for a caller that registers this result under one name.
  returned: always
  type: str
  sample: i-0123456789abcdef0
record_problem:
  description: What is wrong with a damaged record; null when there is none or it is valid.
  returned: always
  type: str
  sample: null
"""

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import instance_settings as ins


def read(ec2, instance_id: str, prefix: str) -> dict:
    instance = ins.describe(ec2, instance_id)
    if instance is None or instance["State"]["Name"] in ("terminated", "shutting-down"):
        return {"instance_id": instance_id, "exists": False, "state": instance["State"]["Name"] if instance else None,
                "settings": {}, "record": {}, "record_tags": {}, "recorded": None, "record_problem": None}
    record = ins.record(ins.tags(instance), prefix)
    recorded, problem = ins.recorded(record)
    return {"instance_id": instance_id, "exists": True, "state": instance["State"]["Name"],
            "settings": ins.settings(instance, ins.association(ec2, instance_id)),
            "record": record, "record_tags": {prefix + k: v for k, v in record.items()}, "recorded": recorded,
            "record_problem": problem}


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_id=dict(type="str", required=True),
            record_tag_prefix=dict(type="str", default="jram-dumphost:phase3:"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not ins.INSTANCE_ID.match(p["instance_id"]):
        module.fail_json(msg="instance_id must be an instance id such as i-0123456789abcdef0 "
                             f"(got {p['instance_id']!r})")
    if not ins.TAG_PREFIX.match(p["record_tag_prefix"]):
        module.fail_json(msg="record_tag_prefix must be a tag key prefix (letters, digits, . : / = + @ - _), not "
                             f"starting with aws: (got {p['record_tag_prefix']!r})")
    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        result = read(ec2, p["instance_id"], p["record_tag_prefix"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"cannot read instance {p['instance_id']}: grant ec2:DescribeInstances and "
                                      "ec2:DescribeIamInstanceProfileAssociations")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
