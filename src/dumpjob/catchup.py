"""`dumpjob catch-up`: after the host was down across a job's scheduled minute, run the job now if
its deadline has not passed and its day was not published.

Started at boot by an `@reboot` entry next to each job's cron entry. A job qualifies when the
moment of the catch-up lies in the job's window (from the schedule's time of day to its
`deadline`, wall clock in the job's zone; see retry.py), the schedule fires on the window's day
(day of month, month, day of week), and no published manifest describes the day's key. A job
without a deadline has no window and is left to its next scheduled run.

Nothing runs twice for the same day: the job's own lock is taken before the day's key is read,
so a run of cron's in progress makes the catch-up stand aside, and a run that ended before it
has published the manifest the catch-up then finds; catch-ups of one job are serialised by a
lock of their own, so a second one finds the first one's manifest. The time arithmetic is pure
(the clock is passed in)."""

from __future__ import annotations

import re
import time as clock_time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Optional

from botocore.exceptions import NoCredentialsError

from . import aws, manifest, retry
from .config import CRON_FIELDS, Job
from .errors import DumpJobError, ExitCode, LockHeldError, StorageError
from .keys import run_time
from .keys import timezone as timezone_of
from .lock import JobLock
from .log import Logger

# cron's macros as the five fields they stand for (@reboot has none)
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_ITEM = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")
# At boot, the network or the instance role may not answer yet: the day's key is read again after
# these waits (seconds) while S3 is unreachable or no credentials are found, within the deadline.
BOOT_WAITS = (5, 10, 20, 40)
# How far ahead the next run is looked for: a year covers every schedule cron accepts (29 February aside).
HORIZON_DAYS = 366 * 4 + 1


@dataclass(frozen=True)
class CronSpec:
    """A schedule (already validated by config.cron_problem) as the values each field selects."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'

    def fires_on(self, day: date) -> bool:
        """Whether cron fires on `day` (day of month and day of week: either one when both are
        restricted, as cron reads them)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def parse_cron(schedule: Optional[str]) -> Optional[CronSpec]:
    """The schedule's fields as values; None for none and for `@reboot`."""
    if not schedule:
        return None
    text = MACROS.get(schedule.strip().lower(), schedule)
    words = text.split()
    if len(words) != 5:
        return None
    values = [_field_values(word.lower(), low, high, names) for word, (_what, low, high, names)
              in zip(words, CRON_FIELDS)]
    weekdays = frozenset(v % 7 for v in values[4])
    return CronSpec(tuple(sorted(values[0])), tuple(sorted(values[1])), frozenset(values[2]), frozenset(values[3]),
                    weekdays, words[2].startswith("*"), words[4].startswith("*"))


def _field_values(text: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    def value(v: str) -> int:
        return int(v) if v.isdigit() else names.index(v) + low

    found: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"'{item}' is not cron syntax")
        step = int(match["step"] or 1)
        if match["range"] == "*":
            first, last = low, high
        else:
            bounds = [value(b) for b in match["range"].split("-")]
            first, last = bounds[0], bounds[-1] if len(bounds) > 1 else (high if match["step"] else bounds[0])
        found.update(range(first, last + 1, step))
    return found


