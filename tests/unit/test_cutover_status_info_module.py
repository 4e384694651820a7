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


def test_the_gates_and_target_moves_are_counted_as_cron_cutover_counts_them(tmp_path):
    path = tmp_path / "cutover.json"
    ledger = lg.empty()
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(0), "alice")
    lg.record_verdict(ledger, "basis", "2026-12-01", "identical", when=at(10))
    long_ago = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # its soak time is over
    lg.record_transition(ledger, "old_job", "legacy", "parallel", long_ago, "alice")
    lg.record_transition(ledger, "old_job", "parallel", "cutover", long_ago, "alice", "forced", ["validated-days"])
    lg.write(str(path), ledger)
    result = run_module(cutover_status_info.main, {
        "ledger_path": str(path), "jobs": ["basis", "contract_status"],
        "targets": {"basis": "cutover", "contract_status": "retired", "old_job": "parallel"}}, check=True)
    basis = result["jobs"]["basis"]
    assert (basis["recorded_phase"], basis["current_phase"], basis["phase_source"]) == ("parallel",) * 2 + ("ledger",)
    assert basis["gate"]["to"] == "cutover" and basis["gate"]["open"] is False
    assert len(basis["gate"]["problems"]) == 1 and basis["gate"]["problems"][0].startswith(
        "validated-days gate: job basis has 1 validated day(s) (2026-12-01)")
    assert basis["target"] == {"phase": "cutover", "move": "forward", "refusal": None,
                               "problems": basis["gate"]["problems"]}
    fresh = result["jobs"]["contract_status"]
    assert (fresh["recorded_phase"], fresh["current_phase"], fresh["phase_source"]) == (None, "legacy", "default")
    assert fresh["gate"] == {"to": "parallel", "open": True, "problems": []}
    assert fresh["target"]["move"] == "refused" and "retired is reached only from cutover" in fresh["target"]["refusal"]
    assert result["jobs"]["old_job"]["target"]["move"] == "rollback"
    assert result["jobs"]["old_job"]["gate"]["to"] == "retired"
    assert result["moves"] == {"basis": "cutover", "contract_status": "retired", "old_job": "parallel"}
    assert result["forward_moves"] == [{"job": "basis", "phase": "cutover", "previous_phase": "parallel"}]
    assert result["by_phase"] == {"legacy": ["contract_status"], "parallel": ["basis"], "cutover": ["old_job"],
                                  "retired": []}


def test_forward_only_leaves_the_jobs_the_ledger_has_further_along(tmp_path):
    path = tmp_path / "cutover.json"
    ledger = lg.empty()
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(0), "alice")
    lg.record_transition(ledger, "basis", "parallel", "cutover", at(1), "alice", "forced", ["validated-days"])
    lg.write(str(path), ledger)
    targets = {"basis": "parallel", "contract_status": "parallel"}
    moved = run_module(cutover_status_info.main, {"ledger_path": str(path), "targets": targets, "forward_only": True})
    assert moved["moves"] == {"contract_status": "parallel"}
    every = run_module(cutover_status_info.main, {"ledger_path": str(path), "targets": targets})
    assert every["moves"] == targets


def test_a_job_the_ledger_does_not_know_is_where_its_legacy_line_and_entry_say(tmp_path):
    legacy = tmp_path / "legacy-dumps"
    legacy.write_text("0 21 * * * root /home/u/ggh_contract_status.sh\n"
                      "#jram.dumphost[basis] disabled 2026-12-01T00:00:00Z: 30 5 * * * root /home/u/ggh_basis.sh\n"
                      "0 19 * * 6 root /home/u/ggh_schema.sh\n"
                      "0 20 * * 6 root /home/u/ggh_both.sh\n"
                      "#jram.dumphost[both] disabled 2026-12-01T00:00:00Z: 0 20 * * 6 root /home/u/ggh_both.sh\n")
    cron_dir = tmp_path / "cron.d"
    cron_dir.mkdir()
    (cron_dir / "dumpjob-basis").write_text("30 5 * * * dumpjob /usr/local/bin/dumpjob run basis\n")
    (cron_dir / "dumpjob-schema").write_text("0 19 * * 6 dumpjob /usr/local/bin/dumpjob run schema --parallel\n")
    specs = {job: {"file": str(legacy), "match": f"ggh_{job}.sh"}
             for job in ("contract_status", "basis", "schema", "both")}
    result = run_module(cutover_status_info.main, {
        "ledger_path": str(tmp_path / "cutover.json"), "cron_dir": str(cron_dir), "legacy": specs,
        "targets": {"contract_status": "parallel", "basis": "parallel", "schema": "legacy", "both": "legacy"}},
        check=True)
    jobs = result["jobs"]
    assert {job: (jobs[job]["current_phase"], jobs[job]["phase_source"]) for job in specs} == {
        "contract_status": ("legacy", "host"), "basis": ("cutover", "host"), "schema": ("parallel", "host"),
        "both": (None, "host")}
    assert "has both an active line of job both" in jobs["both"]["host_problem"]
    assert jobs["both"]["target"]["move"] is None and jobs["both"]["gate"]["to"] is None
    assert jobs["basis"]["target"]["move"] == "rollback" and jobs["schema"]["target"]["move"] == "rollback"
    assert result["forward_moves"] == [{"job": "contract_status", "phase": "parallel", "previous_phase": "legacy"}]
    assert jobs["basis"]["phase"] == "legacy"  # the ledger's view, for the table and the evidence


def test_bad_targets_and_legacy_entries_are_refused_in_one_line(tmp_path):
    ledger_path = str(tmp_path / "cutover.json")
    bad_phase = run_module(cutover_status_info.main, {"ledger_path": ledger_path, "targets": {"basis": "done"}})
    assert bad_phase["failed"] and "targets: job basis: phase 'done' is not one of legacy" in bad_phase["msg"]
    bad_legacy = run_module(cutover_status_info.main, {"ledger_path": ledger_path,
                                                       "legacy": {"basis": {"match": "x", "user": "u", "file": "f"}}})
    assert bad_legacy["failed"] and "legacy of job basis needs match" in bad_legacy["msg"]
