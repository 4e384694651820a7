# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings of one EC2 instance that phase 3 changes - its instance profile association and
its metadata options - and the record of them phase 3 leaves on the instance as tags.

A settings dict is {"profile": ARN or "none", "http_tokens", "hop_limit", "http_endpoint"} (the
last only when EC2 reports it). The EC2 calls take a client made by AnsibleAWSModule with an
AWSRetry decorator (`aws_retry=True`); everything else is pure."""

from __future__ import annotations

import re
import time

NO_PROFILE = "none"
OPTION_KEYS = ("http_tokens", "hop_limit", "http_endpoint")
# EC2's names of the metadata options, as ModifyInstanceMetadataOptions takes them.
EC2_OPTION_NAMES = {"http_tokens": "HttpTokens", "hop_limit": "HttpPutResponseHopLimit",
                    "http_endpoint": "HttpEndpoint"}
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
TAG_PREFIX = re.compile(r"^(?!aws:)[\w.:/=+@-]{1,90}$")
PROFILE_ARN = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:instance-profile/.+$")


NOT_FOUND = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")


class SettingsError(Exception):
    """A refusal or a wait that ran out; the message names the cause and the next step."""


def describe(ec2, instance_id: str) -> dict | None:
    """The instance as DescribeInstances gives it, or None when there is no such instance."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id], aws_retry=True)["Reservations"]
    except Exception as exc:  # botocore's ClientError; module_utils stay importable without botocore
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in NOT_FOUND:
            return None
        raise
    instances = [i for r in reservations for i in r.get("Instances", [])]
    return instances[0] if instances else None


def association(ec2, instance_id: str) -> dict | None:
    """The association in place or on its way in ({association_id, arn, state}), or None."""
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}], aws_retry=True)["IamInstanceProfileAssociations"]
    live = [a for a in found if a.get("State", "associated") in ("associating", "associated")]
    if not live:
        return None
    return {"association_id": live[0]["AssociationId"], "arn": live[0]["IamInstanceProfile"]["Arn"],
            "state": live[0].get("State", "associated")}


def options(instance: dict) -> dict:
    """The metadata options of a DescribeInstances entry (EC2's defaults when it reports none)."""
    meta = instance.get("MetadataOptions") or {}
    out = {"http_tokens": meta.get("HttpTokens") or "optional",
           "hop_limit": int(meta.get("HttpPutResponseHopLimit") or 1)}
    if meta.get("HttpEndpoint"):
        out["http_endpoint"] = meta["HttpEndpoint"]
    return out


def settings(instance: dict, found: dict | None) -> dict:
    return {"profile": found["arn"] if found else NO_PROFILE, **options(instance)}


def tags(instance: dict) -> dict:
    return {t["Key"]: t["Value"] for t in instance.get("Tags") or []}


def record(instance_tags: dict, prefix: str) -> dict:
    """The phase 3 record: the tags under `prefix`, keyed without it."""
    return {k[len(prefix):]: v for k, v in instance_tags.items() if k.startswith(prefix)}


def recorded(rec: dict) -> tuple[dict | None, str | None]:
    """(the settings the record says to put back, None) or (None, what is wrong with it)."""
    if not rec:
        return None, None
    profile = rec.get("previous-profile", "")
    tokens = rec.get("previous-http-tokens", "")
    hop = rec.get("previous-hop-limit", "")
    endpoint = rec.get("previous-http-endpoint")
    problems = []
    if profile != NO_PROFILE and not PROFILE_ARN.match(profile):
        problems.append(f"previous-profile {profile!r} is neither 'none' nor an instance profile ARN")
    if tokens not in ("required", "optional"):
        problems.append(f"previous-http-tokens {tokens!r} is neither required nor optional")
    if not re.fullmatch(r"[0-9]{1,2}", hop):
        problems.append(f"previous-hop-limit {hop!r} is not a number from 1 to 64")
    if endpoint is not None and endpoint not in ("enabled", "disabled"):
        problems.append(f"previous-http-endpoint {endpoint!r} is neither enabled nor disabled")
    if problems:
        return None, "; ".join(problems)
    out = {"profile": profile, "http_tokens": tokens, "hop_limit": int(hop)}
    if endpoint is not None:
        out["http_endpoint"] = endpoint
    return out, None


def option_changes(current: dict, wanted: dict) -> dict:
    """The metadata options of `wanted` (None: leave alone) that differ from `current`."""
    return {k: v for k, v in wanted.items() if v is not None and current.get(k) != v}


def option_request(current: dict, wanted: dict) -> dict:
    """ModifyInstanceMetadataOptions parameters: every option known, the wanted ones changed. Naming
    each keeps an endpoint that drops the unnamed ones (moto) in step with EC2, which keeps them."""
    merged = {**current, **{k: v for k, v in wanted.items() if v is not None}}
    return {EC2_OPTION_NAMES[k]: merged[k] for k in OPTION_KEYS if merged.get(k) is not None}


def describe_changes(before: dict, after: dict) -> list[str]:
    """One phrase per setting that differs, in a fixed order."""
    out = []
    if before["profile"] != after["profile"]:
        if after["profile"] == NO_PROFILE:
            out.append(f"removed instance profile {before['profile']}")
        elif before["profile"] == NO_PROFILE:
            out.append(f"associated instance profile {after['profile']}")
        else:
            out.append(f"replaced instance profile {before['profile']} with {after['profile']}")
    changed = [f"{k} {before.get(k)} -> {after[k]}" for k in OPTION_KEYS if k in after and before.get(k) != after[k]]
    if changed:
        out.append("metadata options " + ", ".join(changed))
    return out


def wait_for(read, done, timeout: int, what: str, sleep=time.sleep, clock=time.monotonic):
    """Call `read()` until `done(value)`, at most `timeout` seconds; return the last value."""
    deadline = clock() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if clock() > deadline:
            raise SettingsError(f"{what} did not settle within {timeout} seconds (now {value}); check it in the EC2 "
                                "console")
        sleep(2)
