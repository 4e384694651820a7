# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DMS validation ledger: one verdict per day of the DMS target against the source.

One JSON file on the dump host (``/var/lib/dumpjob/dms_validation.json``, root 0600), written as
the cutover ledger is (atomic replace, the same directory lock)::

    {"version": 1,
     "verdicts": [{"date": "2026-11-30", "verdict": "identical",
                   "details": {"tables": {"basis.contracts": {"verdict": "identical"}, ...}},
                   "recorded_at": "2026-11-30T21:10:00Z"}]}

Entries are appended in time order; the latest entry of a date is that day's verdict. Details hold
per-table verdicts and counts of differences, never a row value or a key value."""

from __future__ import annotations

import datetime as dt

from ansible_collections.jram.dumphost.plugins.module_utils.cutover_ledger import utc_stamp
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LedgerError
from ansible_collections.jram.dumphost.plugins.module_utils.host_files import zone
from ansible_collections.jram.dumphost.plugins.module_utils.rollback_guard import _load_json as read_json

VERSION = 1
DEFAULT_PATH = "/var/lib/dumpjob/dms_validation.json"
VERDICTS = ("identical", "different", "incomplete")


def empty() -> dict:
    return {"version": VERSION, "verdicts": []}


def today(timezone: str) -> str:
    """Today's date in the tz database zone ``timezone``."""
    return dt.datetime.now(zone(timezone)).date().isoformat()


def check_date(text: str) -> str:
    try:
        if not isinstance(text, str) or len(text) != 10:
            raise ValueError(text)
        dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidOptionError(f"date {text!r} is not a YYYY-MM-DD calendar date: give the day of the "
                                 "comparison, e.g. 2026-11-30") from None
    return text


def record(ledger: dict, date: str, verdict: str, details: dict | None = None, when: dt.datetime | None = None):
    """Append the verdict of ``date``; None (ledger unchanged) when that day's latest entry is the
    same verdict with the same details, so a second run of the same day records nothing."""
    check_date(date)
    if verdict not in VERDICTS:
        raise InvalidOptionError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    details = details or {}
    previous = by_date(ledger).get(date)
    if previous and previous["verdict"] == verdict and previous.get("details", {}) == details:
        return None
    entry = {"date": date, "verdict": verdict, "details": details,
             "recorded_at": utc_stamp(when or dt.datetime.now(dt.timezone.utc))}
    ledger["verdicts"].append(entry)
    return entry


def by_date(ledger: dict) -> dict:
    """The latest entry of each date."""
    latest: dict = {}
    for entry in ledger.get("verdicts", []):
        latest[entry["date"]] = entry
    return latest


def streak(ledger: dict) -> list:
    """The consecutive calendar days, ending at the latest day recorded, whose verdict is
    identical (oldest first); a day without a verdict breaks the run."""
    days = by_date(ledger)
    if not days:
        return []
    out = []
    day = dt.date.fromisoformat(max(days))
    while day.isoformat() in days and days[day.isoformat()]["verdict"] == "identical":
        out.append(day.isoformat())
        day -= dt.timedelta(days=1)
    return sorted(out)


def month_ends(days: list) -> list:
    """The days of ``days`` that are the last of their month."""
    return [d for d in days if (dt.date.fromisoformat(d) + dt.timedelta(days=1)).day == 1]


def gate(ledger: dict, required_days: int, today: str | None = None, month_end: bool = False) -> dict:
    """Whether the DMS copy has been identical for ``required_days`` consecutive days up to the
    latest day recorded (and, given ``today``, that day is today or yesterday; with ``month_end``,
    the run includes the last day of a month)."""
    run = streak(ledger)
    days = by_date(ledger)
    latest = days[max(days)] if days else None
    problems = []
    if len(run) < required_days:
        problems.append(f"{len(run)} consecutive identical day(s), {required_days} needed")
    if month_end and not month_ends(run):
        problems.append("no month end among the consecutive identical days")
    if today and latest:
        age = (dt.date.fromisoformat(today) - dt.date.fromisoformat(latest["date"])).days
        if age > 1:
            problems.append(f"the latest verdict is of {latest['date']}, {age} days old: "
                            "run playbooks/dms_validate.yml")
    if not days:
        problems.append("no verdict recorded yet: run playbooks/dms_validate.yml daily")
    return {"open": not problems, "problems": problems, "consecutive_identical_days": run,
            "latest": {"date": latest["date"], "verdict": latest["verdict"]} if latest else None}


def validate(data, path: str) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("verdicts"), list):
        raise LedgerError(f"ledger {path} is not a DMS validation ledger (no 'verdicts' list): move it aside or "
                          "restore it from a backup")
    if data.get("version") != VERSION:
        raise LedgerError(f"ledger {path} has version {data.get('version')!r}, this collection reads version "
                          f"{VERSION}: upgrade the collection")
    for entry in data["verdicts"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("date"), str) \
                or entry.get("verdict") not in VERDICTS:
            raise LedgerError(f"ledger {path}: an entry is malformed ({str(entry)[:60]}): fix it by hand or restore "
                              "the file from a backup")
    return data


def load(path: str) -> dict:
    """The ledger at ``path``; an empty one when the file does not exist yet."""
    data = read_json(path, "DMS validation ledger")
    return empty() if data is None else validate(data, path)
