# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cron schedules written in a job's time zone, converted exactly to the host's zone.

Debian's cron ignores ``CRON_TZ`` and fires on the host's local wall clock, so a schedule such as
``30 5 * * *`` in Asia/Tokyo has to be written as ``30 20 * * *`` on a UTC host. The conversion
here is exact or refused: every fire time in the job's zone maps to exactly one fire time on the
host, all year round, or a :class:`ScheduleError` says why not and what to do instead.

This is the collection's one cron grammar: cron_cutover converts with it, deadline_alarm reads
schedules with it, and crontab_edit judges whole crontab lines with it (``strict=False``: what
cron's crontab command accepts, which also takes ranges that run backwards and steps after a single
value, both of which never fire as written and so are refused in a schedule of this collection).
The dump program (src/dumpjob/config.py) cannot import it (it is installed on its own, without
Ansible) and carries the same rules; tests/unit/test_cron_grammar.py holds both to one table.

Pure functions: no I/O; time zones are passed in as ``tzinfo`` objects."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ansible_collections.jram.dumphost.plugins.module_utils.errors import ScheduleError

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# name, lowest, highest, names (index + offset = value)
_FIELDS = (
    ("minute", 0, 59, None, 0),
    ("hour", 0, 23, None, 0),
    ("day-of-month", 1, 31, None, 0),
    ("month", 1, 12, MONTH_NAMES, 1),
    ("day-of-week", 0, 7, DOW_NAMES, 0),
)

SPECIALS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
REBOOT = "@reboot"
SHORTHANDS = (*SPECIALS, REBOOT)

_ITEM = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")
_DAY = 24 * 60
# How far ahead the zone offsets are examined: a full year covers every DST rule in use.
_HORIZON_DAYS = 367


class FieldError(ScheduleError):
    """One field of a schedule is invalid; ``reason`` says which and why without quoting the
    schedule (for lines of a crontab that may hold more than a schedule)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Field:
    """One parsed field: its text as written, the values it selects, and whether it starts with
    ``*`` (cron combines day-of-month and day-of-week with AND when either does, OR otherwise)."""

    name: str
    text: str
    values: frozenset
    star: bool
    low: int
    high: int

    @property
    def unrestricted(self) -> bool:
        return self.star and self.values == frozenset(range(self.low, self.high + 1))


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: five fields, or ``@reboot`` (``fields`` empty)."""

    text: str
    fields: tuple

    @property
    def reboot(self) -> bool:
        return not self.fields


