# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cutover ledger: each job's phase, every transition, compare verdicts and production runs.

One JSON file on the host (``/var/lib/dumpjob/cutover.json``, root 0600)::

    {"version": 1,
     "jobs": {"<job>": {"phase": "parallel", "phase_since": "2026-11-25T23:26:04Z",
                        "transitions": [{"time": ..., "job": ..., "from": "legacy", "to": "parallel",
                                         "forced": false, "overridden": [], "reason": null,
                                         "controller_user": "alice"}],
                        "verdicts": [{"date": "2026-11-24", "verdict": "identical",
                                      "details": {...}, "recorded_at": ...}],
                        "runs": [{"date": "2026-11-26", "mode": "production", "status": "ok",
                                  "details": {...}, "recorded_at": ...}],
                        "archived": [{"source": ..., "archive": ..., "sha256": ..., ...}]}}}

The ``record_*`` functions change a ledger dict in place and say whether they changed it; the
gates read it through the query functions, which given ``since`` (the job's latest entry into its
phase, :func:`entered`) count only the verdicts and runs recorded at or after it. File access is
limited to :func:`load`, :func:`write` (atomic: a temporary file in the same directory, fsync,
rename) and :func:`locked`."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re

from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LedgerError
from ansible_collections.jram.dumphost.plugins.module_utils.host_files import atomic_write

VERSION = 1
DEFAULT_PATH = "/var/lib/dumpjob/cutover.json"
VERDICTS = ("identical", "equivalent", "different", "incomplete")
GOOD_VERDICTS = ("identical", "equivalent")
RUN_MODES = ("production", "parallel")
RUN_STATUSES = ("ok", "failed")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utc_stamp(when: dt.datetime) -> str:
    """A UTC time as the ledger and the markers write it: ``2026-11-25T23:26:04Z``."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def empty() -> dict:
    return {"version": VERSION, "jobs": {}}


def _job(ledger: dict, job: str) -> dict:
    record = ledger["jobs"].setdefault(job, {})
    for key in ("transitions", "verdicts", "runs"):
        record.setdefault(key, [])
    return record


def _view(ledger: dict, job: str) -> dict:
    return ledger.get("jobs", {}).get(job, {})


def current_phase(ledger: dict, job: str) -> str | None:
    """The phase the ledger last recorded for the job (None: never moved by the module)."""
    return _view(ledger, job).get("phase")


def _check_date(date: str) -> str:
    if not isinstance(date, str) or not _DATE.match(date):
        raise InvalidOptionError(f"date {date!r} is not YYYY-MM-DD: give the day of the run in the job's time zone")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise InvalidOptionError(f"date {date!r} is not a calendar date") from None
    return date


def record_transition(ledger: dict, job: str, from_phase: str | None, to_phase: str, when: dt.datetime,
                      controller_user: str | None, reason: str | None = None, overridden: list | None = None) -> dict:
    """Append a transition and set the job's current phase; returns the entry."""
    entry = {
        "time": utc_stamp(when),
        "job": job,
        "from": from_phase,
        "to": to_phase,
        "forced": bool(overridden),
        "overridden": list(overridden or []),
        "reason": reason,
        "controller_user": controller_user,
    }
    record = _job(ledger, job)
    record["transitions"].append(entry)
    record["phase"] = to_phase
    record["phase_since"] = entry["time"]
    return entry


def record_archive(ledger: dict, job: str, archived: dict) -> None:
    _job(ledger, job).setdefault("archived", []).append(dict(archived))


def record_verdict(ledger: dict, job: str, date: str, verdict: str, details: dict | None = None,
                   when: dt.datetime | None = None) -> bool:
    """Record a compare verdict of legacy vs new output for the job's run of ``date``.

    Returns False (ledger unchanged) when the latest verdict recorded for that date since the
    job last entered parallel is the same verdict with the same details, so a daily compare run
    twice records once, while the same day compared again after a return to parallel is recorded
    anew (the gate counts only verdicts recorded since then). A new verdict for a date already
    recorded is appended and supersedes the earlier one."""
    _check_date(date)
    if verdict not in VERDICTS:
        raise InvalidOptionError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    details = details or {}
    previous = _latest_for(fresh(_view(ledger, job).get("verdicts", []), entered(ledger, job, "parallel")),
                           lambda e: e["date"] == date)
    if previous and previous["verdict"] == verdict and previous.get("details", {}) == details:
        return False
    _job(ledger, job)["verdicts"].append({"date": date, "verdict": verdict, "details": details,
                                          "recorded_at": utc_stamp(when or dt.datetime.now(dt.timezone.utc))})
    return True


def record_run(ledger: dict, job: str, date: str, status: str, mode: str = "production", details: dict | None = None,
               when: dt.datetime | None = None) -> bool:
    """Record the outcome of a run of the new program (``mode`` production or parallel) for ``date``.

    The ``cutover → retired`` gate counts days whose latest production run is ``ok``. Returns
    False when the latest run recorded for that date and mode since the job last entered the phase
    whose evidence it is (cutover for production runs, parallel for parallel ones) is the same,
    so that recording again after the retirement changes nothing."""
    _check_date(date)
    if status not in RUN_STATUSES:
        raise InvalidOptionError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    if mode not in RUN_MODES:
        raise InvalidOptionError(f"run mode {mode!r} is not one of {', '.join(RUN_MODES)}")
    details = details or {}
    since = entered(ledger, job, "cutover" if mode == "production" else "parallel")
    previous = _latest_for(fresh(_view(ledger, job).get("runs", []), since),
                           lambda e: (e["date"], e["mode"]) == (date, mode))
    if previous and previous["status"] == status and previous.get("details", {}) == details:
        return False
    _job(ledger, job)["runs"].append({"date": date, "mode": mode, "status": status, "details": details,
                                      "recorded_at": utc_stamp(when or dt.datetime.now(dt.timezone.utc))})
    return True


