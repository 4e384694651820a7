# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The single-user rotation of a database secret, as pure logic (docs/rotation.md).

Stages: a Secrets Manager secret's versions carry the labels AWSCURRENT, AWSPENDING and
AWSPREVIOUS (`DescribeSecret`'s VersionIdsToStages). The rotation's state is read from them and
from which password the database accepts, so that every step can be run again and a run stopped
anywhere can be resumed or rolled back. The functions here plan label moves; the modules apply
them (`UpdateSecretVersionStage`, one call per move).

Ledger: /var/lib/dumpjob/rotations.json on the dump host (root, 0600), one entry per rotation
with the version ids it moved and when and by whom each step ran -- never a value."""

from __future__ import annotations

import json
import os
import tempfile

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
LEDGER_PATH = "/var/lib/dumpjob/rotations.json"
LEDGER_VERSION = 1
STEPS = ("create", "set", "test", "finish", "rollback")
REMINDER = ("the database password of secret(s) {secrets} has not been rotated since phase 1 (the leaked legacy "
            "password still works): run playbooks/rotate_db_password.yml (docs/rotation.md)")


class RotationError(Exception):
    """The rotation cannot go on as asked; the message names the cause and the next step."""


def labels(version_stages):
    """{stage: version id} for the three rotation stages found in VersionIdsToStages."""
    out = {CURRENT: None, PENDING: None, PREVIOUS: None}
    for version, stages in (version_stages or {}).items():
        for stage in stages or []:
            if stage in out:
                out[stage] = version
    return out


def pending_version(version_stages):
    """The version AWSPENDING labels, unless it is the AWSCURRENT one (then no rotation is in flight)."""
    found = labels(version_stages)
    return found[PENDING] if found[PENDING] and found[PENDING] != found[CURRENT] else None


def rotated(version_stages):
    """Whether the secret's versions show that its value changed after it was created: a second
    version (AWSPREVIOUS, AWSPENDING or a deprecated one) exists besides AWSCURRENT."""
    found = labels(version_stages)
    return any(v and v != found[CURRENT] for v in (found[PENDING], found[PREVIOUS])) or len(version_stages or {}) > 1


def plan_finish(version_stages):
    """Moves that make AWSPENDING's version the current one (AWSPREVIOUS follows the old one, as
    Secrets Manager moves it itself) and then drop AWSPENDING; [] when no rotation is in flight."""
    found = labels(version_stages)
    new = pending_version(version_stages)
    moves = []
    if new:
        moves.append({"stage": CURRENT, "move_to": new, "remove_from": found[CURRENT]})
    if found[PENDING]:
        moves.append({"stage": PENDING, "move_to": None, "remove_from": found[PENDING]})
    return moves


def plan_unfinish(version_stages, rotation):
    """Before the database goes back to the old password: AWSCURRENT back on the rotation's old
    version and AWSPENDING on its new one (the state after the set step, in which both the dump's
    AWSPENDING retry and `dumpjob password JOB revert` work)."""
    found = labels(version_stages)
    old, new = rotation.get("old_version"), rotation.get("new_version")
    if not old or not new:
        raise RotationError("the rotation's ledger entry names no old or new version; put the stages back by hand "
                            "(aws secretsmanager update-secret-version-stage)")
    for version in (old, new):
        if version not in (version_stages or {}):
            raise RotationError(f"version {version} of the rotation no longer exists on the secret; the rollback "
                                "cannot put it back: set the database password and the stages by hand")
    moves = []
    if found[CURRENT] != old:
        moves.append({"stage": CURRENT, "move_to": old, "remove_from": found[CURRENT]})
    if found[PENDING] != new:
        moves.append({"stage": PENDING, "move_to": new, "remove_from": found[PENDING]})
    return moves


def plan_discard(version_stages, rotation):
    """After the database accepts the old password again: AWSPENDING leaves the new version and
    AWSPREVIOUS goes back where it was before the rotation (or nowhere)."""
    found = labels(version_stages)
    moves = []
    if found[PENDING]:
        moves.append({"stage": PENDING, "move_to": None, "remove_from": found[PENDING]})
    before = rotation.get("previous_version")
    if before and before not in (version_stages or {}):
        before = None
    if found[PREVIOUS] != before:
        moves.append({"stage": PREVIOUS, "move_to": before, "remove_from": found[PREVIOUS]})
    return moves


def apply_moves(version_stages, moves):
    """VersionIdsToStages after `moves`, as Secrets Manager computes it (AWSCURRENT leaving a
    version puts AWSPREVIOUS on it)."""
    out = {v: list(stages) for v, stages in (version_stages or {}).items()}
    for move in moves:
        if move["remove_from"] and move["stage"] in out.get(move["remove_from"], []):
            out[move["remove_from"]].remove(move["stage"])
        if move["move_to"]:
            for stages in out.values():
                if move["stage"] in stages:
                    stages.remove(move["stage"])
            out.setdefault(move["move_to"], []).append(move["stage"])
        if move["stage"] == CURRENT and move["move_to"] and move["remove_from"] \
                and move["remove_from"] != move["move_to"]:
            for stages in out.values():
                if PREVIOUS in stages:
                    stages.remove(PREVIOUS)
            out[move["remove_from"]].append(PREVIOUS)
    return {v: sorted(stages) for v, stages in out.items()}


def random_password_args(length, exclude_characters, exclude_punctuation=False, require_each=True):
    """GetRandomPassword's arguments for the vendor's policy; refused before any call when the
    policy cannot yield a password."""
    if not isinstance(length, int) or not 8 <= length <= 4096:
        raise RotationError(f"password length {length} is outside 8..4096; set db_rotation_password_length")
    if any(c in exclude_characters for c in "\r\n\x00"):
        raise RotationError("db_rotation_exclude_characters must not hold line breaks or NUL")
    return {"PasswordLength": length, "ExcludeCharacters": exclude_characters,
            "ExcludePunctuation": bool(exclude_punctuation), "IncludeSpace": False,
            "RequireEachIncludedType": bool(require_each)}


# -- the ledger ----------------------------------------------------------------------------------
def load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return {"version": LEDGER_VERSION, "rotations": []}
    except ValueError:
        raise RotationError(f"the rotation ledger {path} is not JSON; repair it or move it aside") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rotations"), list):
        raise RotationError(f"the rotation ledger {path} has no 'rotations' list; repair it or move it aside")
    if doc.get("version") != LEDGER_VERSION:
        raise RotationError(f"the rotation ledger {path} has version {doc.get('version')}, this collection writes "
                            f"{LEDGER_VERSION}; use the collection that wrote it")
    return doc


def save(path, doc):
    """Atomically, root-only (0600) in a root-owned directory."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o750, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".rotations-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def open_rotation(doc, secret_id):
    """The secret's latest rotation that neither finished nor was rolled back, or None."""
    for entry in reversed(doc["rotations"]):
        if entry.get("secret_id") == secret_id:
            return None if entry.get("outcome") else entry
    return None