def next_run(schedule: Optional[str], zone: tzinfo, now: datetime) -> Optional[datetime]:
    """The first moment after `now` at which the schedule fires, wall clock in `zone` (aware);
    None for no schedule or `@reboot`. A wall time skipped by a daylight saving change is taken
    as the zone gives it (the same instant an hour later)."""
    spec = parse_cron(schedule)
    if spec is None:
        return None
    local = now.astimezone(zone).replace(tzinfo=None)
    for offset in range(HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        if not spec.fires_on(day):
            continue
        for hour in spec.hours:
            for minute in spec.minutes:
                at = datetime.combine(day, time(hour, minute))
                if at > local:
                    return at.replace(tzinfo=zone)
    return None


@dataclass(frozen=True)
class Window:
    """Whether a job is due for a catch-up at a moment, and why (or why not)."""

    due: bool
    reason: str
    day: Optional[date] = None  # the day of the scheduled run that was missed
    deadline: Optional[datetime] = None


def window(schedule: Optional[str], deadline_text: Optional[str], zone_name: str, now: datetime) -> Window:
    """Whether the scheduled run of the job's window around `now` (aware) may still be made up."""
    if deadline_text is None:
        return Window(False, "the job has no deadline, so no time by which a missed run is still worth making; "
                             "it runs at its next scheduled time (set 'deadline' to catch it up)")
    start = retry.schedule_time(schedule)
    deadline_at = retry.parse_deadline(deadline_text)
    zone = timezone_of(zone_name)
    if start is None or deadline_at is None:
        return Window(False, f"the schedule {schedule!r} has no single time of day to catch up")
    local = now.astimezone(zone).replace(tzinfo=None)
    span = timedelta(minutes=retry.window_minutes(start, deadline_at))
    until = retry.deadline_for(now, zone, start, deadline_at)
    if until is None:
        today_start = datetime.combine(local.date(), start)
        if local < today_start:
            return Window(False, f"today's run at {start:%H:%M} {zone_name} is still ahead: cron makes it")
        return Window(False, f"the deadline {deadline_text} {zone_name} of the run scheduled at "
                             f"{today_start:%Y-%m-%d %H:%M} has passed; the day is not caught up")
    opened = until.replace(tzinfo=None) - span
    spec = parse_cron(schedule)
    if spec is not None and not spec.fires_on(opened.date()):
        return Window(False, f"the schedule {schedule!r} does not fire on {opened:%Y-%m-%d (%a)}")
    return Window(True, f"the run scheduled at {opened:%Y-%m-%d %H:%M} {zone_name} was missed and its deadline "
                        f"{until:%H:%M} has not passed", opened.date(), until)


@dataclass
class Outcome:
    job: str
    action: str  # ran | skipped | failed
    reason: str
    day: Optional[str] = None
    url: Optional[str] = None
    exit_code: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        doc = {"job": self.job, "action": self.action, "reason": self.reason, "day": self.day, "url": self.url,
               "exit_code": self.exit_code}
        if self.summary:
            doc["summary"] = self.summary
        return doc


def catch_up(jobs: list[Job], parallel: bool, log: Logger, now: Optional[datetime] = None,
             sleep: Callable[[float], None] = clock_time.sleep) -> list[Outcome]:
    """Make up every job of `jobs` that is due (see `window`), one after the other."""
    return [_catch_up_job(job, parallel, log, now, sleep) for job in jobs]


def _catch_up_job(job: Job, parallel: bool, parent: Logger, now: Optional[datetime],
                  sleep: Callable[[float], None]) -> Outcome:
    log = Logger(job=job.name, system_log=job.syslog).adopt_secrets(parent)
    clock = now or datetime.now(timezone_of(job.timezone))
    found = window(job.schedule, job.deadline, job.timezone, clock)
    if not found.due:
        log.info("catch-up", f"not caught up: {found.reason}", action="skipped")
        return Outcome(job.name, "skipped", found.reason)
    when = run_time(job.timezone, found.day, clock)
    key = job.object_key(when, parallel)
    url = f"s3://{job.bucket}/{key}"
    outcome = Outcome(job.name, "skipped", "", found.day.isoformat(), url)
    try:
        with JobLock(job.lock_dir, f"{job.name}.catch-up"):
            published = _published_or_busy_at_boot(job, key, url, found.deadline - clock, log, sleep)
            if published:
                outcome.reason = published
                log.info("catch-up", f"not caught up: {published}", action="skipped", url=url)
                return outcome
            log.info("catch-up", f"catching up {url}: {found.reason}", action="run", url=url,
                     deadline=found.deadline.isoformat())
            from .run import run_job
            summary = run_job(job, when, parallel, log)
    except LockHeldError as exc:
        outcome.reason = f"another catch-up of the job is running ({exc})"
        log.info("catch-up", f"not caught up: {outcome.reason}", action="skipped", url=url)
        return outcome
    except DumpJobError as exc:
        message = log.redact(str(exc))
        log.error("error", f"catch-up of {url} failed: {message}", error=exc.kind, exit_code=int(exc.exit_code))
        return Outcome(job.name, "failed", message, outcome.day, url, int(exc.exit_code))
    anomalous = bool((summary.get("anomaly") or {}).get("anomalous"))
    log.info("summary", f"caught up {url}: {summary['raw_bytes']} bytes dumped, {summary['compressed_bytes']} stored "
             f"in {summary['seconds']} s", action="ran", **{k: v for k, v in summary.items() if k != "anomaly"})
    return Outcome(job.name, "ran", found.reason, outcome.day, url,
                   int(ExitCode.ANOMALY) if anomalous else 0, summary)


def _published_or_busy_at_boot(job: Job, key: str, url: str, left: timedelta, log: Logger,
                               sleep: Callable[[float], None]) -> Optional[str]:
    """`_published_or_busy`, read again after BOOT_WAITS while S3 or the credentials do not
    answer yet and the waits end before the deadline (`left` away); the last failure is raised."""
    waited = 0.0
    for wait in (*BOOT_WAITS, None):
        try:
            return _published_or_busy(job, key, url)
        except StorageError as exc:
            early = exc.transient or isinstance(exc.__context__, NoCredentialsError)
            if not early or wait is None or timedelta(seconds=waited + wait) >= left:
                raise
            waited += wait
            log.warning("catch-up", f"{url} cannot be read yet ({exc}); reading it again in {wait} s",
                        wait_seconds=wait)
            sleep(wait)
    return None  # not reached: the last pass returns or raises


def _published_or_busy(job: Job, key: str, url: str) -> Optional[str]:
    """Why the day needs no catch-up (a run in progress, or the day published), else None. The
    job's lock is held while the key is read, so a run that ends in between has published."""
    try:
        probe = JobLock(job.lock_dir, job.name).acquire()
    except LockHeldError:
        return "a run of the job is in progress (cron's own, or a manual one); it makes the day"
    try:
        s3 = aws.client(aws.session(job.region), "s3")
        found = manifest.published(s3, job.bucket, [key], 1)
    finally:
        probe.release()
    if found:
        return f"{url} is published already (run {found[0].get('run_id')}, {found[0].get('finished_at')})"
    return None


def exit_code(outcomes: list[Outcome]) -> int:
    """0 when every job was made up or had no need; else the first failure's code (a dump
    published with an anomaly counts as one, 13)."""
    return next((o.exit_code for o in outcomes if o.exit_code), 0)


def text(outcomes: list[Outcome]) -> str:
    lines = []
    for o in outcomes:
        what = {"ran": "caught up", "skipped": "not caught up", "failed": "FAILED"}[o.action]
        target = f" {o.url}" if o.url else ""
        lines.append(f"{o.job}: {what}{target}: {o.reason}")
    return "\n".join(lines) or "no jobs"
