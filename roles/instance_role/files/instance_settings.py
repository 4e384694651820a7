#!/usr/bin/env python3
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Associate, replace or remove the instance profile of one EC2 instance, and wait until the
association has settled. Run on the controller by the instance_role tasks with the Python that
runs Ansible (it has boto3, as amazon.aws needs); prints one JSON object.

Why not amazon.aws.ec2_instance: it associates and replaces even in check mode (its
add_or_update_instance_profile has no check-mode guard) and cannot remove an association, which
the rescue and the rollback of phase 3 need. A module (jram.dumphost.instance_profile_association)
would be the better home; roles in a collection cannot carry modules of their own.

  profile_association.py --instance-id I (--profile NAME_OR_ARN [--replace] | --absent) [--check]
                         [--wait-timeout S] [--endpoint-url U] [--region R]

Output: {"changed", "action" (none|associate|replace|disassociate), "before", "after", "msg"};
before/after are {"association_id", "instance_profile_arn", "state"} or null. Exit 1 on failure,
with {"failed": true, "msg"}."""

from __future__ import annotations

import argparse
import json
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError


class AssociationError(Exception):
    pass


def current(ec2, instance_id: str) -> dict | None:
    """The instance's association that is in place or on its way in, or None."""
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]
    live = [a for a in found if a.get("State", "associated") in ("associating", "associated")]
    if not live:
        return None
    a = live[0]
    return {"association_id": a["AssociationId"], "instance_profile_arn": a["IamInstanceProfile"]["Arn"],
            "state": a.get("State", "associated")}


def profile_arn(iam, name_or_arn: str) -> str:
    name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
    try:
        return iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
            raise AssociationError(f"instance profile {name_or_arn} does not exist: create it first (phase 1, "
                          "playbooks/phase1_infra.yml)") from None
        raise


def settle(ec2, instance_id: str, wanted: str | None, timeout: int) -> dict | None:
    """Wait until the association is `wanted` and associated (None: until there is none)."""
    deadline = time.time() + timeout
    while True:
        now = current(ec2, instance_id)
        if (wanted is None and now is None) or (now and now["instance_profile_arn"] == wanted
                                               and now["state"] == "associated"):
            return now
        if time.time() > deadline:
            raise AssociationError(f"instance {instance_id}: the profile association did not settle within {timeout} "
                          f"seconds (now {now}); check it in the EC2 console")
        time.sleep(2)


def run(args: argparse.Namespace) -> dict:
    session = boto3.session.Session(region_name=args.region or None)
    ec2 = session.client("ec2", endpoint_url=args.endpoint_url or None)
    before = current(ec2, args.instance_id)
    if args.absent:
        if before is None:
            return {"changed": False, "action": "none", "before": None, "after": None,
                    "msg": f"instance {args.instance_id} has no instance profile"}
        if not args.check:
            ec2.disassociate_iam_instance_profile(AssociationId=before["association_id"])
            settle(ec2, args.instance_id, None, args.wait_timeout)
        return {"changed": True, "action": "disassociate", "before": before, "after": None,
                "msg": f"instance {args.instance_id}: removed instance profile {before['instance_profile_arn']}"}

    arn = profile_arn(session.client("iam", endpoint_url=args.endpoint_url or None), args.profile)
    if before and before["instance_profile_arn"] == arn:
        return {"changed": False, "action": "none", "before": before, "after": before,
                "msg": f"instance {args.instance_id} has instance profile {arn} already"}
    if before and not args.replace:
        raise AssociationError(f"instance {args.instance_id} has instance profile {before['instance_profile_arn']} "
                      f"associated, not {arn}; replace it only when told to")
    action = "replace" if before else "associate"
    after = {"association_id": None, "instance_profile_arn": arn, "state": "associated"}
    if not args.check:
        if before:
            ec2.replace_iam_instance_profile_association(IamInstanceProfile={"Arn": arn},
                                                         AssociationId=before["association_id"])
        else:
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=args.instance_id)
        after = settle(ec2, args.instance_id, arn, args.wait_timeout)
    was = before["instance_profile_arn"] if before else "no instance profile"
    return {"changed": True, "action": action, "before": before, "after": after,
            "msg": f"instance {args.instance_id}: {was} -> {arn}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance-id", required=True)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--profile", help="instance profile name or ARN to associate")
    target.add_argument("--absent", action="store_true", help="remove any association")
    parser.add_argument("--replace", action="store_true", help="replace a different association")
    parser.add_argument("--check", action="store_true", help="say what would change, change nothing")
    parser.add_argument("--wait-timeout", type=int, default=120)
    parser.add_argument("--endpoint-url", default="")
    parser.add_argument("--region", default="")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except AssociationError as exc:
        result = {"failed": True, "msg": str(exc)}
    except (ClientError, BotoCoreError) as exc:
        result = {"failed": True, "msg": f"instance {args.instance_id}: AWS refused the change: {exc}"}
    result["check"] = args.check
    print(json.dumps(result))
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
