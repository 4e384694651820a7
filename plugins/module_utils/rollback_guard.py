# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the host's ledgers say a rollback would cut off.

Reads two ledgers the host keeps under ``/var/lib/dumpjob``: the cutover ledger (each job's phase
and moves, :mod:`cutover_ledger`) and the key-retirement ledger (``static_keys.json``, written by
``roles/static_keys``)::

    {"version": 1,
     "users": {"ec2-user": {"state": "retired", "key_ids": ["AKIA…"], "iam_users": {"AKIA…": "legacy-dump"},
                            "retired_at": ..., "delete_after": ..., ...}},
     "events": [...]}

and says, as one line each, what forbids rolling back phase 3 (the instance profile and IMDSv2)
or phase 1 (role, policy, profile, secret, alarms) now, and the order that makes it possible:

- phase 3 is refused while a static key is retired (or deleted after its grace period) or a job
  is in ``cutover`` or ``retired``: those run only on the instance role;
- phase 1 is refused while any job is past ``legacy``: its new entry runs on the role and the
  secret phase 1 made, and a job in production is watched by phase 1's deadline alarm.

A forced rollback (a reason given) is recorded in a log of JSON lines, read back here. Pure
functions over loaded dicts, except :func:`load_forced_log` (the key-retirement ledger is loaded by
:mod:`static_keys_ledger`, with :func:`_load_json`)."""

from __future__ import annotations

import json

from ansible_collections.jram.dumphost.plugins.module_utils.cutover_phases import PHASES
from ansible_collections.jram.dumphost.plugins.module_utils.errors import LedgerError

FORCED_LOG_PATH = "/var/lib/dumpjob/forced_rollbacks.log"
PRODUCTION = ("cutover", "retired")
# Key states in which the host no longer holds the key (roles/static_keys: retired, rolled_back, deleted).
KEYS_GONE = ("retired", "deleted")
FORCE_HINT = "-e force_reason='why'"


# --- the cutover ledger ----------------------------------------------------------------------

def latest_move(record: dict) -> dict | None:
    """The job's latest transition as ``{time, from, to, kind, forced, reason, by}`` (None: never moved).

    ``kind`` is ``rollback`` for a move to an earlier phase, ``forward`` for a move to a later one,
    ``stay`` otherwise (a first record of a job the ledger did not know, ``from`` null)."""
    transitions = record.get("transitions") or []
    if not transitions:
        return None
    last = transitions[-1]
    source, target = last.get("from"), last.get("to")
    kind = "stay"
    if source in PHASES and target in PHASES and source != target:
        kind = "rollback" if PHASES.index(target) < PHASES.index(source) else "forward"
    return {"time": last.get("time"), "from": source, "to": target, "kind": kind,
            "forced": bool(last.get("forced")), "reason": last.get("reason"), "by": last.get("controller_user")}


def job_states(ledger: dict) -> dict:
    """Per job the ledger knows: its phase, since when, its latest move and whether it was a rollback."""
    states = {}
    for job, record in sorted(ledger.get("jobs", {}).items()):
        move = latest_move(record)
        states[job] = {"phase": record.get("phase") or "legacy", "phase_since": record.get("phase_since"),
                       "latest_move": move, "rolled_back": bool(move and move["kind"] == "rollback")}
    return states


def jobs_in(states: dict, *phases: str) -> list:
    return sorted(job for job, state in states.items() if state["phase"] in phases)


# --- the key-retirement ledger -----------------------------------------------------------------

def _load_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LedgerError(f"cannot read the {what} {path}: {exc.strerror}; run the task with become: true") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"the {what} {path} is not valid JSON ({exc}): restore it from a backup") from None


def key_states(keys_ledger: dict) -> dict:
    """Whether static keys are retired: ``{retired, users, retired_users, deleted_users, key_ids}``.

    ``users`` holds every user the ledger knows with its state, key ids and times (no secret is in
    that ledger); ``retired`` is true when any user's key left the host (``retired`` within its
    grace period, or ``deleted`` after it), and ``key_ids`` lists those keys."""
    users = {}
    for user, entry in sorted(keys_ledger.get("users", {}).items()):
        users[user] = {key: entry.get(key) for key in ("state", "retired_at", "delete_after", "deleted_at",
                                                       "rolled_back_at")}
        users[user]["key_ids"] = list(entry.get("key_ids") or [])
        users[user]["iam_users"] = dict(entry.get("iam_users") or {})
    gone = [user for user, entry in users.items() if entry["state"] in KEYS_GONE]
    return {"retired": bool(gone), "users": users,
            "retired_users": [user for user in gone if users[user]["state"] == "retired"],
            "deleted_users": [user for user in gone if users[user]["state"] == "deleted"],
            "key_ids": sorted({key for user in gone for key in users[user]["key_ids"]})}


# --- the log of forced rollbacks ---------------------------------------------------------------

def load_forced_log(path: str) -> list:
    """The forced rollbacks recorded (one JSON object a line), oldest first; [] when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LedgerError(f"cannot read the log of forced rollbacks {path}: {exc.strerror}; run the task with "
                          "become: true") from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise LedgerError(f"{path} line {number} is not a JSON object: fix the line by hand") from None
        if not isinstance(entry, dict):
            raise LedgerError(f"{path} line {number} is not a JSON object: fix the line by hand")
        entries.append(entry)
    return entries