def _latest_for(entries: list, wanted) -> dict | None:
    found = None
    for entry in entries:
        if wanted(entry):
            found = entry
    return found


def _latest_per_date(entries: list) -> dict:
    latest: dict = {}
    for entry in entries:  # appended in time order: later entries win
        latest[entry["date"]] = entry
    return latest


def entered(ledger: dict, job: str, phase: str) -> str | None:
    """When the job last moved into ``phase`` (the UTC stamp of that transition), or None when the
    ledger records no such move (a job found on the host in that phase, or never there)."""
    moves = [entry for entry in _view(ledger, job).get("transitions", []) if entry.get("to") == phase]
    return moves[-1]["time"] if moves else None


def returns(ledger: dict, job: str, phase: str) -> int:
    """How many times the ledger records the job moving into ``phase``."""
    return sum(1 for entry in _view(ledger, job).get("transitions", []) if entry.get("to") == phase)


def fresh(entries: list, since: str | None) -> list:
    """The entries recorded at or after ``since`` (all of them when since is None). Stamps are UTC
    in one fixed format, so they compare as text; an entry of the same second as the move counts."""
    if since is None:
        return list(entries)
    return [entry for entry in entries if entry.get("recorded_at", "") >= since]


def validated_days(ledger: dict, job: str, since: str | None = None) -> list:
    """Dates whose latest verdict is identical or equivalent, oldest first; with ``since``, only
    verdicts recorded at or after that time count."""
    latest = _latest_per_date(fresh(_view(ledger, job).get("verdicts", []), since))
    return sorted(date for date, entry in latest.items() if entry["verdict"] in GOOD_VERDICTS)


def latest_verdict(ledger: dict, job: str, since: str | None = None) -> dict | None:
    """The verdict for the most recent date (the last recorded one for that date), of those
    recorded at or after ``since``."""
    latest = _latest_per_date(fresh(_view(ledger, job).get("verdicts", []), since))
    return latest[max(latest)] if latest else None


def _production_runs(ledger: dict, job: str, since: str | None) -> dict:
    runs = [entry for entry in _view(ledger, job).get("runs", []) if entry["mode"] == "production"]
    return _latest_per_date(fresh(runs, since))


def production_run_days(ledger: dict, job: str, since: str | None = None) -> list:
    """Dates whose latest production run succeeded, oldest first; with ``since``, only runs
    recorded at or after that time count."""
    latest = _production_runs(ledger, job, since)
    return sorted(date for date, entry in latest.items() if entry["status"] == "ok")


def latest_production_run(ledger: dict, job: str, since: str | None = None) -> dict | None:
    latest = _production_runs(ledger, job, since)
    return latest[max(latest)] if latest else None


def cutover_entries(ledger: dict) -> list:
    """(job, time) of each job's latest move into cutover, for jobs still in cutover or retired."""
    found = []
    for job, record in ledger.get("jobs", {}).items():
        if record.get("phase") not in ("cutover", "retired"):
            continue
        moves = [entry for entry in record.get("transitions", []) if entry.get("to") == "cutover"]
        if moves:
            found.append((job, parse_stamp(moves[-1]["time"])))
    return found


def validate(data, path: str) -> dict:
    """Check the shape of a loaded ledger; LedgerError names the file and the fix."""
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise LedgerError(f"ledger {path} is not a cutover ledger (no 'jobs' object): move it aside or restore it "
                          "from a backup")
    if data.get("version") != VERSION:
        raise LedgerError(f"ledger {path} has version {data.get('version')!r}, this collection reads version "
                          f"{VERSION}: upgrade the collection")
    for job, record in data["jobs"].items():
        lists = ("transitions", "verdicts", "runs")
        if not isinstance(record, dict) or any(not isinstance(record.get(key, []), list) for key in lists):
            raise LedgerError(f"ledger {path}: the entry of job {job!r} is malformed: fix it by hand or restore "
                              "the file from a backup")
    return data


def load(path: str) -> dict:
    """The ledger at ``path``; an empty ledger when the file does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return empty()
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror}; run the task with become: true") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LedgerError(f"ledger {path} is not valid JSON ({exc}): restore it from a backup or move it aside "
                          "(the gates then start from no validations)") from None
    return validate(data, path)


def dumps(ledger: dict) -> str:
    return json.dumps(ledger, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(path: str, ledger: dict) -> None:
    """Replace the ledger atomically, mode 0600: readers see the old or the new file, never half."""
    directory = os.path.dirname(path) or "."
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        atomic_write(path, dumps(ledger).encode("utf-8"), 0o600)
    except OSError as exc:
        raise LedgerError(f"cannot write ledger {path}: {exc.strerror}; run the task with become: true") from None


@contextlib.contextmanager
def locked(path: str):
    """Hold an exclusive lock on the ledger's directory while reading, deciding and writing, so two
    concurrent runs (two jobs cut over at once) cannot both pass the soak gate. No lock file is
    created; when the directory does not exist yet nothing can race on it and no lock is taken."""
    directory = os.path.dirname(path) or "."
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            yield
            return
        raise LedgerError(f"cannot open {directory} to lock the ledger: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
