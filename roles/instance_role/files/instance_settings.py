#!/usr/bin/env python3
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two settings of one EC2 instance phase 3 changes: its instance profile association
(associate, replace or remove) and its metadata options (http_tokens, hop limit, endpoint).
Changes only what differs, waits until the change has settled, honours --check. Run on the
controller by the instance_role tasks with the Python that runs Ansible (it has boto3, as
amazon.aws needs); prints one JSON object.

Why not amazon.aws.ec2_instance: it associates and replaces a profile even in check mode (its
add_or_update_instance_profile has no check-mode guard) and cannot remove an association, which
the rescue and the rollback need; and for metadata options it sends every option, taking the
ones it does not change from DescribeInstances, so it fails with a None parameter when an
option is missing there (moto drops the options a ModifyInstanceMetadataOptions call did not
name). A module would be the better home (jram.dumphost.instance_settings); roles in
a collection cannot carry modules of their own.

  instance_settings.py --instance-id I [--profile NAME_OR_ARN [--replace] | --absent]
                       [--http-tokens required|optional] [--hop-limit N] [--http-endpoint enabled|disabled]
                       [--check] [--wait-timeout S] [--endpoint-url U] [--region R]

Output: {"changed", "actions" (list of what was or would be done), "before", "after", "msg"};
before/after are {"profile" (ARN or "none"), "http_tokens", "hop_limit", "http_endpoint"}.
Exit 1 on failure, with {"failed": true, "msg"}."""

from __future__ import annotations

import argparse
import json
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError


class SettingsError(Exception):
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
            raise SettingsError(f"instance profile {name_or_arn} does not exist: create it first (phase 1, "
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
            raise SettingsError(f"instance {instance_id}: the profile association did not settle within "
                                f"{timeout} seconds (now {now}); check it in the EC2 console")
        time.sleep(2)


def options(ec2, instance_id: str) -> dict:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    meta = found.get("MetadataOptions", {})
    return {"http_tokens": meta.get("HttpTokens", "optional"), "hop_limit": meta.get("HttpPutResponseHopLimit", 1),
            "http_endpoint": meta.get("HttpEndpoint", "enabled"), "state": meta.get("State", "applied")}


def settle_options(ec2, instance_id: str, timeout: int) -> dict:
    deadline = time.time() + timeout
    while True:
        now = options(ec2, instance_id)
        if now["state"] == "applied":
            return now
        if time.time() > deadline:
            raise SettingsError(f"instance {instance_id}: the metadata options were not applied within {timeout} "
                                "seconds; check them in the EC2 console")
        time.sleep(2)


def change_association(args, session, ec2, before: dict | None) -> tuple[str | None, str]:
    """Associate/replace/remove as asked; returns (action or None, the profile ARN afterwards)."""
    was = before["instance_profile_arn"] if before else "none"
    if args.absent:
        if before is None:
            return None, "none"
        if not args.check:
            ec2.disassociate_iam_instance_profile(AssociationId=before["association_id"])
            settle(ec2, args.instance_id, None, args.wait_timeout)
        return f"removed instance profile {was}", "none"
    arn = profile_arn(session.client("iam", endpoint_url=args.endpoint_url or None), args.profile)
    if before and before["instance_profile_arn"] == arn:
        return None, arn
    if before and not args.replace:
        raise SettingsError(f"instance {args.instance_id} has instance profile {was} associated, not {arn}; "
                            "replace it only when told to")
    if not args.check:
        if before:
            ec2.replace_iam_instance_profile_association(IamInstanceProfile={"Arn": arn},
                                                         AssociationId=before["association_id"])
        else:
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=args.instance_id)
        settle(ec2, args.instance_id, arn, args.wait_timeout)
    return (f"replaced instance profile {was} with {arn}" if before else f"associated instance profile {arn}"), arn


def change_options(args, ec2, before: dict) -> tuple[str | None, dict]:
    """Set the metadata options asked for; only those, and only when one differs."""
    wanted = {"http_tokens": args.http_tokens, "hop_limit": args.hop_limit, "http_endpoint": args.http_endpoint}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    differ = {k: v for k, v in wanted.items() if before[k] != v}
    if not differ:
        return None, before
    if not args.check:
        request = {"HttpTokens": wanted.get("http_tokens"), "HttpPutResponseHopLimit": wanted.get("hop_limit"),
                   "HttpEndpoint": wanted.get("http_endpoint")}
        ec2.modify_instance_metadata_options(InstanceId=args.instance_id,
                                             **{k: v for k, v in request.items() if v is not None})
        settle_options(ec2, args.instance_id, args.wait_timeout)
    after = {**before, **wanted}
    return "metadata options " + ", ".join(f"{k} {before[k]} -> {v}" for k, v in differ.items()), after


def run(args: argparse.Namespace) -> dict:
    session = boto3.session.Session(region_name=args.region or None)
    ec2 = session.client("ec2", endpoint_url=args.endpoint_url or None)
    association = current(ec2, args.instance_id)
    meta = options(ec2, args.instance_id)
    before = {"profile": association["instance_profile_arn"] if association else "none",
              **{k: meta[k] for k in ("http_tokens", "hop_limit", "http_endpoint")}}
    actions = []
    profile = before["profile"]
    if args.profile or args.absent:
        action, profile = change_association(args, session, ec2, association)
        actions += [action] if action else []
    action, meta = change_options(args, ec2, meta)
    actions += [action] if action else []
    after = {"profile": profile, **{k: meta[k] for k in ("http_tokens", "hop_limit", "http_endpoint")}}
    what = "; ".join(actions) if actions else "nothing to change"
    return {"changed": bool(actions), "actions": actions, "before": before, "after": after,
            "msg": f"instance {args.instance_id}: {'(check mode) would have ' if args.check and actions else ''}{what}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance-id", required=True)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--profile", help="instance profile name or ARN to associate")
    target.add_argument("--absent", action="store_true", help="remove any association")
    parser.add_argument("--replace", action="store_true", help="replace a different association")
    parser.add_argument("--http-tokens", choices=["required", "optional"])
    parser.add_argument("--hop-limit", type=int, choices=range(1, 65), metavar="1..64")
    parser.add_argument("--http-endpoint", choices=["enabled", "disabled"])
    parser.add_argument("--check", action="store_true", help="say what would change, change nothing")
    parser.add_argument("--wait-timeout", type=int, default=120)
    parser.add_argument("--endpoint-url", default="")
    parser.add_argument("--region", default="")
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except SettingsError as exc:
        result = {"failed": True, "msg": str(exc)}
    except (ClientError, BotoCoreError) as exc:
        result = {"failed": True, "msg": f"instance {args.instance_id}: AWS refused the change: {exc}"}
    result["check"] = args.check
    print(json.dumps(result))
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
