# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_secret_rotation
short_description: The Secrets Manager steps of a single-user rotation of a database secret
version_added: 0.2.0
description:
  - The controller's half of AWS's single-user rotation without a Lambda (docs/rotation.md). The
    database half runs on the dump host (M(jram.dumphost.db_password)).
  - V(create) - a new password from C(GetRandomPassword), with the vendor's policy in O(password_length) and
    O(exclude_characters), stored with the rest of the AWSCURRENT JSON as the AWSPENDING version
    (C(PutSecretValue)). Nothing to do while an AWSPENDING version other than the current one exists;
    a stopped rotation resumes with it.
  - V(finish) - AWSCURRENT moves to the AWSPENDING version (AWSPREVIOUS follows the old one) and
    AWSPENDING is removed. Nothing to do when no rotation is in flight.
  - V(unfinish) and V(discard) - the two halves of a rollback around the database's revert. V(unfinish)
    puts AWSCURRENT back on O(rotation)'s old version and AWSPENDING on its new one; V(discard) removes
    AWSPENDING and puts AWSPREVIOUS back where the rotation found it.
  - No password is ever returned; the module reads the secret's value only to build the new one.
author:
  - JRAM infrastructure team (@jram)
options:
  secret_id:
    description: Name or ARN of the secret (the RDS secret JSON dumpjob reads).
    type: str
    required: true
  step:
    description: The step to run.
    type: str
    required: true
    choices: [create, finish, unfinish, discard]
  password_length:
    description: Length of the new password (8 to 4096).
    type: int
    default: 32
  exclude_characters:
    description:
      - Characters the new password must not hold. The default leaves out what breaks MySQL option files,
        shells and URLs when an operator copies a password by hand.
    type: str
    default: "\"'\\/@`$;#%&"
  exclude_punctuation:
    description: Letters and digits only (for a vendor that accepts no punctuation).
    type: bool
    default: false
  rotation:
    description:
      - For V(unfinish) and V(discard), the rotation to undo as the ledger recorded it (C(old_version),
        C(new_version), C(previous_version)), from M(jram.dumphost.rotation_ledger_info).
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
notes:
  - IAM on the secret - C(secretsmanager:DescribeSecret), C(GetSecretValue), C(PutSecretValue),
    C(UpdateSecretVersionStage); C(secretsmanager:GetRandomPassword) on C(*); C(kms:GenerateDataKey) and
    C(kms:Decrypt) on a customer-managed key of the secret.
seealso:
  - module: jram.dumphost.db_secret_rotation_info
  - module: jram.dumphost.db_password
"""

EXAMPLES = r"""
- name: Create the new password as AWSPENDING
  jram.dumphost.db_secret_rotation:
    secret_id: jram/dumphost/basis-reader
    step: create
    password_length: 32
    exclude_characters: "\"'\\/@`$;#%&"
  register: created

- name: Move AWSCURRENT to the new version
  jram.dumphost.db_secret_rotation:
    secret_id: jram/dumphost/basis-reader
    step: finish
"""

RETURN = r"""
moves:
  description: The stage moves made (or, in check mode, to make), in order; C(move_to) null removes the stage.
  returned: always
  type: list
  elements: dict
  sample: [{stage: AWSCURRENT, move_to: 5f1c0d9e-aaaa-bbbb-cccc-000000000002, remove_from: 5f1c0d9e-aaaa-bbbb-cccc-000000000001}]
stages:
  description: The version id of each stage afterwards (in check mode, as it would be; a new version is C(pending-new-version)).
  returned: always
  type: dict
  sample: {AWSCURRENT: 5f1c0d9e-aaaa-bbbb-cccc-000000000002, AWSPENDING: null, AWSPREVIOUS: 5f1c0d9e-aaaa-bbbb-cccc-000000000001}
before:
  description: The version id of each stage before the step.
  returned: always
  type: dict
  sample: {AWSCURRENT: 5f1c0d9e-aaaa-bbbb-cccc-000000000001, AWSPENDING: null, AWSPREVIOUS: null}
msg:
  description: What the step did or would do, in one line.
  returned: always
  type: str
  sample: "created AWSPENDING version 5f1c0d9e-aaaa-bbbb-cccc-000000000002 (32 characters)"