def record(doc, secret_id, step, when, by, new_version=None, old_version=None, previous_version=None):
    """`doc` with `step` recorded on the secret's open rotation (a new one for `create`); returns
    (changed, doc). A step recorded already is not recorded again."""
    if step not in STEPS:
        raise RotationError(f"unknown rotation step '{step}'; one of {', '.join(STEPS)}")
    doc = json.loads(json.dumps(doc))
    entry = open_rotation(doc, secret_id)
    if entry is not None and new_version and entry.get("new_version") != new_version:
        entry["outcome"] = "abandoned"  # its AWSPENDING is gone; a new rotation started
        entry = None
    if entry is None:
        if step == "rollback" and not new_version:
            return False, doc
        if step not in ("create", "rollback"):
            raise RotationError(f"no rotation of '{secret_id}' is in progress in the ledger; record 'create' first")
        # A rollback of a rotation stopped before its create was recorded (known from AWSPENDING)
        # is recorded as a rotation of its own, rolled back.
        entry = {"secret_id": secret_id, "new_version": new_version, "old_version": old_version,
                 "previous_version": previous_version, "started": when, "started_by": by, "steps": {},
                 "outcome": None}
        doc["rotations"].append(entry)
    if step in entry["steps"]:
        return False, doc
    entry["steps"][step] = {"time": when, "by": by}
    if step in ("finish", "rollback"):
        entry["outcome"] = "rotated" if step == "finish" else "rolled_back"
    return True, doc


def summary(doc, secret_ids=()):
    """What the ledger says, per secret and as a reminder line while a secret never rotated."""
    done = {}
    for entry in doc["rotations"]:
        if entry.get("outcome") == "rotated":
            done[entry["secret_id"]] = entry
    never = [s for s in secret_ids if s not in done]
    return {
        "rotations": doc["rotations"],
        "last_rotated": {s: {"time": e["steps"]["finish"]["time"], "by": e["steps"]["finish"]["by"],
                             "version": e["new_version"]} for s, e in done.items()},
        "in_progress": sorted({e["secret_id"] for e in doc["rotations"] if not e.get("outcome")}),
        "never_rotated": never,
        "reminder": REMINDER.format(secrets=", ".join(never)) if never else None,
    }
