# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key-retirement ledger: whose static AWS key was retired, rolled back or deleted, and when.

One JSON file on the host (``/var/lib/dumpjob/static_keys.json``, root 0600), holding names, key
ids and times, never a secret::

    {"version": 1,
     "users": {"ec2-user": {"state": "retired", "key_ids": ["AKIA…"], "iam_users": {"AKIA…": "legacy-dump"},
                            "escrow_secret": "jram-dumphost/escrow/ec2-user/AKIA…",
                            "files": [{"path": ..., "owner": ..., "group": ..., "mode": "0600"}],
                            "proven_prefixes": [...], "retired_at": ..., "retired_by": ..., "grace_days": 14,
                            "delete_after": ..., "rolled_back_at": ..., "deleted_at": ...}},
     "events": [{"at": ..., "by": ..., "action": "retired", "user": ..., "key_ids": [...],
                 "escrow_secret": ...}]}

The same discipline as :mod:`cutover_ledger`: :func:`load` checks the version and the shape (a
ledger of an earlier release without a version is read as version 1), :func:`locked` holds the
directory's lock while a run reads, decides and writes, :func:`write` replaces the file
atomically. :func:`record` changes a loaded ledger; the rest are pure queries."""

from __future__ import annotations

import datetime as dt
import json

from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LedgerError
from ansible_collections.jram.dumphost.plugins.module_utils.rollback_guard import _load_json as read_json

VERSION = 1
DEFAULT_PATH = "/var/lib/dumpjob/static_keys.json"
STATES = ("retired", "rolled_back", "deleted")
ACTIONS = STATES
# Who may move to which state: a retirement of a user never retired or rolled back; a rollback or
# a deletion of a retired key only.
_FROM = {"retired": (None, "rolled_back"), "rolled_back": ("retired",), "deleted": ("retired",)}
_FIELDS = ("key_ids", "iam_users", "escrow_secret", "files", "proven_prefixes")

parse_stamp = cutover_ledger.parse_stamp
utc_stamp = cutover_ledger.utc_stamp
locked = cutover_ledger.locked


def parse_now(text: str) -> dt.datetime:
    """A time option (YYYY-MM-DDTHH:MM:SSZ, UTC); the clock when empty."""
    if not text:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    try:
        return parse_stamp(text)
    except ValueError:
        raise InvalidOptionError(f"now {text!r} is not a UTC time such as 2026-01-31T00:00:00Z") from None


def empty() -> dict:
    return {"version": VERSION, "users": {}, "events": []}


def validate(data, path: str) -> dict:
    """Check the shape of a loaded ledger; LedgerError names the file and the fix."""
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise LedgerError(f"the key-retirement ledger {path} has no 'users' object: restore it from a backup")
    data.setdefault("version", VERSION)  # written by an earlier release, which wrote no version
    if data["version"] != VERSION:
        raise LedgerError(f"the key-retirement ledger {path} has version {data['version']!r}, this collection "
                          f"reads version {VERSION}: upgrade the collection")
    data.setdefault("events", [])
    if not isinstance(data["events"], list):
        raise LedgerError(f"the key-retirement ledger {path}: 'events' is not a list: fix it by hand or restore the "
                          "file from a backup")
    for user, entry in data["users"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("state"), str):
            raise LedgerError(f"the key-retirement ledger {path}: the entry of user {user!r} has no state: fix it "
                              "by hand or restore the file from a backup")
    return data


def load(path: str) -> dict:
    """The ledger at ``path``; an empty one when the file does not exist (no key retired)."""
    data = read_json(path, "key-retirement ledger")
    return empty() if data is None else validate(data, path)


def dumps(ledger: dict) -> str:
    return json.dumps(ledger, indent=2, ensure_ascii=False) + "\n"


def write(path: str, ledger: dict) -> None:
    """Replace the ledger atomically, root 0600."""
    cutover_ledger.write(path, ledger)


def record(ledger: dict, user: str, action: str, when: dt.datetime, by: str, details: dict | None = None,
           grace_days: int | None = None) -> dict:
    """Record ``action`` (retired, rolled_back, deleted) of ``user``'s key in place; returns the event.

    A retirement takes the entry's ``details`` (key ids, IAM users, escrow, files, proven prefixes)
    and ``grace_days``, and sets ``delete_after``; a rollback or a deletion keeps the entry and
    adds its own time. A move the ledger does not allow (deleting a key never retired) is refused."""
    if action not in ACTIONS:
        raise InvalidOptionError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    entry = ledger["users"].get(user)
    state = entry.get("state") if entry else None
    if state not in _FROM[action]:
        raise InvalidOptionError(f"the key of {user} is {state or 'not in the ledger'}: it cannot be recorded "
                                 f"{action}; read the ledger (static_keys_ledger_info) and fix the run")
    stamp = utc_stamp(when)
    if action == "retired":
        details = details or {}
        missing = [name for name in ("key_ids", "escrow_secret") if name not in details]
        if missing or grace_days is None or grace_days < 0:
            raise InvalidOptionError(f"recording the retirement of {user} needs details with key_ids and "
                                     "escrow_secret and grace_days from 0 "
                                     f"(missing: {', '.join(missing) or 'grace_days'})")
        details = dict(details)
        details["files"] = [{name: f.get(name) for name in ("path", "owner", "group", "mode")}
                            for f in details.get("files") or []]
        entry = {"state": "retired", **{name: details.get(name) for name in _FIELDS if name in details},
                 "retired_at": stamp, "retired_by": by, "grace_days": grace_days,
                 "delete_after": utc_stamp(when + dt.timedelta(days=grace_days))}
    else:
        entry = {**entry, "state": action, f"{action}_at": stamp, f"{action}_by": by}
    ledger["users"][user] = entry
    event = {"at": stamp, "by": by, "action": action, "user": user, "key_ids": entry.get("key_ids", []),
             "escrow_secret": entry.get("escrow_secret")}
    ledger["events"].append(event)
    return event


def items(ledger: dict, *states: str) -> list:
    """The users in one of ``states`` as ``{key: user, value: entry}``, sorted by user."""
    return [{"key": user, "value": entry} for user, entry in sorted(ledger["users"].items())
            if entry.get("state") in states]


def due(ledger: dict, now: dt.datetime) -> list:
    """The retired keys whose grace period is over at ``now`` (delete_after at or before it)."""
    stamp = utc_stamp(now)
    return [item for item in items(ledger, "retired") if item["value"].get("delete_after", "") <= stamp]
