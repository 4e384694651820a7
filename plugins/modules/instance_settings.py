# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: instance_settings
short_description: The instance profile association and metadata options of one EC2 instance
version_added: 0.2.0
description:
  - Sets what phase 3 changes on the dump host's instance - its instance profile association
    (associate, replace or remove) and its metadata options (C(http_tokens), the hop limit, the
    endpoint) - and returns the values found before, which phase 3 records for its rollback.
  - Changes only what differs, then waits until EC2 reports the association C(associated) (or gone)
    and the metadata options C(applied). Both change live, on a running or a stopped instance.
  - Written because M(amazon.aws.ec2_instance) associates and replaces a profile even in check mode,
    cannot remove an association, and sends metadata options it does not change taken from
    C(DescribeInstances), failing when one is missing there.
author:
  - JRAM infrastructure team (@jram)
options:
  instance_id:
    description: The instance.
    type: str
    required: true
  instance_profile:
    description:
      - The instance profile to associate, by name or ARN; it must exist.
      - C(none) removes any association (the value the module returns for an instance without one,
        so that C(previous.profile) can be given back as it is).
      - Omitted leaves the association alone.
    type: str
  replace:
    description:
      - Replace an association with a different profile. Without it, a different association is refused
        before any change.
    type: bool
    default: false
  http_tokens:
    description: Metadata option C(HttpTokens); C(required) allows IMDSv2 only. Omitted leaves it alone.
    type: str
    choices: [required, optional]
  hop_limit:
    description: Metadata option C(HttpPutResponseHopLimit), 1 to 64. Omitted leaves it alone.
    type: int
    aliases: [http_put_response_hop_limit]
  http_endpoint:
    description: Metadata option C(HttpEndpoint). Omitted leaves it alone.
    type: str
    choices: [enabled, disabled]
  wait_timeout:
    description: Seconds to wait for a change to settle.
    type: int
    default: 600
notes:
  - Runs where the AWS credentials are (the controller, C(delegate_to=localhost)).
  - In check mode, reads and returns what would change, changes nothing.
seealso:
  - module: jram.dumphost.instance_settings_info
  - module: amazon.aws.ec2_instance
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
"""

EXAMPLES = r"""
- name: Associate the dump host's instance profile, replacing another one
  jram.dumphost.instance_settings:
    instance_id: i-0123456789abcdef0
    instance_profile: jram-dumphost
    replace: true
  register: attached

- name: Require IMDSv2, keep the token on the instance
  jram.dumphost.instance_settings:
    instance_id: i-0123456789abcdef0
    http_tokens: required
    hop_limit: 1

- name: Put back what was there before
  jram.dumphost.instance_settings:
    instance_id: i-0123456789abcdef0
    instance_profile: "{{ attached.previous.profile }}"
    replace: true
    http_tokens: "{{ attached.previous.http_tokens }}"
    hop_limit: "{{ attached.previous.hop_limit }}"