# --- what blocks a rollback ----------------------------------------------------------------------

def _names(items: list) -> str:
    return ", ".join(items)


def _key_words(keys: dict) -> list:
    words = []
    users = keys["users"]
    if keys["retired_users"]:
        words.append("the static key(s) of " + _names([f"{u} ({', '.join(users[u]['key_ids'])})"
                                                       for u in keys["retired_users"]]) + " are retired")
    if keys["deleted_users"]:
        words.append("the static key(s) of " + _names([f"{u} ({', '.join(users[u]['key_ids'])})"
                                                       for u in keys["deleted_users"]])
                     + " were deleted after their grace period")
    return words


def _job_words(states: dict, *phases: str) -> list:
    words = []
    for phase in phases:
        found = jobs_in(states, phase)
        if found:
            verb = "are" if len(found) > 1 else "is"
            words.append(f"job(s) {_names(found)} {verb} {'retired' if phase == 'retired' else 'in ' + phase}")
    return words


def _cannot(keys: dict, states: dict) -> list:
    """What no rollback can undo (only a forced rollback goes past it)."""
    out = []
    retired = jobs_in(states, "retired")
    if retired:
        out.append(f"retired job(s) {_names(retired)} cannot go back (retired is final)")
    if keys["deleted_users"]:
        iam = sorted({name for user in keys["deleted_users"] for name in keys["users"][user]["iam_users"].values()})
        out.append("deleted keys cannot be restored (create a new key" + (f" for IAM user(s) {_names(iam)}" if iam
                                                                          else "") + " by hand)")
    return out


def phase3_blocker(states: dict, keys: dict, forced_log: str = FORCED_LOG_PATH) -> str | None:
    """One line saying why detaching the instance profile now would cut off production, or None."""
    what = _key_words(keys) + _job_words(states, "cutover", "retired")
    if not what:
        return None
    steps = []
    if keys["retired_users"]:
        steps.append("playbooks/rollback.yml -e phase=keys")
    in_cutover = jobs_in(states, "cutover")
    if in_cutover:
        steps.append(f"-e job=NAME -e to=parallel (or legacy) for {_names(in_cutover)}")
    steps.append("-e phase=3")
    cannot = _cannot(keys, states)
    return ("rollback of phase 3 refused: " + "; ".join(what)
            + ", and without the instance role they have no AWS credentials. Roll back in this order: "
            + ", then ".join(steps)
            + (f" ({'; '.join(cannot)})" if cannot else "")
            + f"; or pass {FORCE_HINT} to detach anyway (recorded in {forced_log}). Nothing was changed.")


def phase1_blocker(states: dict, keys: dict, forced_log: str = FORCED_LOG_PATH) -> str | None:
    """One line saying why deleting what phase 1 created would cut off a job, or None."""
    past = jobs_in(states, *PHASES[1:])
    if not past:
        return None
    steps = []
    if keys["retired_users"]:
        steps.append("playbooks/rollback.yml -e phase=keys")
    movable = jobs_in(states, "parallel", "cutover")
    if movable:
        steps.append(f"-e job=NAME -e to=legacy for {_names(movable)}")
    steps += ["-e phase=3", "-e phase=1"]
    cannot = _cannot(keys, states)
    production = jobs_in(states, *PRODUCTION)
    return ("rollback of phase 1 refused: job(s) " + _names([f"{job} ({states[job]['phase']})" for job in past])
            + f" {'are' if len(past) > 1 else 'is'} past legacy and run on the role and the secret phase 1 created"
            + (f" (its deadline alarms watch {_names(production)})" if production else "")
            + ". Roll back in this order: " + ", then ".join(steps)
            + (f" ({'; '.join(cannot)})" if cannot else "")
            + f"; or pass {FORCE_HINT} to delete anyway (recorded in {forced_log}"
            + ("; the deadline alarms of jobs in cutover or retired are kept" if production else "")
            + "). Nothing was changed.")
