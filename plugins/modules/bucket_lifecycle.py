# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bucket_lifecycle
short_description: The versioning and the lifecycle rules phase 1 owns on one S3 bucket
version_added: 0.2.0
description:
  - Converges the lifecycle rules whose ID starts with O(rule_prefix) followed by C(-) on one bucket
    and leaves every other rule as it is.
  - The rules are computed from the jobs' key prefixes. The rule for O(expire_prefix) (the parallel
    run's objects) expires them after O(expire_days) days. Incomplete multipart uploads are aborted
    after O(abort_multipart_days) days under it and under every other top-level directory the jobs
    write to (the whole bucket when a key has no directory).
  - With O(versioning=true) versioning is turned on. Versioning is never suspended; V(false) leaves
    it as it is. On a bucket that is versioned, or will be after this run, every rule also expires
    the noncurrent versions under its prefix after O(noncurrent_expiration_days) days.
  - O(state=absent) removes the rules phase 1 owns and nothing else; versioning stays.
  - Check mode reads the bucket and reports what would change; diff mode shows the owned rules
    before and after.
author:
  - JRAM infrastructure team (@jram)
options:
  bucket:
    description: The bucket.
    type: str
    required: true
  state:
    description: V(present) puts the wanted rules, V(absent) removes the owned ones.
    type: str
    choices: [present, absent]
    default: present
  rule_prefix:
    description: The owned rules' IDs start with this prefix and C(-).
    type: str
    required: true
  expire_prefix:
    description: The key prefix whose objects expire (ends in C(/)). Required with O(state=present).
    type: str
  expire_days:
    description: Days after which objects under O(expire_prefix) expire.
    type: int
    default: 14
  abort_multipart_days:
    description: Days after which incomplete multipart uploads are aborted.
    type: int
    default: 1
  write_prefixes:
    description: The fixed parts of the keys the jobs write to on this bucket.
    type: list
    elements: str
    default: []
  versioning:
    description: Turn versioning on (V(false) leaves it as it is).
    type: bool
    default: false
  noncurrent_expiration_days:
    description: Days after which noncurrent versions expire, on a versioned bucket.
    type: int
    default: 30
seealso:
  - module: community.aws.s3_lifecycle
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
"""

EXAMPLES = r"""
- name: Expire the parallel run's objects and abort stale uploads on the dump bucket
  jram.dumphost.bucket_lifecycle:
    bucket: vendor-dumps
    rule_prefix: jram-dumphost
    expire_prefix: dumps-test/
    expire_days: 14
    write_prefixes: [dumps/basis/, dumps-test/basis/]
    versioning: true
"""

RETURN = r"""
versioning:
  description: The bucket's versioning after the run (C(Enabled), C(Suspended) or empty when never enabled).
  returned: always
  type: str
  sample: Enabled
rules:
  description: The owned rules after the run, as S3 returns them.
  returned: always
  type: list
  elements: dict
  sample:
    - ID: jram-dumphost-expire-dumps-test
      Filter: {Prefix: dumps-test/}
      Status: Enabled
      Expiration: {Days: 14}
      AbortIncompleteMultipartUpload: {DaysAfterInitiation: 1}
put:
  description: IDs of the rules put (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [jram-dumphost-abort-mpu-dumps]
removed:
  description: IDs of the owned rules removed (or that would be).
  returned: always
  type: list
  elements: str
  sample: []
"""

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils.bucket_lifecycle import owned, plan, wanted_rules


def read_rules(s3, bucket):
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket, aws_retry=True).get("Rules", [])
    except is_boto3_error_code("NoSuchLifecycleConfiguration"):
        return []


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            rule_prefix=dict(type="str", required=True),
            expire_prefix=dict(type="str"),
            expire_days=dict(type="int", default=14),
            abort_multipart_days=dict(type="int", default=1),
            write_prefixes=dict(type="list", elements="str", default=[]),
            versioning=dict(type="bool", default=False),
            noncurrent_expiration_days=dict(type="int", default=30),
        ),
        required_if=[("state", "present", ["expire_prefix"])],
        supports_check_mode=True,
    )
    p = module.params
    present = p["state"] == "present"
    if present and not (p["expire_prefix"].endswith("/") and p["expire_days"] >= 1
                        and p["abort_multipart_days"] >= 1 and p["noncurrent_expiration_days"] >= 1):
        module.fail_json(msg=f"expire_prefix must end in '/' (got '{p['expire_prefix']}') and the day counts "
                             "must be at least 1; fix the role's aws_identity_lifecycle_* settings")
    s3 = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    bucket = p["bucket"]
    changed = False
    try:
        status = before_status = s3.get_bucket_versioning(Bucket=bucket, aws_retry=True).get("Status", "")
        if present and p["versioning"] and status != "Enabled":
            changed = True
            if not module.check_mode:
                s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"},
                                         aws_retry=True)
            status = "Enabled"
        current = read_rules(s3, bucket)
        wanted = []
        if present:
            versioned = status in ("Enabled", "Suspended")
            wanted = wanted_rules(p["rule_prefix"], p["expire_prefix"], p["expire_days"], p["abort_multipart_days"],
                                  p["write_prefixes"], p["noncurrent_expiration_days"] if versioned else None)
        change = plan(current, wanted, p["rule_prefix"])
        if change["put"] or change["remove"]:
            changed = True
            if not module.check_mode:
                if change["rules"]:
                    s3.put_bucket_lifecycle_configuration(
                        Bucket=bucket, LifecycleConfiguration={"Rules": change["rules"]}, aws_retry=True)
                else:
                    s3.delete_bucket_lifecycle(Bucket=bucket, aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to converge the versioning and lifecycle rules of bucket {bucket}")
    result = {"versioning": status, "put": change["put"], "removed": change["remove"],
              "rules": [r for r in change["rules"] if owned(r, p["rule_prefix"])]}
    if module._diff:
        result["diff"] = {"before": {"versioning": before_status, "rules": change["before"]},
                          "after": {"versioning": status, "rules": change["after"]},
                          "before_header": f"s3://{bucket} lifecycle", "after_header": f"s3://{bucket} lifecycle"}
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