def parse_schedule(text: str) -> Schedule:
    """Parse a five-field cron schedule or an ``@`` shorthand; raise ScheduleError when invalid."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("schedule is empty: give five cron fields such as '30 5 * * *'")
    if "\n" in text or "\r" in text:
        raise ScheduleError("schedule contains a line break: give one line of five cron fields")
    words = text.split()
    if len(words) == 1 and words[0].startswith("@"):
        special = words[0].lower()
        if special == REBOOT:
            return Schedule(REBOOT, ())
        if special not in SPECIALS:
            raise ScheduleError(f"schedule '{text}' is not a known shorthand: use one of "
                                f"{', '.join(SHORTHANDS)} or five cron fields")
        return Schedule(special, _parse_fields(SPECIALS[special].split(), text))
    if len(words) != 5:
        raise ScheduleError(f"schedule '{text}' has {len(words)} fields: give exactly five "
                            "(minute hour day-of-month month day-of-week), without the command")
    return Schedule(" ".join(words), _parse_fields(words, text))


def parse_fields(words: list, strict: bool = True) -> tuple:
    """The fields of a time spec's words (five at most); raise FieldError when one is invalid.
    ``strict=False`` accepts what cron accepts but never fires as written (see the module doc)."""
    return _parse_fields(words, " ".join(words), strict)


def _parse_fields(words: list, text: str, strict: bool = True) -> tuple:
    return tuple(_parse_field(word, spec, text, strict) for word, spec in zip(words, _FIELDS))


def _parse_field(word: str, spec: tuple, text: str, strict: bool = True) -> Field:
    name, low, high = spec[:3]
    values: set = set()
    for item in word.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            raise FieldError(f"schedule '{text}': {name} field '{word}' is not valid cron syntax "
                             "(use *, N, N-M, */S, N-M/S or comma-separated lists of these)", f"bad {name} field")
        if match["range"] == "*":
            first, last = low, high
        else:
            bounds = match["range"].split("-")
            first = _number(bounds[0], spec, word, text)
            last = _number(bounds[-1], spec, word, text)
            if first > last and strict:
                raise FieldError(f"schedule '{text}': {name} range '{item}' runs backwards: write it low-high",
                                 f"{name} range runs backwards")
            if match["step"] is not None and len(bounds) == 1 and strict:
                raise FieldError(f"schedule '{text}': {name} item '{item}' has a step without a range: "
                                 f"write '{bounds[0]}-{high}/{match['step']}'", f"{name} step without a range")
        step = int(match["step"]) if match["step"] is not None else 1
        if step < 1:
            raise FieldError(f"schedule '{text}': {name} step in '{item}' must be 1 or more",
                             f"{name} step must be 1 or more")
        values.update(range(first, last + 1, step))
    if name == "day-of-week" and 7 in values:  # 7 is another name for Sunday
        values.discard(7)
        values.add(0)
    return Field(name, word, frozenset(values), word.startswith("*"), low, 6 if name == "day-of-week" else high)


def _number(token: str, spec: tuple, word: str, text: str) -> int:
    name, low, high, names, offset = spec
    if token.isdigit():
        value = int(token)
    elif names and token in names:
        value = names.index(token) + offset
    else:
        raise FieldError(f"schedule '{text}': '{token}' in the {name} field '{word}' is not a number"
                         + (f" or a name ({', '.join(names)})" if names else ""), f"bad {name} field")
    if not low <= value <= high:
        raise FieldError(f"schedule '{text}': {value} in the {name} field '{word}' is outside {low}-{high}",
                         f"{name} {value} out of range {low}-{high}")
    return value


def render_values(values, low: int, high: int) -> str:
    """A compact cron field for a set of values: ``*``, ``*/S``, ``A-B/S``, or runs and singles."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("empty field")
    if ordered == list(range(low, high + 1)):
        return "*"
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if step > 1 and ordered == list(range(ordered[0], ordered[-1] + 1, step)):
            if ordered[0] == low and ordered[-1] + step > high:
                return f"*/{step}"
            return f"{ordered[0]}-{ordered[-1]}/{step}"
    parts = []
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        if prev - start >= 2:
            parts.append(f"{start}-{prev}")
        else:
            parts.extend(str(v) for v in range(start, prev + 1))
        if value is not None:
            start = prev = value
    return ",".join(parts)