"""

RETURN = r"""
previous:
  description:
    - The settings found before this run - C(profile) (the associated instance profile's ARN, or C(none)),
      C(http_tokens), C(hop_limit) and C(http_endpoint) (when EC2 reports it).
    - What a rollback gives back to this module.
  returned: always
  type: dict
  sample: {profile: none, http_tokens: optional, hop_limit: 2, http_endpoint: enabled}
current:
  description: The settings after this run (in check mode, what they would be), in the form of RV(previous).
  returned: always
  type: dict
  sample:
    profile: arn:aws:iam::123456789012:instance-profile/jram-dumphost
    http_tokens: required
    hop_limit: 1
    http_endpoint: enabled
actions:
  description: What was changed (in check mode, what would be), one phrase per change.
  returned: always
  type: list
  elements: str
  sample:
    - associated instance profile arn:aws:iam::123456789012:instance-profile/jram-dumphost
    - metadata options http_tokens optional -> required, hop_limit 2 -> 1
msg:
  description: One line saying what was (or would be) changed on which instance.
  returned: always
  type: str
  sample: >-
    instance i-0123456789abcdef0: associated instance profile
    arn:aws:iam::123456789012:instance-profile/jram-dumphost
"""

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import instance_settings as ins


def profile_arn(iam, name_or_arn: str) -> str:
    """The ARN of an existing instance profile given by name or ARN."""
    name = name_or_arn.rsplit("/", 1)[-1]
    try:
        return iam.get_instance_profile(InstanceProfileName=name, aws_retry=True)["InstanceProfile"]["Arn"]
    except is_boto3_error_code("NoSuchEntity"):
        raise ins.SettingsError(f"instance profile {name_or_arn} does not exist: create it first (phase 1, "
                                "playbooks/phase1_infra.yml) or fix instance_profile") from None


def ensure_association(module, ec2, iam, found: dict | None) -> str:
    """Associate, replace or remove as asked (skipping the write in check mode); the profile ARN
    afterwards, or 'none'."""
    p, instance_id = module.params, module.params["instance_id"]
    was = found["arn"] if found else ins.NO_PROFILE
    if p["instance_profile"] is None:
        return was
    if p["instance_profile"] == ins.NO_PROFILE:
        if found and not module.check_mode:
            ec2.disassociate_iam_instance_profile(AssociationId=found["association_id"], aws_retry=True)
            settle(module, ec2, None)
        return ins.NO_PROFILE
    arn = profile_arn(iam, p["instance_profile"])
    if was == arn:
        return arn
    if found and not p["replace"]:
        raise ins.SettingsError(f"instance {instance_id} has instance profile {was} associated, not {arn}: set "
                                "replace=true to replace it")
    if not module.check_mode:
        if found:
            ec2.replace_iam_instance_profile_association(IamInstanceProfile={"Arn": arn},
                                                         AssociationId=found["association_id"], aws_retry=True)
        else:
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=instance_id,
                                               aws_retry=True)
        settle(module, ec2, arn)
    return arn


def settle(module, ec2, wanted: str | None) -> None:
    """Wait until the association is `wanted` and associated (None: until there is none)."""
    instance_id = module.params["instance_id"]
    ins.wait_for(lambda: ins.association(ec2, instance_id),
                 lambda now: (now is None) if wanted is None else (now and now["arn"] == wanted
                                                                   and now["state"] == "associated"),
                 module.params["wait_timeout"], f"instance {instance_id}: the profile association")


def ensure_options(module, ec2, current: dict) -> dict:
    """Set the metadata options asked for when one differs (skipping the write in check mode); the
    options afterwards."""
    p, instance_id = module.params, module.params["instance_id"]
    wanted = {k: p[k] for k in ins.OPTION_KEYS}
    if not ins.option_changes(current, wanted):
        return current
    if not module.check_mode:
        ec2.modify_instance_metadata_options(InstanceId=instance_id, aws_retry=True,
                                             **ins.option_request(current, wanted))
        ins.wait_for(lambda: ins.describe(ec2, instance_id),
                     lambda now: (now.get("MetadataOptions") or {}).get("State", "applied") == "applied",
                     p["wait_timeout"], f"instance {instance_id}: the metadata options")
    return {**current, **{k: v for k, v in wanted.items() if v is not None}}


def run(module, ec2, iam) -> dict:
    instance_id = module.params["instance_id"]
    instance = ins.describe(ec2, instance_id)
    if instance is None or instance["State"]["Name"] in ("terminated", "shutting-down"):
        raise ins.SettingsError(f"instance {instance_id} does not exist in this region (or is terminated): check "
                                "instance_id and region")
    found = ins.association(ec2, instance_id)
    previous = ins.settings(instance, found)
    profile = ensure_association(module, ec2, iam, found)
    options = ensure_options(module, ec2, ins.options(instance))
    current = {"profile": profile, **options}
    actions = ins.describe_changes(previous, current)
    what = "; ".join(actions) if actions else "nothing to change"
    prefix = "(check mode) would have " if module.check_mode and actions else ""
    result = {"changed": bool(actions), "previous": previous, "current": current, "actions": actions,
              "msg": f"instance {instance_id}: {prefix}{what}"}
    if module._diff and actions:
        result["diff"] = {"before": previous, "after": current, "before_header": f"instance {instance_id}",
                          "after_header": f"instance {instance_id}"}
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            instance_id=dict(type="str", required=True),
            instance_profile=dict(type="str"),
            replace=dict(type="bool", default=False),
            http_tokens=dict(type="str", choices=["required", "optional"]),
            hop_limit=dict(type="int", aliases=["http_put_response_hop_limit"]),
            http_endpoint=dict(type="str", choices=["enabled", "disabled"]),
            wait_timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not ins.INSTANCE_ID.match(p["instance_id"]):
        module.fail_json(msg="instance_id must be an instance id such as i-0123456789abcdef0 "
                             f"(got {p['instance_id']!r})")
    if p["hop_limit"] is not None and not 1 <= p["hop_limit"] <= 64:
        module.fail_json(msg=f"hop_limit must be a number from 1 to 64 (got {p['hop_limit']})")
    if p["wait_timeout"] < 0:
        module.fail_json(msg=f"wait_timeout must be 0 or more seconds (got {p['wait_timeout']})")
    retry = AWSRetry.jittered_backoff()
    ec2 = module.client("ec2", retry_decorator=retry)
    iam = module.client("iam", retry_decorator=retry)
    try:
        result = run(module, ec2, iam)
    except ins.SettingsError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"instance {p['instance_id']}: AWS refused the request")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
