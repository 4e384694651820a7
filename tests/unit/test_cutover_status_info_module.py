"""cutover_status_info returns, per job, the evidence that counts now and the status table the
cutover playbooks print; it changes nothing and refuses an unreadable ledger in one line."""

from __future__ import annotations

import datetime as dt

from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.modules import cutover_status_info
from sandboxtest import run_module

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def at(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def ledger_after_a_rollback() -> dict:
    ledger = lg.empty()
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(0), "alice")
    lg.record_verdict(ledger, "basis", "2026-12-01", "identical", when=at(10))
    lg.record_verdict(ledger, "basis", "2026-12-02", "identical", when=at(30))
    lg.record_transition(ledger, "basis", "parallel", "cutover", at(40), "alice")
    lg.record_run(ledger, "basis", "2026-12-03", "ok", when=at(50))
    lg.record_transition(ledger, "basis", "cutover", "legacy", at(60), "alice")
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(70), "alice")
    lg.record_verdict(ledger, "basis", "2026-12-04", "incomplete", when=at(80))
    return ledger


def test_the_evidence_and_table_count_from_the_return_to_parallel(tmp_path):
    path = tmp_path / "cutover.json"
    lg.write(str(path), ledger_after_a_rollback())
    before = path.read_bytes()
    for check in (False, True):
        result = run_module(cutover_status_info.main, {"ledger_path": str(path), "jobs": ["basis", "contract_status"]},
                            check=check)
        assert result["changed"] is False
        basis = result["jobs"]["basis"]
        assert basis["counting_from"] == "2026-12-03T22:00:00Z" and basis["validated_days"] == []
        assert basis["latest_verdict"] == {"date": "2026-12-04", "verdict": "incomplete"}
        assert (basis["stale_verdicts"], basis["stale_runs"]) == (2, 1)
        assert result["jobs"]["contract_status"]["phase"] == "legacy"
        header, *rows = result["table"]
        assert header.split() == ["job", "phase", "since", "counting_from", "validated", "last_validated",
                                  "last_verdict", "verdict_day", "prod_runs_ok"]
        assert rows[0].split() == ["basis", "parallel", "2026-12-03T22:00:00Z", "2026-12-03T22:00:00Z", "0", "-",
                                   "incomplete", "2026-12-04", "0"]
        assert rows[1].split() == ["contract_status", "legacy", "-", "-", "0", "-", "-", "-", "0"]
    assert path.read_bytes() == before


def test_predicted_phases_are_starred_and_a_missing_ledger_is_empty(tmp_path):
    result = run_module(cutover_status_info.main, {"ledger_path": str(tmp_path / "none.json"), "jobs": ["basis"],
                                                   "predicted": {"basis": "parallel"}}, check=True)
    assert result["table"][1].split()[:2] == ["basis", "parallel*"]
    assert not (tmp_path / "none.json").exists()


def test_an_unreadable_ledger_fails_in_one_line(tmp_path):
    path = tmp_path / "cutover.json"
    path.write_text("{")
    result = run_module(cutover_status_info.main, {"ledger_path": str(path)})
    assert result["failed"] and "is not valid JSON" in result["msg"] and "\n" not in result["msg"]
