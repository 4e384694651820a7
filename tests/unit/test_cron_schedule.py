"""Schedules in a job's zone convert to cron lines on the host that fire at exactly the same
instants all year, or are refused with a message naming the cause and the fix.

Exactness is checked by brute force: every fire instant of the original schedule (evaluated on the
job zone's wall clock) over a year is computed by a small cron evaluator written here, independent
of the code under test, and compared with the fire instants of the converted lines (evaluated on
the host zone's wall clock)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import cron_schedule as cs
from ansible_collections.jram.dumphost.plugins.module_utils.errors import ScheduleError

NOW = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.timezone.utc)
TOKYO = "Asia/Tokyo"
UTC = "Etc/UTC"

# --- an independent cron evaluator (Vixie semantics) -------------------------------------------

_NAMES = {"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
          "nov": 11, "dec": 12, "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_SPECIAL = {"@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def _values(field: str, low: int, high: int) -> set:
    out = set()
    for item in field.split(","):
        rng, _, step = item.partition("/")
        if rng == "*":
            a, b = low, high
        else:
            a_text, _, b_text = rng.partition("-")
            a = int(_NAMES.get(a_text, a_text))
            b = int(_NAMES.get(b_text, b_text)) if b_text else a
        out.update(range(a, b + 1, int(step) if step else 1))
    return {0 if (high == 7 and v == 7) else v for v in out}


def _day_fires(dom: str, month: str, dow: str, day: dt.date) -> bool:
    if day.month not in _values(month, 1, 12):
        return False
    dom_ok = day.day in _values(dom, 1, 31)
    dow_ok = (day.isoweekday() % 7) in _values(dow, 0, 7)
    if dom.startswith("*") or dow.startswith("*"):
        return dom_ok and dow_ok
    return dom_ok or dow_ok


def fires(spec: str, local: dt.datetime) -> bool:
    minute, hour, dom, month, dow = _SPECIAL.get(spec, spec).split()
    return (local.minute in _values(minute, 0, 59) and local.hour in _values(hour, 0, 23)
            and _day_fires(dom, month, dow, local.date()))


def fire_instants(specs: list, zone: str, start: dt.datetime, days: int) -> set:
    """UTC instants at which any of the specs fires within ``days`` from ``start``, read on
    ``zone``'s wall clock. Only fixed-offset zones are used, so every wall time exists once."""
    tz = ZoneInfo(zone)
    end = start + dt.timedelta(days=days)
    first = start.astimezone(tz).date() - dt.timedelta(days=1)
    found = set()
    for spec in specs:
        minute, hour, dom, month, dow = _SPECIAL.get(spec, spec).split()
        times = [(h, m) for h in _values(hour, 0, 23) for m in _values(minute, 0, 59)]
        for offset in range(days + 2):
            day = first + dt.timedelta(days=offset)
            if not _day_fires(dom, month, dow, day):
                continue
            for h, m in times:
                instant = dt.datetime(day.year, day.month, day.day, h, m, tzinfo=tz).astimezone(dt.timezone.utc)
                if start <= instant < end:
                    found.add(instant)
    return found


def assert_exact(schedule: str, job_zone: str, host_zone: str, days: int = 400) -> list:
    lines = cs.convert(cs.parse_schedule(schedule), ZoneInfo(job_zone), job_zone, ZoneInfo(host_zone), host_zone,
                       NOW)
    start = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    expected = fire_instants([schedule], job_zone, start, days)
    got = fire_instants(lines, host_zone, start, days)
    assert expected, f"{schedule} never fires: a useless test"
    assert got == expected, (f"{schedule} ({job_zone}) -> {lines} ({host_zone}): "
                             f"{len(expected - got)} missed, {len(got - expected)} extra")
    return lines


