# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifecycle rules phase 1 owns on one bucket, computed from the jobs' key prefixes, and how
they compare with the rules a bucket holds. Pure functions: the module jram.dumphost.bucket_lifecycle
reads and writes the bucket."""

from __future__ import annotations

import re


def _slug(prefix: str) -> str:
    return re.sub(r"^-|-$", "", re.sub(r"[^A-Za-z0-9]+", "-", prefix))


def top_dirs(prefixes, expire_prefix: str) -> list[str]:
    """The top-level directories ('' = the whole bucket) under which the jobs write, without the
    expiring prefix: a key prefix 'dumps/basis/' is under 'dumps/', one without '/' under ''."""
    dirs = {p.split("/", 1)[0] + "/" if "/" in p else "" for p in prefixes}
    return sorted(dirs - {expire_prefix})


def wanted_rules(rule_prefix: str, expire_prefix: str, expire_days: int, abort_days: int, write_prefixes,
                 noncurrent_days: int | None) -> list[dict]:
    """The rules, in the shape S3 returns them: the expiring prefix (the parallel run's) expires
    after expire_days; incomplete multipart uploads are aborted after abort_days under it and under
    every other top-level directory the jobs write to. With noncurrent_days (a versioned bucket)
    every rule also expires the noncurrent versions under its prefix."""
    extra = {"NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days}} if noncurrent_days else {}
    abort = {"DaysAfterInitiation": abort_days}
    rules = [{"ID": f"{rule_prefix}-expire-{_slug(expire_prefix)}", "Filter": {"Prefix": expire_prefix},
              "Status": "Enabled", "Expiration": {"Days": expire_days},
              "AbortIncompleteMultipartUpload": abort, **extra}]
    for d in top_dirs(write_prefixes, expire_prefix):
        rules.append({"ID": f"{rule_prefix}-abort-mpu-{_slug(d) or 'bucket'}", "Filter": {"Prefix": d},
                      "Status": "Enabled", "AbortIncompleteMultipartUpload": abort, **extra})
    return rules


def owned(rule: dict, rule_prefix: str) -> bool:
    return str(rule.get("ID", "")).startswith(rule_prefix + "-")


def comparable(rule: dict) -> dict:
    """What phase 1 sets in a rule, whatever else S3 returns with it (an empty Filter for the whole
    bucket, the older top-level Prefix, empty lists)."""
    flt = rule.get("Filter") or {}
    out = {"ID": rule.get("ID"), "Prefix": flt.get("Prefix", rule.get("Prefix", "")),
           "Status": rule.get("Status")}
    if (rule.get("Expiration") or {}).get("Days") is not None:
        out["ExpirationDays"] = rule["Expiration"]["Days"]
    if (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation") is not None:
        out["AbortDays"] = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
    if (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays") is not None:
        out["NoncurrentDays"] = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
    return out


def plan(current: list[dict], wanted: list[dict], rule_prefix: str) -> dict:
    """What to change: the rule IDs to put (new or different) and to remove (owned, no longer
    wanted), and the bucket's whole new rule list (the rules of others kept as they are)."""
    mine = {r.get("ID"): comparable(r) for r in current if owned(r, rule_prefix)}
    want = {r["ID"]: comparable(r) for r in wanted}
    put = sorted(i for i, r in want.items() if mine.get(i) != r)
    remove = sorted(set(mine) - set(want))
    rules = [r for r in current if not owned(r, rule_prefix)] + wanted
    return {"put": put, "remove": remove, "rules": rules,
            "before": [mine[i] for i in sorted(mine)], "after": [want[i] for i in sorted(want)]}
