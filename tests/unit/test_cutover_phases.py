"""The phase graph allows one forward step at a time and every rollback; the gates say exactly
what is missing and how to supply it; force overrides gates only, and only with a reason."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_phases as ph
from ansible_collections.jram.dumphost.plugins.module_utils.errors import (
    GateRefusedError,
    InvalidOptionError,
    TransitionRefusedError,
)

NOW = dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.timezone.utc)

EXPECTED = {
    ("legacy", "parallel"): "forward", ("parallel", "cutover"): "forward", ("cutover", "retired"): "forward",
    ("cutover", "parallel"): "rollback", ("parallel", "legacy"): "rollback", ("cutover", "legacy"): "rollback",
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(ph.PHASES, repeat=2)))
def test_every_pair_of_phases(current, target):
    if current == target:
        assert ph.classify(current, target) == "stay"
    elif (current, target) in EXPECTED:
        assert ph.classify(current, target) == EXPECTED[(current, target)]
    else:
        with pytest.raises(TransitionRefusedError) as exc:
            ph.classify(current, target)
        message = str(exc.value)
        if current == "retired":
            assert "final" in message and "archived" in message
        elif target == "retired":
            assert "only from cutover" in message
        else:
            assert "skips a phase" in message and "force does not skip phases" in message


def test_legacy_to_cutover_names_the_next_phase():
    with pytest.raises(TransitionRefusedError, match="legacy -> cutover skips a phase: move the job to parallel first"):
        ph.classify("legacy", "cutover")


def test_unknown_phase():
    with pytest.raises(InvalidOptionError, match="not one of legacy, parallel, cutover, retired"):
        ph.classify("legacy", "done")


def validated(*days, verdict="identical", job="datatransit", ledger=None):
    ledger = ledger if ledger is not None else lg.empty()
    for day in days:
        lg.record_verdict(ledger, job, day, verdict, when=NOW)
    return ledger


def test_cutover_without_validations_says_what_is_missing_and_how():
    problems = ph.gate_problems(lg.empty(), "datatransit", "parallel", "cutover", NOW, 2, 2)
    assert problems == ["validated-days gate: job datatransit has 0 validated day(s) (none) of the 2 needed "
                        "(min_validated_days; latest verdict none): record identical or equivalent compares for "
                        "more days with jram.dumphost.dump_compare"]
    with pytest.raises(GateRefusedError) as exc:
        ph.check_gates(lg.empty(), "datatransit", "parallel", "cutover", NOW, 2, 2, False, None)
    assert "refused" in str(exc.value) and "force: true with a reason" in str(exc.value)


def test_one_day_is_not_enough_two_distinct_days_are():
    assert "1 validated day(s) (2026-11-24)" in ph.gate_problems(
        validated("2026-11-24", "2026-11-24"), "datatransit", "parallel", "cutover", NOW, 2, 2)[0]
    ledger = validated("2026-11-24")
    validated("2026-11-25", verdict="equivalent", ledger=ledger)
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2) == []
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 3, 2) != []


def test_latest_verdict_different_blocks_even_with_enough_days():
    ledger = validated("2026-11-22", "2026-11-23")
    validated("2026-11-24", verdict="different", ledger=ledger)
    (problem,) = ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2)
    assert "most recent compare of job datatransit (2026-11-24) is 'different'" in problem
    validated("2026-11-25", ledger=ledger)  # fixed and compared again
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2) == []


def test_soak_blocks_a_second_job_and_says_until_when():
    ledger = validated("2026-11-24", "2026-11-25")
    lg.record_transition(ledger, "contract_status", "parallel", "cutover", NOW - dt.timedelta(hours=30), "alice")
    (problem,) = ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2)
    assert problem == ("soak gate: job contract_status entered cutover at 2026-11-24T18:00:00Z, less than "
                       "soak_days=2 ago: wait until 2026-11-26T18:00:00Z so one change is observed at a time")
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 1) == []
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 0) == []
    # the soaking job rolled back: nothing to observe any more
    lg.record_transition(ledger, "contract_status", "cutover", "parallel", NOW, "alice")
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2) == []


def test_soak_ignores_the_job_itself_and_counts_retired_jobs():
    ledger = validated("2026-11-24", "2026-11-25")
    lg.record_transition(ledger, "datatransit", "parallel", "cutover", NOW - dt.timedelta(hours=1), "alice")
    lg.record_transition(ledger, "datatransit", "cutover", "parallel", NOW, "alice")
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2) == []
    lg.record_transition(ledger, "other", "parallel", "cutover", NOW - dt.timedelta(hours=2), "alice")
    lg.record_transition(ledger, "other", "cutover", "retired", NOW - dt.timedelta(hours=1), "alice")
    assert "job other entered cutover" in ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2)[0]


def test_retire_needs_production_runs():
    ledger = lg.empty()
    (problem,) = ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 2, 2)
    assert "successful production runs on 0 day(s) (none) of the 2 needed" in problem and "record_run" in problem
    lg.record_run(ledger, "j", "2026-11-24", "ok", mode="parallel", when=NOW)  # parallel runs do not count
    lg.record_run(ledger, "j", "2026-11-25", "ok", when=NOW)
    assert len(ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 2, 2)) == 1
    lg.record_run(ledger, "j", "2026-11-26", "failed", when=NOW)
    problems = ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 1, 2)
    assert problems == ["latest-run gate: the most recent production run of job j (2026-11-26) failed: fix it "
                        "and let it run successfully first"]
    lg.record_run(ledger, "j", "2026-11-26", "ok", when=NOW)
    assert ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 2, 2) == []


def test_latest_verdict_incomplete_blocks_even_with_enough_days():
    ledger = validated("2026-11-22", "2026-11-23")
    validated("2026-11-24", verdict="incomplete", ledger=ledger)
    (problem,) = ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2)
    assert problem.startswith("latest-verdict gate: the most recent compare of job datatransit (2026-11-24) is "
                              "'incomplete'"), problem
    validated("2026-11-25", ledger=ledger)
    assert ph.gate_problems(ledger, "datatransit", "parallel", "cutover", NOW, 2, 2) == []


def at(hours: float) -> dt.datetime:
    return NOW + dt.timedelta(hours=hours)


def test_verdicts_from_before_a_rollback_do_not_count():
    """cutover -> legacy -> parallel: the days validated before the rollback open no gate; the
    refusal names the return and the latest fresh verdict; new nights open it again."""
    ledger = lg.empty()
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(-100), "alice")
    for day, hours in (("2026-11-20", -90), ("2026-11-21", -80)):
        lg.record_verdict(ledger, "basis", day, "identical", when=at(hours))
    assert ph.gate_problems(ledger, "basis", "parallel", "cutover", at(-70), 2, 2) == []
    lg.record_transition(ledger, "basis", "parallel", "cutover", at(-70), "alice")
    lg.record_transition(ledger, "basis", "cutover", "legacy", at(-60), "alice")
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(-50), "alice")
    (problem,) = ph.gate_problems(ledger, "basis", "parallel", "cutover", NOW, 2, 2)
    assert problem.startswith("validated-days gate: job basis has 0 validated day(s) (none) since its return to "
                              "parallel at 2026-11-23T22:00:00Z of the 2 needed (min_validated_days; latest verdict "
                              "none; verdicts recorded before that do not count)"), problem
    lg.record_verdict(ledger, "basis", "2026-11-24", "incomplete", when=at(-20))
    problems = ph.gate_problems(ledger, "basis", "parallel", "cutover", NOW, 2, 2)
    assert "has 0 validated day(s)" in problems[0] and "latest verdict 2026-11-24: incomplete" in problems[0]
    assert "'incomplete'" in problems[1]
    # the same day compared again after the rollback counts; so does a new one
    lg.record_verdict(ledger, "basis", "2026-11-21", "identical", when=at(-10))
    lg.record_verdict(ledger, "basis", "2026-11-25", "equivalent", when=at(-5))
    assert ph.gate_problems(ledger, "basis", "parallel", "cutover", NOW, 2, 2) == []


def test_production_runs_from_before_a_rollback_do_not_count():
    ledger = lg.empty()
    lg.record_transition(ledger, "j", "parallel", "cutover", at(-100), "alice")
    lg.record_run(ledger, "j", "2026-11-21", "ok", when=at(-90))
    lg.record_run(ledger, "j", "2026-11-22", "ok", when=at(-80))
    lg.record_transition(ledger, "j", "cutover", "parallel", at(-70), "alice")
    lg.record_transition(ledger, "j", "parallel", "cutover", at(-60), "alice", "again", ["soak gate: forced"])
    (problem,) = ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 2, 2)
    assert ("production-runs gate: job j has successful production runs on 0 day(s) (none) since its return to "
            "cutover at 2026-11-23T12:00:00Z of the 2 needed") in problem, problem
    lg.record_run(ledger, "j", "2026-11-23", "ok", when=at(-50))
    lg.record_run(ledger, "j", "2026-11-24", "ok", when=at(-40))
    assert ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 2, 2) == []


def test_a_verdict_of_the_same_second_as_the_move_counts():
    ledger = lg.empty()
    lg.record_transition(ledger, "j", "legacy", "parallel", NOW, "alice")
    validated("2026-11-24", "2026-11-25", job="j", ledger=ledger)
    assert ph.gate_problems(ledger, "j", "parallel", "cutover", NOW, 2, 0) == []


def test_evidence_is_what_the_next_gate_counts():
    ledger = lg.empty()
    assert ph.evidence(ledger, "new")["phase"] == "legacy"
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(-100), "alice")
    lg.record_verdict(ledger, "basis", "2026-11-20", "identical", when=at(-90))
    lg.record_transition(ledger, "basis", "parallel", "legacy", at(-60), "alice")
    lg.record_transition(ledger, "basis", "legacy", "parallel", at(-50), "alice")
    lg.record_verdict(ledger, "basis", "2026-11-24", "identical", when=at(-20))
    lg.record_verdict(ledger, "basis", "2026-11-25", "incomplete", when=at(-10))
    assert ph.evidence(ledger, "basis") == {
        "job": "basis", "phase": "parallel", "phase_since": "2026-11-23T22:00:00Z",
        "counting_from": "2026-11-23T22:00:00Z", "validated_days": ["2026-11-24"],
        "latest_verdict": {"date": "2026-11-25", "verdict": "incomplete"}, "production_days": [],
        "latest_production_run": None, "stale_verdicts": 1, "stale_runs": 0}
    lg.record_transition(ledger, "basis", "parallel", "cutover", at(-5), "alice")
    lg.record_run(ledger, "basis", "2026-11-26", "ok", when=at(-1))
    lg.record_transition(ledger, "basis", "cutover", "retired", NOW, "alice")
    retired = ph.evidence(ledger, "basis")
    assert retired["phase"] == "retired" and retired["counting_from"] == "2026-11-25T19:00:00Z"
    assert retired["production_days"] == ["2026-11-26"]


@pytest.mark.parametrize(("current", "target"), [("legacy", "parallel"), ("cutover", "parallel"),
                                                 ("parallel", "legacy"), ("cutover", "legacy")])
def test_ungated_moves(current, target):
    assert ph.gate_problems(lg.empty(), "j", current, target, NOW, 2, 2) == []


def test_force_overrides_gates_and_returns_what_it_overrode():
    overridden = ph.check_gates(lg.empty(), "j", "parallel", "cutover", NOW, 2, 2, True, "CS needs it today")
    assert len(overridden) == 1 and "0 validated day(s)" in overridden[0]
    with pytest.raises(InvalidOptionError, match="needs a reason"):
        ph.check_gates(lg.empty(), "j", "parallel", "cutover", NOW, 2, 2, True, "  ")
    assert ph.check_gates(validated("2026-11-24", "2026-11-25", job="j"), "j", "parallel", "cutover", NOW, 2, 2,
                          True, "x") == []


def test_bad_thresholds():
    with pytest.raises(InvalidOptionError, match="min_validated_days is 0"):
        ph.gate_problems(lg.empty(), "j", "parallel", "cutover", NOW, 0, 2)
    with pytest.raises(InvalidOptionError, match="soak_days is -1"):
        ph.gate_problems(lg.empty(), "j", "parallel", "cutover", NOW, 2, -1)