# --- conversions -------------------------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "expected"), [
    ("30 5 * * *", ["30 20 * * *"]),          # the main dump: 05:30 JST is 20:30 UTC the day before
    ("0 6 * * *", ["0 21 * * *"]),            # contract status
    ("0 4 * * 0", ["0 19 * * 6"]),            # weekly snapshot, Sunday 04:00 JST = Saturday 19:00 UTC
    ("0 4 * * sun", ["0 19 * * 6"]),
    ("0 4 * * 7", ["0 19 * * 6"]),            # 7 is Sunday too
    ("0 5 * * mon-fri", ["0 20 * * 0-4"]),
    ("0 3,12 * * 1", ["0 18 * * 0", "0 3 * * 1"]),  # one JST Monday, two UTC days: two lines
    ("0 5 15 * *", ["0 20 14 * *"]),
    ("0 5 2-28 * *", ["0 20 1-27 * *"]),
    ("0 5 10 * 3", ["0 20 9 * 2"]),           # day-of-month OR day-of-week, both moved
    ("0 10 1 * *", ["0 1 1 * *"]),            # 10:00 JST stays on the same date
    ("0 10 * 1 *", ["0 1 * 1 *"]),
    ("0 5 15 jan *", ["0 20 14 jan *"]),      # month with a day that stays inside it
    ("*/15 * * * *", ["*/15 * * * *"]),
    ("0 */2 * * *", ["0 1-23/2 * * *"]),
    ("0,30 9-17 * * *", ["0,30 0-8 * * *"]),
    ("@daily", ["0 15 * * *"]),
    ("@hourly", ["0 * * * *"]),
    ("@weekly", ["0 15 * * 6"]),
])
def test_tokyo_to_utc_is_exact(schedule, expected):
    assert assert_exact(schedule, TOKYO, UTC) == expected


def test_acceptance_0530_tokyo_fires_2030_utc():
    (line,) = cs.convert(cs.parse_schedule("30 5 * * *"), ZoneInfo(TOKYO), TOKYO, ZoneInfo("UTC"), "UTC", NOW)
    assert line == "30 20 * * *"
    fire = dt.datetime(2026, 11, 26, 5, 30, tzinfo=ZoneInfo(TOKYO)).astimezone(dt.timezone.utc)
    assert (fire.hour, fire.minute, fire.day) == (20, 30, 25)
    assert fires(line, fire)


@pytest.mark.parametrize(("schedule", "job_zone", "host_zone", "expected"), [
    ("30 20 * * *", UTC, TOKYO, ["30 5 * * *"]),                 # the other way round: the next day
    ("0 19 * * 6", UTC, TOKYO, ["0 4 * * 0"]),
    ("0 20 14 * *", UTC, TOKYO, ["0 5 15 * *"]),
    ("@hourly", TOKYO, "Asia/Kolkata", ["30 * * * *"]),           # half-hour offset
    ("0,45 5 * * *", TOKYO, "Asia/Kolkata", ["30 1 * * *", "15 2 * * *"]),
    ("0 5 * * *", TOKYO, "Asia/Kathmandu", ["45 1 * * *"]),       # +5:45
    ("30 5 * * *", TOKYO, "America/Sao_Paulo", ["30 17 * * *"]),  # -3, no DST since 2019
    ("30 5 * * *", TOKYO, TOKYO, ["30 5 * * *"]),
])
def test_other_zone_pairs_are_exact(schedule, job_zone, host_zone, expected):
    assert assert_exact(schedule, job_zone, host_zone) == expected


@pytest.mark.parametrize(("schedule", "job_zone", "host_zone", "expected"), [
    ("30 5 * * *", "Europe/Berlin", "Europe/Paris", "30 5 * * *"),  # same DST rules: written as given
    ("0 * * * *", TOKYO, "Europe/London", "0 * * * *"),            # hourly: every hour whatever the offset
    ("*/30 * * * *", TOKYO, "America/New_York", "0,30 * * * *"),
])
def test_dst_zones_accepted_when_the_lines_never_change(schedule, job_zone, host_zone, expected):
    lines = cs.convert(cs.parse_schedule(schedule), ZoneInfo(job_zone), job_zone, ZoneInfo(host_zone), host_zone,
                       NOW)
    assert lines == [expected]


def test_same_zone_keeps_the_shorthand():
    assert cs.convert(cs.parse_schedule("@daily"), ZoneInfo(UTC), UTC, ZoneInfo(UTC), UTC, NOW) == ["@daily"]
    assert cs.convert(cs.parse_schedule("@reboot"), ZoneInfo(TOKYO), TOKYO, ZoneInfo(UTC), UTC, NOW) == ["@reboot"]


