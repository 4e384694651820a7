"""dumphost_ledgers_info's main(), driven as Ansible drives it, on ledgers under a temporary
directory: the cutover ledger written by cutover_ledger's own functions, the key-retirement
ledger in the shape roles/static_keys writes (docs/static_keys.md). Shown here: each job's phase
and whether its latest move was a rollback, the production jobs and the retired keys come back as
data (the same in check mode), the one-line refusals of phase 3 and phase 1 name what blocks
them and the order to follow, and a ledger this collection cannot read fails with the cause."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.modules import dumphost_ledgers_info
from sandboxtest import run_module

T0 = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.timezone.utc)
KEY = "AKIAIOSFODNN7EXAMPLE"


class Host:
    def __init__(self, root: Path):
        self.cutover = root / "cutover.json"
        self.keys = root / "static_keys.json"
        self.log = root / "forced_rollbacks.log"

    def args(self) -> dict:
        return {"cutover_ledger": str(self.cutover), "static_keys_ledger": str(self.keys), "forced_log": str(self.log)}

    def moves(self, *moves: tuple[str, str | None, str]) -> None:
        ledger = lg.load(str(self.cutover))
        for hours, (job, source, target) in enumerate(moves):
            lg.record_transition(ledger, job, source, target, T0 + dt.timedelta(hours=hours), "alice",
                                 reason="window" if target == "legacy" else None)
        lg.write(str(self.cutover), ledger)

    def key_state(self, state: str) -> None:
        entry = {"state": state, "key_ids": [KEY], "iam_users": {KEY: "legacy-dump"},
                 "escrow_secret": f"jram-dumphost/escrow/ec2-user/{KEY}", "retired_at": "2026-11-26T03:00:00Z",
                 "retired_by": "alice", "grace_days": 14, "delete_after": "2026-12-10T03:00:00Z",
                 "files": [{"path": "/home/ec2-user/.aws/credentials", "owner": "ec2-user", "group": "ec2-user",
                            "mode": "0600"}]}
        if state == "deleted":
            entry["deleted_at"] = "2026-12-10T04:00:00Z"
        self.keys.write_text(json.dumps({"version": 1, "users": {"ec2-user": entry},
                                         "events": [{"action": "retired", "user": "ec2-user"}]}))


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def run(host, check=False) -> dict:
    return run_module(dumphost_ledgers_info.main, host.args(), check=check, diff=False)


def test_no_ledger_yet_is_nothing_moved_and_nothing_retired(host):
    result = run(host)
    assert result["changed"] is False
    assert (result["jobs"], result["phases"], result["past_legacy"], result["production_jobs"]) == ({}, {}, False, [])
    assert result["keys"] == {"retired": False, "users": {}, "retired_users": [], "deleted_users": [], "key_ids": []}
    assert result["refusals"] == {"phase3": None, "phase1": None}
    assert result["forced_rollbacks"] == []
    assert not host.cutover.exists() and not host.keys.exists()


def test_phases_latest_moves_and_rollbacks_come_back_as_data_in_check_mode_too(host):
    host.moves(("basis", "legacy", "parallel"), ("contract_status", "legacy", "parallel"),
               ("schema_weekly", None, "parallel"), ("basis", "parallel", "cutover"),
               ("contract_status", "parallel", "cutover"), ("contract_status", "cutover", "legacy"))
    before = host.cutover.read_bytes()
    for check in (True, False):
        result = run(host, check=check)
        assert result["changed"] is False
        assert result["phases"] == {"basis": "cutover", "contract_status": "legacy", "schema_weekly": "parallel"}
        assert result["rolled_back_jobs"] == ["contract_status"]
        status = result["jobs"]["contract_status"]
        assert status["rolled_back"] is True and status["phase_since"] == "2026-11-25T06:00:00Z"
        assert status["latest_move"] == {"time": "2026-11-25T06:00:00Z", "from": "cutover", "to": "legacy",
                                         "kind": "rollback", "forced": False, "reason": "window", "by": "alice"}
        assert result["jobs"]["basis"]["latest_move"]["kind"] == "forward"
        assert result["jobs"]["schema_weekly"]["latest_move"]["kind"] == "stay"  # first record, from unknown
        assert (result["past_legacy"], result["jobs_past_legacy"]) == (True, ["basis", "schema_weekly"])
        assert (result["jobs_in_cutover"], result["jobs_retired"], result["production_jobs"]) == (
            ["basis"], [], ["basis"])
    assert host.cutover.read_bytes() == before


def test_end_state_refuses_phase_3_and_phase_1_naming_keys_jobs_and_the_order(host):
    host.moves(("basis", "legacy", "parallel"), ("contract_status", "legacy", "parallel"),
               ("basis", "parallel", "cutover"), ("contract_status", "parallel", "cutover"),
               ("schema_weekly", "legacy", "parallel"), ("schema_weekly", "parallel", "cutover"),
               ("schema_weekly", "cutover", "retired"))
    host.key_state("retired")
    result = run(host)
    assert result["keys"]["retired"] is True
    assert (result["keys"]["retired_users"], result["keys"]["key_ids"]) == (["ec2-user"], [KEY])
    assert result["keys"]["users"]["ec2-user"]["iam_users"] == {KEY: "legacy-dump"}
    assert result["production_jobs"] == ["basis", "contract_status", "schema_weekly"]
    log = str(host.log)
    assert result["refusals"]["phase3"] == (
        f"rollback of phase 3 refused: the static key(s) of ec2-user ({KEY}) are retired; job(s) basis, "
        "contract_status are in cutover; job(s) schema_weekly is retired, and without the instance role they have "
        "no AWS credentials. Roll back in this order: playbooks/rollback.yml -e phase=keys, then -e job=NAME "
        "-e to=parallel (or legacy) for basis, contract_status, then -e phase=3 (retired job(s) schema_weekly cannot "
        f"go back (retired is final)); or pass -e force_reason='why' to detach anyway (recorded in {log}). "
        "Nothing was changed.")
    assert result["refusals"]["phase1"] == (
        "rollback of phase 1 refused: job(s) basis (cutover), contract_status (cutover), schema_weekly (retired) are "
        "past legacy and run on the role and the secret phase 1 created (its deadline alarms watch basis, "
        "contract_status, schema_weekly). "
        "Roll back in this order: playbooks/rollback.yml -e phase=keys, then -e job=NAME -e to=legacy for basis, "
        "contract_status, then -e phase=3, then -e phase=1 (retired job(s) schema_weekly cannot go back (retired is "
        f"final)); or pass -e force_reason='why' to delete anyway (recorded in {log}; the deadline alarms of jobs in "
        "cutover or retired are kept). Nothing was changed.")
    assert "\n" not in result["refusals"]["phase3"] + result["refusals"]["phase1"]


def test_after_the_documented_order_the_refusals_go_away(host):
    host.moves(("basis", "legacy", "parallel"), ("basis", "parallel", "cutover"))
    host.key_state("retired")
    assert run(host)["refusals"]["phase3"].startswith("rollback of phase 3 refused: the static key(s) of ec2-user")

    host.key_state("rolled_back")
    result = run(host)
    assert result["keys"]["retired"] is False and result["keys"]["users"]["ec2-user"]["state"] == "rolled_back"
    assert result["refusals"]["phase3"].startswith("rollback of phase 3 refused: job(s) basis is in cutover, and")
    assert "-e phase=keys" not in result["refusals"]["phase3"]

    host.moves(("basis", "cutover", "parallel"))
    result = run(host)
    assert result["refusals"]["phase3"] is None  # a job in parallel writes to the test prefix only
    assert result["refusals"]["phase1"].startswith("rollback of phase 1 refused: job(s) basis (parallel) is past "
                                                   "legacy and run on the role and the secret phase 1 created. Roll "
                                                   "back in this order: -e job=NAME -e to=legacy for basis, then "
                                                   "-e phase=3, then -e phase=1;")
    assert "alarms" not in result["refusals"]["phase1"]

    host.moves(("basis", "parallel", "legacy"))
    assert run(host)["refusals"] == {"phase3": None, "phase1": None}


def test_keys_deleted_after_the_grace_period_block_phase_3_with_no_rollback_to_follow(host):
    host.key_state("deleted")
    result = run(host)
    assert (result["keys"]["retired"], result["keys"]["deleted_users"], result["keys"]["retired_users"]) == (
        True, ["ec2-user"], [])
    line = result["refusals"]["phase3"]
    assert line.startswith(f"rollback of phase 3 refused: the static key(s) of ec2-user ({KEY}) were deleted after "
                           "their grace period, and without the instance role")
    assert "-e phase=keys" not in line
    assert "Roll back in this order: -e phase=3 (deleted keys cannot be restored (create a new key for IAM user(s) "\
           "legacy-dump by hand)); or pass -e force_reason='why'" in line
    assert result["refusals"]["phase1"] is None


def test_forced_rollbacks_are_read_back_from_the_log(host):
    entries = [{"time": "2026-11-29T04:00:00Z", "phase": "3", "by": "alice", "reason": "host replaced",
                "overridden": "rollback of phase 3 refused: ..."},
               {"time": "2026-11-29T05:00:00Z", "phase": "1", "by": "bob", "reason": "decommission",
                "overridden": "rollback of phase 1 refused: ..."}]
    host.log.write_text("".join(json.dumps(e) + "\n" for e in entries) + "\n")
    assert run(host)["forced_rollbacks"] == entries


@pytest.mark.parametrize("which, text, message", [
    ("cutover", "{not json", r"ledger .*cutover\.json is not valid JSON"),
    ("cutover", '{"version": 9, "jobs": {}}', r"has version 9, this collection reads version 1: upgrade"),
    ("keys", "[]", r"key-retirement ledger .*static_keys\.json has no 'users' object"),
    ("keys", '{"version": 2, "users": {}}', r"has version 2, this collection reads version 1: upgrade"),
    ("keys", '{"version": 1, "users": {"ec2-user": {}}}', r"the entry of user 'ec2-user' has no state"),
    ("log", '{"time": "x"}\nnot json\n', r"forced_rollbacks\.log line 2 is not a JSON object"),
])
def test_a_ledger_it_cannot_read_fails_with_the_cause(host, which, text, message):
    {"cutover": host.cutover, "keys": host.keys, "log": host.log}[which].write_text(text)
    result = run(host)
    assert result["failed"] is True
    assert re.search(message, result["msg"]), result["msg"]
