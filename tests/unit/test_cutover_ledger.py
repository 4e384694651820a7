"""The ledger records verdicts, runs and transitions idempotently, answers the gates' questions,
refuses files it cannot trust, and is replaced atomically, 0600, under a lock."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import resource
import signal
import stat
from pathlib import Path

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as lg
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LedgerError

T0 = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.timezone.utc)


def test_record_verdict_is_idempotent_and_a_new_verdict_supersedes():
    ledger = lg.empty()
    assert lg.record_verdict(ledger, "datatransit", "2026-11-24", "identical", {"tables": 12}, T0) is True
    assert lg.record_verdict(ledger, "datatransit", "2026-11-24", "identical", {"tables": 12}, T0) is False
    assert lg.validated_days(ledger, "datatransit") == ["2026-11-24"]
    assert lg.record_verdict(ledger, "datatransit", "2026-11-24", "different", {"tables": 12}, T0) is True
    assert lg.validated_days(ledger, "datatransit") == []  # the latest verdict of the day counts
    assert len(ledger["jobs"]["datatransit"]["verdicts"]) == 2
    entry = ledger["jobs"]["datatransit"]["verdicts"][-1]
    assert entry == {"date": "2026-11-24", "verdict": "different", "details": {"tables": 12},
                     "recorded_at": "2026-11-25T23:00:00Z"}


def test_the_same_record_after_a_phase_change_is_recorded_again_and_counts_from_then():
    t0 = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    ledger = lg.empty()
    lg.record_transition(ledger, "j", "legacy", "parallel", t0, "alice")
    assert lg.record_verdict(ledger, "j", "2026-11-21", "identical", when=t0 + dt.timedelta(days=1))
    lg.record_transition(ledger, "j", "parallel", "legacy", t0 + dt.timedelta(days=2), "alice")
    lg.record_transition(ledger, "j", "legacy", "parallel", t0 + dt.timedelta(days=3), "alice")
    since = lg.entered(ledger, "j", "parallel")
    assert since == "2026-11-23T00:00:00Z"
    assert lg.returns(ledger, "j", "parallel") == 2 and lg.entered(ledger, "j", "cutover") is None
    assert lg.validated_days(ledger, "j") == ["2026-11-21"] and lg.validated_days(ledger, "j", since) == []
    assert lg.record_verdict(ledger, "j", "2026-11-21", "identical", when=t0 + dt.timedelta(days=4))
    assert not lg.record_verdict(ledger, "j", "2026-11-21", "identical", when=t0 + dt.timedelta(days=4))
    assert lg.validated_days(ledger, "j", since) == ["2026-11-21"]


def test_production_runs_are_not_recorded_again_after_the_retirement():
    """Recording the same run again after cutover -> retired (an idempotence re-run) is a no-op:
    the retirement does not restart the count of production runs."""
    t0 = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)
    ledger = lg.empty()
    lg.record_transition(ledger, "j", "parallel", "cutover", t0, "alice")
    assert lg.record_run(ledger, "j", "2026-11-21", "ok", when=t0 + dt.timedelta(days=1))
    lg.record_transition(ledger, "j", "cutover", "retired", t0 + dt.timedelta(days=2), "alice")
    assert not lg.record_run(ledger, "j", "2026-11-21", "ok", when=t0 + dt.timedelta(days=3))
    lg.record_transition(ledger, "k", "legacy", "parallel", t0, "alice")
    assert lg.record_verdict(ledger, "k", "2026-11-21", "identical", when=t0 + dt.timedelta(days=1))
    lg.record_transition(ledger, "k", "parallel", "cutover", t0 + dt.timedelta(days=2), "alice")
    assert not lg.record_verdict(ledger, "k", "2026-11-21", "identical", when=t0 + dt.timedelta(days=3))


def test_validated_days_are_distinct_days_with_good_verdicts():
    ledger = lg.empty()
    lg.record_verdict(ledger, "j", "2026-11-22", "identical", when=T0)
    lg.record_verdict(ledger, "j", "2026-11-22", "identical", {"again": True}, when=T0)
    lg.record_verdict(ledger, "j", "2026-11-23", "incomplete", when=T0)
    lg.record_verdict(ledger, "j", "2026-11-24", "equivalent", when=T0)
    assert lg.validated_days(ledger, "j") == ["2026-11-22", "2026-11-24"]
    assert lg.validated_days(ledger, "other") == []


def test_latest_verdict_is_by_date_not_by_recording_order():
    ledger = lg.empty()
    lg.record_verdict(ledger, "j", "2026-11-24", "different", when=T0)
    lg.record_verdict(ledger, "j", "2026-11-20", "identical", when=T0)  # back-dated, recorded later
    assert lg.latest_verdict(ledger, "j")["verdict"] == "different"
    assert lg.latest_verdict(lg.empty(), "j") is None


def test_record_run_and_production_days():
    ledger = lg.empty()
    assert lg.record_run(ledger, "j", "2026-11-26", "ok", when=T0) is True
    assert lg.record_run(ledger, "j", "2026-11-26", "ok", when=T0) is False
    assert lg.record_run(ledger, "j", "2026-11-26", "ok", mode="parallel", when=T0) is True
    assert lg.record_run(ledger, "j", "2026-11-27", "failed", when=T0) is True
    assert lg.production_run_days(ledger, "j") == ["2026-11-26"]
    assert lg.latest_production_run(ledger, "j")["status"] == "failed"
    assert lg.record_run(ledger, "j", "2026-11-27", "ok", when=T0) is True  # re-run succeeded
    assert lg.production_run_days(ledger, "j") == ["2026-11-26", "2026-11-27"]


@pytest.mark.parametrize(("call", "needle"), [
    (lambda ledger: lg.record_verdict(ledger, "j", "2026-11-31", "identical"), "not a calendar date"),
    (lambda ledger: lg.record_verdict(ledger, "j", "26-11-24", "identical"), "not YYYY-MM-DD"),
    (lambda ledger: lg.record_verdict(ledger, "j", "2026-11-24", "same"), "not one of identical, equivalent"),
    (lambda ledger: lg.record_run(ledger, "j", "2026-11-24", "success"), "not one of ok, failed"),
    (lambda ledger: lg.record_run(ledger, "j", "2026-11-24", "ok", mode="test"), "not one of production, parallel"),
])
def test_bad_records_are_refused_without_change(call, needle):
    ledger = lg.empty()
    with pytest.raises(InvalidOptionError, match=needle):
        call(ledger)
    assert ledger == lg.empty()


def test_record_transition_sets_the_phase():
    ledger = lg.empty()
    entry = lg.record_transition(ledger, "j", "parallel", "cutover", T0, "alice", "CS needs it", ["gate"])
    assert entry == {"time": "2026-11-25T23:00:00Z", "job": "j", "from": "parallel", "to": "cutover", "forced": True,
                     "overridden": ["gate"], "reason": "CS needs it", "controller_user": "alice"}
    assert lg.current_phase(ledger, "j") == "cutover"
    assert ledger["jobs"]["j"]["phase_since"] == "2026-11-25T23:00:00Z"
    assert lg.cutover_entries(ledger) == [("j", T0)]
    lg.record_transition(ledger, "j", "cutover", "parallel", T0, "alice")
    assert lg.cutover_entries(ledger) == []  # rolled back: no longer soaking


def test_load_missing_is_empty_and_write_is_0600_round_trip(tmp_path):
    path = str(tmp_path / "sub" / "cutover.json")
    assert lg.load(path) == lg.empty()
    ledger = lg.empty()
    lg.record_verdict(ledger, "ジョブ", "2026-11-24", "identical", {"note": "日本語"}, T0)
    lg.write(path, ledger)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert lg.load(path) == ledger
    assert os.listdir(tmp_path / "sub") == ["cutover.json"]  # no temporary left behind


@pytest.mark.parametrize(("content", "needle"), [
    ("{not json", "not valid JSON"),
    ("[]", "not a cutover ledger"),
    ('{"version": 2, "jobs": {}}', "has version 2"),
    ('{"version": 1, "jobs": {"j": {"verdicts": {}}}}', "entry of job 'j' is malformed"),
])
def test_untrusted_ledgers_are_refused(tmp_path, content, needle):
    path = tmp_path / "cutover.json"
    path.write_text(content)
    with pytest.raises(LedgerError, match=needle) as exc:
        lg.load(str(path))
    assert str(path) in str(exc.value)


def _write_big_with_file_size_limit(path: str, queue) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    ledger = lg.empty()
    for day in range(1, 29):
        lg.record_verdict(ledger, "j", f"2026-02-{day:02d}", "identical", {"pad": "x" * 200}, T0)
    try:
        lg.write(path, ledger)
    except LedgerError as exc:
        queue.put(str(exc))
        return
    queue.put("written")


def test_a_failed_write_leaves_the_previous_ledger_whole(tmp_path):
    path = str(tmp_path / "cutover.json")
    ledger = lg.empty()
    lg.record_verdict(ledger, "j", "2026-11-24", "identical", when=T0)
    lg.write(path, ledger)
    before = Path(path).read_bytes()
    queue = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(target=_write_big_with_file_size_limit, args=(path, queue))
    proc.start()
    proc.join(30)
    outcome = queue.get(timeout=5)
    assert outcome.startswith(f"cannot write ledger {path}"), outcome  # the disk "filled up" mid-write
    assert Path(path).read_bytes() == before
    assert os.listdir(tmp_path) == ["cutover.json"]


def _append_under_lock(path: str, worker: int, count: int) -> None:
    for i in range(count):
        with lg.locked(path):
            ledger = lg.load(path)
            lg.record_run(ledger, f"job{worker}", f"2026-01-{i + 1:02d}", "ok", when=T0)
            lg.write(path, ledger)


def test_concurrent_writers_under_the_lock_lose_nothing(tmp_path):
    path = str(tmp_path / "cutover.json")
    lg.write(path, lg.empty())
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_under_lock, args=(path, worker, 15)) for worker in range(6)]
    for proc in procs:
        proc.start()
    # a reader meanwhile always sees a whole JSON document
    while any(proc.is_alive() for proc in procs):
        json.loads(Path(path).read_text())
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0
    ledger = lg.load(path)
    assert sum(len(record["runs"]) for record in ledger["jobs"].values()) == 90


def test_lock_on_a_missing_directory_is_a_no_op(tmp_path):
    with lg.locked(str(tmp_path / "missing" / "cutover.json")):
        pass