# --- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "job_zone", "host_zone", "cause", "fix"), [
    ("30 5 * * *", TOKYO, "Europe/London", "daylight saving time", "timezone: Europe/London"),
    ("30 5 * * *", "Europe/Berlin", UTC, "daylight saving time", "run the host clock on UTC"),
    ("0 5 1 * *", TOKYO, UTC, "day-of-month 1", "use days 2-28"),
    ("0 5 31 * *", TOKYO, UTC, "day-of-month 31", "use days 2-28"),
    ("0 20 28 * *", UTC, TOKYO, "day-of-month 28", "use days 1-27"),
    ("0 5 * 1 *", TOKYO, UTC, "month field '1'", "same date in both zones"),
    ("0 5 * 1 1", TOKYO, UTC, "day of week ('1')", "drop the month restriction"),
    ("0 5 */2 * *", TOKYO, UTC, "step over the whole range", "list the values"),
    ("0 5 * * */2", TOKYO, UTC, "step over the whole range", "list the values"),
    ("@monthly", TOKYO, UTC, "day-of-month 1", "use days 2-28"),
])
def test_unconvertible_schedules_are_refused(schedule, job_zone, host_zone, cause, fix):
    with pytest.raises(ScheduleError) as exc:
        cs.convert(cs.parse_schedule(schedule), ZoneInfo(job_zone), job_zone, ZoneInfo(host_zone), host_zone, NOW)
    message = str(exc.value)
    assert cause in message and fix in message
    assert f"'{schedule}'" in message and "\n" not in message


def test_dst_refusal_shows_both_variants_and_when():
    with pytest.raises(ScheduleError) as exc:
        cs.convert(cs.parse_schedule("30 5 * * *"), ZoneInfo(TOKYO), TOKYO, ZoneInfo("Europe/London"),
                   "Europe/London", NOW)
    assert "'30 20 * * *'" in str(exc.value) and "'30 21 * * *' from 2027-03-28" in str(exc.value)


@pytest.mark.parametrize(("schedule", "needle"), [
    ("", "empty"),
    ("30 5 * *", "has 4 fields"),
    ("30 5 * * * /bin/true", "has 6 fields"),
    ("60 5 * * *", "outside 0-59"),
    ("30 24 * * *", "outside 0-23"),
    ("0 0 0 * *", "outside 1-31"),
    ("0 0 * 13 *", "outside 1-12"),
    ("0 0 * * 8", "outside 0-7"),
    ("0 0 * foo *", "not a number or a name"),
    ("5-3 * * * *", "runs backwards"),
    ("0 0 * * sat-sun", "runs backwards"),  # cron would silently never fire
    ("5/3 * * * *", "step without a range"),
    ("*/0 * * * *", "must be 1 or more"),
    ("1,,2 * * * *", "not valid cron syntax"),
    ("@often", "not a known shorthand"),
    ("30 5 * * *\n0 6 * * *", "line break"),
])
def test_malformed_schedules_are_refused(schedule, needle):
    with pytest.raises(ScheduleError, match=needle):
        cs.parse_schedule(schedule)


def test_parse_reads_names_ranges_steps_and_sunday_as_7():
    sched = cs.parse_schedule("0-10/5 */6 1,15 jan-mar sat,sun")
    minute, hour, dom, month, dow = sched.fields
    assert minute.values == {0, 5, 10} and hour.values == {0, 6, 12, 18}
    assert dom.values == {1, 15} and month.values == {1, 2, 3}
    assert cs.parse_schedule("0 0 * * 5-7").fields[4].values == {0, 5, 6}
    assert dow.values == {0, 6}
    assert sched.text == "0-10/5 */6 1,15 jan-mar sat,sun"


@pytest.mark.parametrize(("values", "low", "high", "text"), [
    (range(60), 0, 59, "*"),
    (range(0, 60, 15), 0, 59, "*/15"),
    (range(1, 24, 2), 0, 23, "1-23/2"),
    ([1, 2, 3, 7], 0, 59, "1-3,7"),
    ([1, 2, 9], 0, 59, "1,2,9"),
    ([0, 30], 0, 59, "0,30"),
])
def test_render_values(values, low, high, text):
    assert cs.render_values(set(values), low, high) == text


def test_the_brute_force_check_tells_a_wrong_conversion():
    start = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    right = fire_instants(["30 5 * * *"], TOKYO, start, 30)
    assert fire_instants(["30 20 * * *"], UTC, start, 30) == right
    assert fire_instants(["30 21 * * *"], UTC, start, 30) != right
    assert fire_instants(["30 20 * * 1-5"], UTC, start, 30) != fire_instants(["30 5 * * 1-5"], TOKYO, start, 30)
