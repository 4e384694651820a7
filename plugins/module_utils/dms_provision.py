# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure logic of DMS provisioning: the task's table mappings built from the inventory's
rules, the desired-versus-current comparison of a resource's settings and tags, and the start
gate on the last readiness report. Nothing here talks to AWS or Ansible; every error is one line
naming the cause and the fix."""

from __future__ import annotations

import json

ACTIONS = ("include", "exclude")
# Characters DMS's selection rules treat as wildcards; a name made of these alone selects anything.
WILDCARD = "%"


class ProvisionError(Exception):
    """The options cannot describe a valid DMS resource; nothing was read or changed."""


def table_mappings(rules):
    """The task's TableMappings document for a list of ``{schema, table, action}`` rules (table
    defaults to every table, action to include), in the order given: DMS applies an exclude
    after the includes whatever its rule id, so the order only fixes the ids."""
    if not rules:
        raise ProvisionError("no table rules: give at least one {schema: NAME, table: NAME or %, action: include}")
    built = []
    seen = set()
    for number, rule in enumerate(rules, 1):
        if not isinstance(rule, dict):
            raise ProvisionError(f"table rule {number} is not a mapping: write it as {{schema: NAME, table: NAME}}")
        unknown = sorted(set(rule) - {"schema", "table", "action"})
        if unknown:
            raise ProvisionError(f"table rule {number} has unknown keys {', '.join(unknown)}: "
                                 "use schema, table, action")
        schema = str(rule.get("schema") or "").strip()
        table = str(rule.get("table") or WILDCARD).strip()
        action = str(rule.get("action") or "include").strip()
        if not schema:
            raise ProvisionError(f"table rule {number} names no schema: give schema (the database, e.g. basis)")
        if action not in ACTIONS:
            raise ProvisionError(f"table rule {number}: action '{action}' is neither include nor exclude")
        key = (schema, table)
        if key in seen:
            raise ProvisionError(f"table rule {number} repeats {schema}.{table}: keep one rule per schema and table")
        seen.add(key)
        built.append({"rule-type": "selection", "rule-id": str(number), "rule-name": f"{action}-{schema}-{table}",
                      "object-locator": {"schema-name": schema, "table-name": table}, "rule-action": action})
    if not any(r["rule-action"] == "include" for r in built):
        raise ProvisionError("the table rules only exclude: DMS needs at least one include rule")
    return {"rules": built}


def mappings_json(mappings):
    """The canonical JSON text of a table mapping document (what the task is given and compared as)."""
    return json.dumps(mappings, sort_keys=True, separators=(",", ":"))


def parse_json(text, what):
    """A JSON document from the API (TableMappings, ReplicationTaskSettings); {} for none."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        raise ProvisionError(f"{what} as AWS returned it is not JSON") from None


def subset_differences(current, desired, path=""):
    """The paths of ``desired`` whose values ``current`` does not have: a nested dict compares
    key by key (AWS adds its defaults to what it stores), anything else as a whole."""
    found = []
    for key, want in sorted(desired.items()):
        where = f"{path}.{key}" if path else str(key)
        have = current.get(key) if isinstance(current, dict) else None
        if isinstance(want, dict) and isinstance(have, dict):
            found.extend(subset_differences(have, want, where))
        elif have != want:
            found.append(where)
    return found


def setting_changes(current, desired):
    """``{name: (current, desired)}`` for each setting of ``desired`` (None: not managed) that
    ``current`` does not have; lists compare as sets of their items."""
    changes = {}
    for name, want in desired.items():
        if want is None:
            continue
        have = current.get(name)
        if isinstance(want, list) and isinstance(have, list):
            equal = sorted(map(str, want)) == sorted(map(str, have))
        elif isinstance(want, dict) and isinstance(have, dict):
            equal = not subset_differences(have, want)
        else:
            equal = have == want
        if not equal:
            changes[name] = (have, want)
    return changes


def tag_changes(current, desired, purge):
    """(tags to set, tag keys to remove) to get from ``current`` to ``desired`` (dicts)."""
    current = current or {}
    desired = {str(k): str(v) for k, v in (desired or {}).items()}
    to_set = {k: v for k, v in desired.items() if current.get(k) != v}
    to_remove = sorted(k for k in current if k not in desired) if purge else []
    return to_set, to_remove


def carries(tags, owner_tags):
    """Whether a resource's tags include every owner tag (the collection's mark on what it created)."""
    return bool(owner_tags) and all((tags or {}).get(k) == str(v) for k, v in owner_tags.items())


def start_gate(report, age_hours, max_age_hours, override_reason, path):
    """(allowed, one-line reason) for starting the replication task on the last readiness
    report (the JSON playbooks/dms_readiness.yml writes, None when there is none)."""
    override = (override_reason or "").strip()
    rerun = "run playbooks/dms_readiness.yml"
    if report is None:
        problem = f"no readiness report at {path}: {rerun} first"
    elif not isinstance(report, dict) or not isinstance(report.get("findings"), list):
        problem = f"{path} is not a readiness report (no findings): {rerun} again"
    else:
        failing = [str(f.get("id")) for f in report["findings"] if isinstance(f, dict) and f.get("severity") == "fail"]
        if failing:
            problem = (f"the readiness report {path} fails {', '.join(failing)}: have the vendor make the changes "
                       f"it lists, then {rerun} again")
        elif max_age_hours and age_hours > max_age_hours:
            problem = (f"the readiness report {path} is {age_hours:.0f} h old (at most {max_age_hours} h): "
                       f"{rerun} again")
        else:
            return True, f"readiness report {path} passed ({age_hours:.1f} h old)"
    if override:
        return True, f"override: {override} (refused otherwise: {problem})"
    return False, f"the replication task is not started: {problem}, or give start_override_reason"
