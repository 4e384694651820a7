"""The rotation's pure logic: stage plans (as moto and AWS apply them) and the ledger."""

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import secret_rotation as rot

OLD, NEW, PREV = "v-old", "v-new", "v-prev"


def test_finish_then_undo_round_trip():
    start = {PREV: ["AWSPREVIOUS"], OLD: ["AWSCURRENT"]}
    created = {**start, NEW: ["AWSPENDING"]}
    assert rot.pending_version(created) == NEW and rot.pending_version(start) is None
    finished = rot.apply_moves(created, rot.plan_finish(created))
    assert rot.labels(finished) == {"AWSCURRENT": NEW, "AWSPREVIOUS": OLD, "AWSPENDING": None}
    assert rot.plan_finish(finished) == []  # idempotent
    rotation = {"old_version": OLD, "new_version": NEW, "previous_version": PREV}
    unfinished = rot.apply_moves(finished, rot.plan_unfinish(finished, rotation))
    assert rot.labels(unfinished)["AWSCURRENT"] == OLD and rot.labels(unfinished)["AWSPENDING"] == NEW
    assert rot.plan_unfinish(unfinished, rotation) == []
    discarded = rot.apply_moves(unfinished, rot.plan_discard(unfinished, rotation))
    assert rot.labels(discarded) == rot.labels(start)
    assert rot.plan_discard(discarded, rotation) == []
    # a rollback before finish: only AWSPENDING goes
    assert rot.labels(rot.apply_moves(created, rot.plan_discard(created, rotation))) == rot.labels(start)


def test_rotated_and_pending_on_current():
    assert not rot.rotated({OLD: ["AWSCURRENT"]})
    assert rot.rotated({OLD: ["AWSPREVIOUS"], NEW: ["AWSCURRENT"]})
    assert rot.pending_version({OLD: ["AWSCURRENT", "AWSPENDING"]}) is None


def test_unfinish_refuses_a_lost_version():
    with pytest.raises(rot.RotationError, match="no longer exists"):
        rot.plan_unfinish({NEW: ["AWSCURRENT"]}, {"old_version": OLD, "new_version": NEW})


@pytest.mark.parametrize("length,exclude", [(7, ""), (5000, ""), (32, "a\nb")])
def test_password_policy_refused(length, exclude):
    with pytest.raises(rot.RotationError):
        rot.random_password_args(length, exclude)


def test_ledger_records_each_step_once(tmp_path):
    path = str(tmp_path / "rotations.json")
    doc = rot.load(path)
    assert rot.summary(doc, ["s"])["reminder"].startswith("the database password of secret(s) s has not been rotated")
    with pytest.raises(rot.RotationError, match="record 'create' first"):
        rot.record(doc, "s", "set", "t0", "ops")
    changed, doc = rot.record(doc, "s", "create", "t1", "ops", NEW, OLD, PREV)
    assert changed and not rot.record(doc, "s", "create", "t2", "ops", NEW, OLD, PREV)[0]
    for step in ("set", "test", "finish"):
        changed, doc = rot.record(doc, "s", step, "t3", "ops")
        assert changed
    rot.save(path, doc)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    found = rot.summary(rot.load(path), ["s"])
    assert found["reminder"] is None and found["last_rotated"]["s"]["version"] == NEW
    # a new rotation whose pending version differs abandons a stale open one
    _, doc = rot.record(doc, "s", "create", "t4", "ops", "v-a", NEW, OLD)
    _, doc = rot.record(doc, "s", "create", "t5", "ops", "v-b", NEW, OLD)
    assert [e["outcome"] for e in doc["rotations"]] == ["rotated", "abandoned", None]
    assert rot.record(doc, "other", "rollback", "t6", "ops") == (False, doc)


def test_a_rollback_before_create_was_recorded_is_recorded_as_a_rotation_rolled_back():
    doc = {"version": rot.LEDGER_VERSION, "rotations": []}
    # stopped after create, before its record: the rollback knows the versions from AWSPENDING
    changed, doc = rot.record(doc, "s", "rollback", "t1", "ops", "v-new", OLD, PREV)
    assert changed
    [entry] = doc["rotations"]
    assert entry["outcome"] == "rolled_back" and entry["new_version"] == "v-new"
    assert list(entry["steps"]) == ["rollback"]
    assert rot.summary(doc, ["s"])["never_rotated"] == ["s"]
    # recorded once; with nothing in progress and no version, there is nothing to record
    assert rot.record(doc, "s", "rollback", "t2", "ops") == (False, doc)
