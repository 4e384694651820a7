#!/usr/bin/env python3
"""Which IAM user owns each access key id, and the key's status: GetAccessKeyLastUsed names the
user, ListAccessKeys of that user gives the status. Read-only; run on the controller with the
Python that runs Ansible (boto3 is there for amazon.aws), with the controller's default credential
chain, as the amazon.aws modules. Prints {"owners": {KEY_ID: {"user": NAME|null, "status": ...}}}:
status Active, Inactive or absent (the key does not exist)."""

from __future__ import annotations

import argparse
import json
import sys

import boto3
from botocore.exceptions import BotoCoreError, ClientError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("key_ids", nargs="*")
    parser.add_argument("--endpoint-url", default="")
    parser.add_argument("--region", default="")
    parser.add_argument("--user", action="append", default=[], metavar="KEY_ID=USER",
                        help="the owner of a key when it is known (skips the lookup)")
    args = parser.parse_args()
    known = dict(item.split("=", 1) for item in args.user)
    iam = boto3.client("iam", endpoint_url=args.endpoint_url or None, region_name=args.region or None)
    keys = {}
    try:
        for key_id in args.key_ids:
            user = known.get(key_id)
            if not user:
                try:
                    user = iam.get_access_key_last_used(AccessKeyId=key_id).get("UserName")
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("NoSuchEntity", "AccessDenied"):
                        raise
                    user = None
            status = "absent"
            if user:
                try:
                    for meta in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                        if meta["AccessKeyId"] == key_id:
                            status = meta["Status"]
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                        raise
            keys[key_id] = {"user": user, "status": status}
    except (ClientError, BotoCoreError) as exc:
        print(json.dumps({"failed": True, "msg": f"reading the access keys from IAM failed: {exc}"}))
        return 1
    print(json.dumps({"changed": False, "owners": keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
