# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The phase model of a job's cutover and the gates on its moves.

::

    legacy ──► parallel ──► cutover ──► retired
      ▲           ▲ │          │ │
      │           │ └──────────┘ │      forward moves are gated, one step at a time;
      └───────────┴──────────────┘      rollbacks (cutover→parallel, parallel→legacy,
                                        cutover→legacy) are always allowed

- ``parallel → cutover``: ``min_validated_days`` distinct days whose latest compare verdict is
  ``identical`` or ``equivalent``, the most recent verdict neither ``different`` nor
  ``incomplete``, and no other job entered ``cutover`` less than ``soak_days`` ago (and is still
  in cutover or retired).
- ``cutover → retired``: successful production runs on ``min_validated_days`` distinct days, and
  the most recent production run not failed.
- Only fresh evidence counts: verdicts recorded since the job's latest entry into ``parallel``,
  production runs recorded since its latest entry into ``cutover``. A rollback and a new move
  forward start the count again.
- Skipping a phase (e.g. ``legacy → cutover``) and leaving ``retired`` are refused; ``force``
  does not change that. ``force`` (with a reason) overrides the gates above, and the ledger
  records which ones.

Pure functions over the ledger dict (see cutover_ledger)."""

from __future__ import annotations

import datetime as dt

from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils.errors import (
    GateRefusedError,
    InvalidOptionError,
    TransitionRefusedError,
)

PHASES = ("legacy", "parallel", "cutover", "retired")
FORWARD = (("legacy", "parallel"), ("parallel", "cutover"), ("cutover", "retired"))
ROLLBACK = (("cutover", "parallel"), ("parallel", "legacy"), ("cutover", "legacy"))
HOW_TO_FORCE = "or set force: true with a reason to override (recorded in the ledger)"


def classify(current: str, target: str) -> str:
    """``stay``, ``forward`` or ``rollback``; TransitionRefusedError for any other move."""
    for phase in (current, target):
        if phase not in PHASES:
            raise InvalidOptionError(f"phase {phase!r} is not one of {', '.join(PHASES)}")
    if current == target:
        return "stay"
    if (current, target) in FORWARD:
        return "forward"
    if (current, target) in ROLLBACK:
        return "rollback"
    if current == "retired":
        raise TransitionRefusedError(f"the job is retired, which is final: its legacy line was removed and its script "
                                     f"archived; to run it again set it up by hand (see the ledger's 'archived' "
                                     f"entry), there is no move from retired to {target}")
    if target == "retired":
        raise TransitionRefusedError(f"the job is in {current}, and retired is reached only from cutover: "
                                     "move it to cutover first (and let it run in production)")
    nxt = PHASES[PHASES.index(current) + 1]
    raise TransitionRefusedError(f"{current} -> {target} skips a phase: move the job to {nxt} first; each phase is "
                                 "validated before the next, force does not skip phases")


def gate_problems(ledger: dict, job: str, current: str, target: str, now: dt.datetime,
                  min_validated_days: int, soak_days: int) -> list:
    """What is missing for the move, one sentence each with how to supply it (empty: gates pass)."""
    if min_validated_days < 1:
        raise InvalidOptionError(f"min_validated_days is {min_validated_days}: it must be 1 or more")
    if soak_days < 0:
        raise InvalidOptionError(f"soak_days is {soak_days}: it must be 0 or more")
    if (current, target) == ("parallel", "cutover"):
        return _validation_problems(ledger, job, min_validated_days) + _soak_problems(ledger, job, now, soak_days)
    if (current, target) == ("cutover", "retired"):
        return _production_problems(ledger, job, min_validated_days)
    return []


def _days(dates: list) -> str:
    return ", ".join(dates) if dates else "none"


# The phase whose latest entry starts the count of each phase's evidence: a job in parallel
# counts the compares since it (last) entered parallel; a job in cutover, and a retired one
# (whose gate was passed in cutover), the production runs since it last entered cutover.
EVIDENCE_PHASE = {"legacy": "legacy", "parallel": "parallel", "cutover": "cutover", "retired": "cutover"}


def _since_text(ledger: dict, job: str, phase: str, since: str | None) -> str:
    """``since its return to parallel at T`` (how fresh evidence is counted), empty without a record."""
    if since is None:
        return ""
    if ledger_mod.returns(ledger, job, phase) > 1:
        return f" since its return to {phase} at {since}"
    return f" since its entry into {phase} at {since}"


def _latest_text(entry: dict | None, key: str) -> str:
    return f"{entry['date']}: {entry[key]}" if entry else "none"


def _validation_problems(ledger: dict, job: str, needed: int) -> list:
    problems = []
    since = ledger_mod.entered(ledger, job, "parallel")
    days = ledger_mod.validated_days(ledger, job, since)
    latest = ledger_mod.latest_verdict(ledger, job, since)
    stale = "; verdicts recorded before that do not count" if since is not None else ""
    if len(days) < needed:
        problems.append(f"validated-days gate: job {job} has {len(days)} validated day(s) ({_days(days)})"
                        f"{_since_text(ledger, job, 'parallel', since)} of the {needed} needed (min_validated_days; "
                        f"latest verdict {_latest_text(latest, 'verdict')}{stale}): record identical or equivalent "
                        "compares for more days with jram.dumphost.dump_compare")
    if latest and latest["verdict"] == "different":
        problems.append(f"latest-verdict gate: the most recent compare of job {job} ({latest['date']}) is "
                        "'different': find and fix the difference, then record a new compare")
    elif latest and latest["verdict"] == "incomplete":
        problems.append(f"latest-verdict gate: the most recent compare of job {job} ({latest['date']}) is "
                        "'incomplete' (the legacy or the new object of that day is missing or truncated): let both "
                        "run and record the compare of a complete day")
    return problems


def _soak_problems(ledger: dict, job: str, now: dt.datetime, soak_days: int) -> list:
    problems = []
    soak = dt.timedelta(days=soak_days)
    for other, entered in sorted(ledger_mod.cutover_entries(ledger)):
        if other != job and now - entered < soak:
            until = ledger_mod.utc_stamp(entered + soak)
            problems.append(f"soak gate: job {other} entered cutover at {ledger_mod.utc_stamp(entered)}, less than "
                            f"soak_days={soak_days} ago: wait until {until} so one change is observed at a time")
    return problems


def _production_problems(ledger: dict, job: str, needed: int) -> list:
    problems = []
    since = ledger_mod.entered(ledger, job, "cutover")
    days = ledger_mod.production_run_days(ledger, job, since)
    latest = ledger_mod.latest_production_run(ledger, job, since)
    stale = "; runs recorded before that do not count" if since is not None else ""
    if len(days) < needed:
        problems.append(f"production-runs gate: job {job} has successful production runs on {len(days)} day(s) "
                        f"({_days(days)}){_since_text(ledger, job, 'cutover', since)} of the {needed} needed "
                        f"(min_validated_days; latest run {_latest_text(latest, 'status')}{stale}): let it run in "
                        "cutover and record its runs in the ledger (jram.dumphost.dump_compare with record_run: "
                        "true, or cutover_ledger.record_run)")
    if latest and latest["status"] != "ok":
        problems.append(f"latest-run gate: the most recent production run of job {job} ({latest['date']}) failed: "
                        "fix it and let it run successfully first")
    return problems


def evidence(ledger: dict, job: str) -> dict:
    """What counts now for the job's next gate, as data (the status table prints it): the phase,
    when its count started (the latest entry into the phase that gathers it), the validated days
    and latest verdict, the successful production days and latest production run, and how many
    verdicts and runs the ledger holds from before that start (which no longer count)."""
    record = ledger.get("jobs", {}).get(job, {})
    phase = record.get("phase") or "legacy"
    since = ledger_mod.entered(ledger, job, EVIDENCE_PHASE.get(phase, phase))
    verdict = ledger_mod.latest_verdict(ledger, job, since)
    run = ledger_mod.latest_production_run(ledger, job, since)
    verdicts = record.get("verdicts", [])
    runs = [entry for entry in record.get("runs", []) if entry.get("mode") == "production"]
    return {
        "job": job,
        "phase": phase,
        "phase_since": record.get("phase_since"),
        "counting_from": since,
        "validated_days": ledger_mod.validated_days(ledger, job, since),
        "latest_verdict": {"date": verdict["date"], "verdict": verdict["verdict"]} if verdict else None,
        "production_days": ledger_mod.production_run_days(ledger, job, since),
        "latest_production_run": {"date": run["date"], "status": run["status"]} if run else None,
        "stale_verdicts": len(verdicts) - len(ledger_mod.fresh(verdicts, since)),
        "stale_runs": len(runs) - len(ledger_mod.fresh(runs, since)),
    }


def check_gates(ledger: dict, job: str, current: str, target: str, now: dt.datetime, min_validated_days: int,
                soak_days: int, force: bool, reason: str | None) -> list:
    """The gate problems that ``force`` overrides (empty when none were in the way).

    Raises GateRefusedError when a gate fails and force is off."""
    problems = gate_problems(ledger, job, current, target, now, min_validated_days, soak_days)
    if problems and not force:
        raise GateRefusedError(f"{current} -> {target} of job {job} refused: " + "; ".join(problems)
                               + f"; {HOW_TO_FORCE}")
    if problems and not (reason or "").strip():
        raise InvalidOptionError("force: true needs a reason: say why the gate is overridden (it is recorded)")
    return problems


STATUS_COLUMNS = ("job", "phase", "since", "counting_from", "validated", "last_validated", "last_verdict",
                  "verdict_day", "prod_runs_ok")
_ROW = "%-16s  %-9s  %-20s  %-20s  %-9s  %-14s  %-12s  %-11s  %s"


def status_table(ledger: dict, jobs: list, predicted: dict | None = None) -> list:
    """The per-job status table, one string a row: for the jobs given and those the ledger knows,
    the evidence that counts now (:func:`evidence`). ``predicted`` maps jobs to the phase a check
    run would move them to, shown with a ``*``. Values hold no single space, so that output
    callbacks that wrap long lines keep each row whole."""
    predicted = predicted or {}
    rows = [_ROW % STATUS_COLUMNS]
    for job in sorted(set(jobs) | set(ledger.get("jobs", {}))):
        found = evidence(ledger, job)
        phase = f"{predicted[job]}*" if job in predicted else found["phase"]
        verdict = found["latest_verdict"] or {}
        good = found["validated_days"]
        rows.append(_ROW % (job, phase, found["phase_since"] or "-", found["counting_from"] or "-", len(good),
                            good[-1] if good else "-", verdict.get("verdict", "-"), verdict.get("date", "-"),
                            len(found["production_days"])))
    return rows