"""

import json
import uuid

try:  # noqa: SIM105 (the import amazon.aws modules guard; AnsibleAWSModule reports a missing botocore)
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import secret_rotation as rot

NEW = "pending-new-version"


def describe(client, module, secret_id):
    try:
        return client.describe_secret(SecretId=secret_id, aws_retry=True)
    except is_boto3_error_code("ResourceNotFoundException"):
        module.fail_json(msg=f"secret '{secret_id}' does not exist; create it with phase 1 "
                             "(playbooks/phase1_infra.yml) or fix the jobs' secret_id")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"cannot describe secret '{secret_id}'")


def create(client, module, secret_id, version_stages):
    if rot.pending_version(version_stages):
        return [], version_stages, f"AWSPENDING version {rot.pending_version(version_stages)} exists; resuming with it"
    p = module.params
    try:
        args = rot.random_password_args(p["password_length"], p["exclude_characters"], p["exclude_punctuation"])
    except rot.RotationError as exc:
        module.fail_json(msg=str(exc))
    try:
        current = client.get_secret_value(SecretId=secret_id, VersionStage=rot.CURRENT, aws_retry=True)
        doc = json.loads(current.get("SecretString") or "")
    except ValueError:
        module.fail_json(msg=f"secret '{secret_id}' is not the RDS secret JSON; fix its value before rotating")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"cannot read secret '{secret_id}'; grant secretsmanager:GetSecretValue")
    if not isinstance(doc, dict) or not doc.get("password") or not doc.get("username"):
        module.fail_json(msg=f"secret '{secret_id}' has no username or password key; fix its value before rotating")
    moves = [{"stage": rot.PENDING, "move_to": NEW, "remove_from": None}]
    if module.check_mode:
        return moves, rot.apply_moves(version_stages, moves), "would create a new AWSPENDING version"
    token = str(uuid.uuid4())
    try:
        password = client.get_random_password(aws_retry=True, **args)["RandomPassword"]
        module.no_log_values.add(password)
        doc["password"] = password
        client.put_secret_value(SecretId=secret_id, ClientRequestToken=token, SecretString=json.dumps(doc),
                                VersionStages=[rot.PENDING], aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"cannot create the new password of '{secret_id}'; grant "
                                    "secretsmanager:GetRandomPassword and PutSecretValue")
    moves[0]["move_to"] = token
    return moves, rot.apply_moves(version_stages, moves), \
        f"created AWSPENDING version {token} ({p['password_length']} characters)"


def apply(client, module, secret_id, moves):
    if module.check_mode:
        return
    for move in moves:
        args = {"SecretId": secret_id, "VersionStage": move["stage"]}
        if move["move_to"]:
            args["MoveToVersionId"] = move["move_to"]
        if move["remove_from"]:
            args["RemoveFromVersionId"] = move["remove_from"]
        try:
            client.update_secret_version_stage(aws_retry=True, **args)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"cannot move {move['stage']} on '{secret_id}'; grant "
                                        "secretsmanager:UpdateSecretVersionStage (earlier moves of this step were made; "
                                        "run the playbook again to go on)")


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            secret_id=dict(type="str", required=True),
            step=dict(type="str", required=True, choices=["create", "finish", "unfinish", "discard"]),
            password_length=dict(type="int", default=32, no_log=False),
            exclude_characters=dict(type="str", default="\"'\\/@`$;#%&", no_log=False),
            exclude_punctuation=dict(type="bool", default=False),
            rotation=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    client = module.client("secretsmanager", retry_decorator=AWSRetry.jittered_backoff())
    p = module.params
    before = describe(client, module, p["secret_id"]).get("VersionIdsToStages", {})
    if p["step"] == "create":
        moves, after, msg = create(client, module, p["secret_id"], before)
    else:
        try:
            plan = {"finish": lambda: rot.plan_finish(before),
                    "unfinish": lambda: rot.plan_unfinish(before, p["rotation"]),
                    "discard": lambda: rot.plan_discard(before, p["rotation"])}[p["step"]]
            moves = plan()
        except rot.RotationError as exc:
            module.fail_json(msg=str(exc))
        apply(client, module, p["secret_id"], moves)
        after = rot.apply_moves(before, moves)
        verb = "would move" if module.check_mode else "moved"
        msg = (f"{verb} " + ", ".join(f"{m['stage']} to {m['move_to'] or 'no version'}" for m in moves)
               if moves else f"{p['step']}: the stages are as this step leaves them; nothing to do")
    result = {"changed": bool(moves), "moves": moves, "before": rot.labels(before), "stages": rot.labels(after),
              "msg": msg}
    if module._diff and moves:
        result["diff"] = {"before": json.dumps(rot.labels(before), indent=1, sort_keys=True) + "\n",
                          "after": json.dumps(rot.labels(after), indent=1, sort_keys=True) + "\n",
                          "before_header": f"{p['secret_id']} stages", "after_header": f"{p['secret_id']} stages"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
