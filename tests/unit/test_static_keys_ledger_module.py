"""The key-retirement ledger through its modules (static_keys_ledger records, static_keys_ledger_info
reads), driven as Ansible drives them, on a ledger in a temporary directory. Shown here: a ledger of
an earlier release (no version) loads and is written with one; another version or a broken file is
refused naming the cause; a retirement records the entry (files without their content) and its
end of grace period, computed from the time given; a rollback or deletion needs a retired key;
check mode writes nothing and its diff shows the change; the info module returns the users per
state and those past their grace period at the time asked."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible_collections.jram.dumphost.plugins.modules import static_keys_ledger, static_keys_ledger_info
from sandboxtest import run_module

KEY = "AKIAIOSFODNN7EXAMPLE"
ESCROW = f"jram-dumphost/escrow/ec2-user/{KEY}"
DETAILS = {"key_ids": [KEY], "iam_users": {KEY: "legacy-dump"}, "escrow_secret": ESCROW,
           "files": [{"path": "/home/ec2-user/.aws/credentials", "owner": "ec2-user", "group": "ec2-user",
                      "mode": "0600", "dir_owner": "ec2-user", "dir_group": "ec2-user", "dir_mode": "0700",
                      "size": 116, "key_ids": [KEY], "regular": True, "key_material": True}],
           "proven_prefixes": ["s3://dumps/basis_"]}
# What releases before the ledger module wrote (slurp, Jinja, copy): no version key.
EARLIER = {"users": {"ec2-user": {"state": "rolled_back", "key_ids": [KEY], "iam_users": {KEY: "legacy-dump"},
                                  "escrow_secret": ESCROW, "retired_at": "2026-11-01T00:00:00Z",
                                  "rolled_back_at": "2026-11-02T00:00:00Z", "grace_days": 14,
                                  "delete_after": "2026-11-15T00:00:00Z"}},
           "events": [{"action": "retired", "user": "ec2-user"}, {"action": "rolled_back", "user": "ec2-user"}]}


@pytest.fixture
def path(tmp_path):
    return tmp_path / "static_keys.json"


def record(path, action, now="2026-11-26T03:00:00Z", check=False, **extra):
    args = {"path": str(path), "user": "ec2-user", "action": action, "by": "alice", "now": now, **extra}
    return run_module(static_keys_ledger.main, args, check=check)


def info(path, now="2026-11-26T03:00:00Z"):
    return run_module(static_keys_ledger_info.main, {"path": str(path), "now": now})


def test_a_retirement_records_the_entry_and_the_end_of_its_grace_period(path):
    result = record(path, "retired", details=DETAILS, grace_days=14)
    assert result["changed"] is True
    entry = json.loads(path.read_text())["users"]["ec2-user"]
    assert entry == result["entry"]
    assert (entry["state"], entry["retired_at"], entry["retired_by"], entry["grace_days"], entry["delete_after"]) == (
        "retired", "2026-11-26T03:00:00Z", "alice", 14, "2026-12-10T03:00:00Z")
    assert entry["files"] == [{"path": "/home/ec2-user/.aws/credentials", "owner": "ec2-user", "group": "ec2-user",
                               "mode": "0600"}]
    assert (entry["key_ids"], entry["iam_users"], entry["escrow_secret"], entry["proven_prefixes"]) == (
        [KEY], {KEY: "legacy-dump"}, ESCROW, ["s3://dumps/basis_"])
    assert json.loads(path.read_text())["events"] == [result["event"]]
    assert result["event"] == {"at": "2026-11-26T03:00:00Z", "by": "alice", "action": "retired", "user": "ec2-user",
                               "key_ids": [KEY], "escrow_secret": ESCROW}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_check_mode_writes_nothing_and_the_diff_shows_the_entry(path):
    result = record(path, "retired", check=True, details=DETAILS, grace_days=14)
    assert result["changed"] is True and not path.exists()
    assert '"delete_after": "2026-12-10T03:00:00Z"' in result["diff"]["after"]
    assert '"ec2-user"' not in result["diff"]["before"]


def test_rollback_and_deletion_need_a_retired_key(path):
    refused = record(path, "rolled_back")
    assert refused["failed"] and "the key of ec2-user is not in the ledger: it cannot be recorded rolled_back" in (
        refused["msg"])
    record(path, "retired", details=DETAILS, grace_days=14)
    back = record(path, "rolled_back", now="2026-11-27T00:00:00Z")
    assert (back["entry"]["state"], back["entry"]["rolled_back_at"], back["entry"]["retired_at"]) == (
        "rolled_back", "2026-11-27T00:00:00Z", "2026-11-26T03:00:00Z")
    assert record(path, "deleted")["failed"]
    record(path, "retired", details=DETAILS, grace_days=0, now="2026-11-28T00:00:00Z")
    gone = record(path, "deleted", now="2026-11-28T00:00:01Z")
    assert gone["entry"]["state"] == "deleted" and gone["entry"]["deleted_by"] == "alice"
    ledger = json.loads(path.read_text())
    assert [e["action"] for e in ledger["events"]] == ["retired", "rolled_back", "retired", "deleted"]


def test_a_retirement_needs_its_details(path):
    result = record(path, "retired", details={"key_ids": [KEY]}, grace_days=14)
    assert result["failed"] and "escrow_secret" in result["msg"] and not path.exists()
    result = record(path, "retired", details=DETAILS, grace_days=14, now="yesterday")
    assert result["failed"] and "not a UTC time such as 2026-01-31T00:00:00Z" in result["msg"]


def test_a_ledger_of_an_earlier_release_loads_and_gets_a_version(path):
    path.write_text(json.dumps(EARLIER))
    read = info(path)
    assert read["ledger"]["version"] == 1 and read["ledger"]["users"]["ec2-user"]["state"] == "rolled_back"
    record(path, "retired", details=DETAILS, grace_days=14)
    ledger = json.loads(path.read_text())
    assert ledger["version"] == 1 and len(ledger["events"]) == 3


@pytest.mark.parametrize("content, message", [
    ({"version": 2, "users": {}, "events": []}, "has version 2, this collection reads version 1: upgrade"),
    ({"events": []}, "has no 'users' object: restore it from a backup"),
    ({"version": 1, "users": {"ec2-user": {}}, "events": []}, "the entry of user 'ec2-user' has no state"),
    ("{not json", "is not valid JSON"),
])
def test_a_ledger_it_cannot_read_is_refused_with_the_cause(path, content, message):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    for result in (info(path), record(path, "retired", details=DETAILS, grace_days=14)):
        assert result["failed"] and message in result["msg"], result["msg"]
    assert path.read_text() == (content if isinstance(content, str) else json.dumps(content))


def test_info_returns_users_per_state_and_those_past_their_grace_period(path):
    assert info(path)["ledger"] == {"version": 1, "users": {}, "events": []}
    record(path, "retired", details=DETAILS, grace_days=14)
    within = info(path, now="2026-12-10T02:59:59Z")
    assert [i["key"] for i in within["retired"]] == ["ec2-user"] and within["due"] == [] and within["deleted"] == []
    over = info(path, now="2026-12-10T03:00:00Z")
    assert [(i["key"], i["value"]["escrow_secret"]) for i in over["due"]] == [("ec2-user", ESCROW)]
    assert over["changed"] is False
