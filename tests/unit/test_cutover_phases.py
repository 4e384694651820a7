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
    assert problems == ["job datatransit has 0 validated day(s) (none) of the 2 needed (min_validated_days): record "
                        "identical or equivalent compares for more days with jram.dumphost.dump_compare"]
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
    assert problem == ("job contract_status entered cutover at 2026-11-24T18:00:00Z, less than soak_days=2 ago: "
                       "wait until 2026-11-26T18:00:00Z so one change is observed at a time")
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
    assert problems == ["the most recent production run of job j (2026-11-26) failed: fix it and let it run "
                        "successfully first"]
    lg.record_run(ledger, "j", "2026-11-26", "ok", when=NOW)
    assert ph.gate_problems(ledger, "j", "cutover", "retired", NOW, 2, 2) == []


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