def zone_offsets(job_zone: dt.tzinfo, host_zone: dt.tzinfo, now: dt.datetime) -> dict:
    """Distinct offsets host minus job (minutes) over the coming year, each with the first UTC
    instant it applies (hourly samples from a day before ``now``)."""
    start = now.astimezone(dt.timezone.utc).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
    found: dict = {}
    for hour in range(_HORIZON_DAYS * 24):
        instant = start + dt.timedelta(hours=hour)
        delta = instant.astimezone(host_zone).utcoffset() - instant.astimezone(job_zone).utcoffset()
        minutes = int(delta.total_seconds() // 60)
        found.setdefault(minutes, instant)
    return found


def convert(schedule: Schedule, job_zone: dt.tzinfo, job_zone_name: str, host_zone: dt.tzinfo,
            host_zone_name: str, now: dt.datetime) -> list:
    """The schedule's time specs (five fields each, one per cron line) in the host's zone.

    Usually one line; a schedule whose times fall on different host days for different hours
    (e.g. ``0 3,12 * * 1`` in Tokyo on a UTC host) needs one line per day. Raises ScheduleError
    when no set of cron lines fires at exactly the same instants all year round."""
    if schedule.reboot:
        return [REBOOT]
    offsets = zone_offsets(job_zone, host_zone, now)
    results = {}
    for minutes in offsets:
        try:
            results[minutes] = shift(schedule, minutes)
        except ScheduleError as exc:
            raise ScheduleError(f"schedule '{schedule.text}' in {job_zone_name} cannot be converted exactly to the "
                                f"host zone {host_zone_name} ({_describe(minutes)}): {exc}") from None
    distinct = {tuple(lines) for lines in results.values()}
    if len(distinct) > 1:
        variants = "; ".join(f"'{' | '.join(results[minutes])}' from {since:%Y-%m-%d}"
                             for minutes, since in sorted(offsets.items(), key=lambda item: item[1]))
        raise ScheduleError(f"schedule '{schedule.text}' in {job_zone_name} cannot be converted exactly to the host "
                            f"zone {host_zone_name}: the offset between the zones changes with daylight saving time "
                            f"({variants}); run the host clock on UTC or a zone with the same offset rules, or give "
                            f"the schedule in the host zone with timezone: {host_zone_name}")
    return results[next(iter(offsets))]


def _describe(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"host is {sign}{hours}:{mins:02d} from the job's zone"


def shift(schedule: Schedule, minutes: int) -> list:
    """The schedule moved by ``minutes`` (host wall time minus job wall time): a list of time specs.

    Raises ScheduleError (with a message fragment) when the shift cannot be expressed exactly."""
    minute, hour, dom, month, dow = schedule.fields
    if minutes == 0:
        return [schedule.text]
    days_free = dom.unrestricted and month.unrestricted and dow.unrestricted
    groups: dict = {}
    for h in hour.values:
        for m in minute.values:
            total = h * 60 + m + minutes
            carry, rest = divmod(total, _DAY)
            groups.setdefault(0 if days_free else carry, set()).add(divmod(rest, 60))
    lines = []
    for carry in sorted(groups):
        day_fields = _shift_days(dom, month, dow, carry) if carry else (dom.text, month.text, dow.text)
        for minute_text, hour_text in _time_lines(groups[carry]):
            lines.append(" ".join((minute_text, hour_text, *day_fields)))
    return lines


def _time_lines(pairs: set) -> list:
    """Cover a set of (hour, minute) pairs exactly with (minute field, hour field) lines."""
    by_hour: dict = {}
    for h, m in pairs:
        by_hour.setdefault(h, set()).add(m)
    by_minutes: dict = {}
    for h, mins in by_hour.items():
        by_minutes.setdefault(frozenset(mins), set()).add(h)
    ordered = sorted(by_minutes.items(), key=lambda item: min(item[1]))
    return [(render_values(mins, 0, 59), render_values(hours, 0, 23)) for mins, hours in ordered]


def _shift_days(dom: Field, month: Field, dow: Field, carry: int) -> tuple:
    """Day fields for times that land ``carry`` (-1 or +1) days away on the host."""
    when = "the day before" if carry < 0 else "the day after"
    for field in (dom, month, dow):
        if field.star and not field.unrestricted:
            raise ScheduleError(f"the {field.name} field '{field.text}' is a step over the whole range, which "
                                f"cannot be moved to {when}; list the values instead")
    if not month.unrestricted and not dow.unrestricted:
        raise ScheduleError(f"a month ('{month.text}') together with a day of week ('{dow.text}') cannot be moved "
                            f"to {when} across month ends; drop the month restriction or pick a time of day that "
                            "stays on the same date in both zones")
    if not month.unrestricted and dom.unrestricted:
        raise ScheduleError(f"the month field '{month.text}' cannot be moved to {when}: the first or last day of "
                            "the month would fall into another month; pick a time of day that stays on the same date "
                            "in both zones")
    dom_text = dom.text
    if not dom.unrestricted:
        allowed = range(2, 29) if carry < 0 else range(1, 28)
        outside = sorted(v for v in dom.values if v not in allowed)
        if outside:
            raise ScheduleError(f"day-of-month {','.join(map(str, outside))} moved to {when} would cross a month end "
                                f"that cron cannot express; use days {allowed[0]}-{allowed[-1]} or a time of day "
                                "that stays on the same date in both zones")
        dom_text = render_values({v + carry for v in dom.values}, 1, 31)
    dow_text = dow.text
    if not dow.unrestricted:
        dow_text = render_values({(v + carry) % 7 for v in dow.values}, 0, 6)
    return dom_text, month.text, dow_text
