"""When a failed run tries again: the job's deadline, the backoff, and how long an attempt takes.

A job with a `deadline` (HH:MM, wall clock in the job's zone) and a `schedule` starting at a fixed
time of day has a window each day: from the scheduled start to the deadline (crossing midnight
when the deadline is earlier in the day than the start). A run that starts inside a window may
try again after a transient failure as long as the next attempt, started after the backoff, is
expected to end by the deadline. A run that starts outside every window (a manual run in the
afternoon of a job due at 06:40) has no deadline to work towards and makes one attempt.

Pure functions: the clock and the durations of earlier runs are passed in."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Optional

DEADLINE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# cron's macros that fire at a fixed time of day (00:00)
MIDNIGHT_MACROS = {"@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
# An attempt is expected to last this many times the longest of the recent published runs.
ESTIMATE_MARGIN = 1.5


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_seconds: float = 30.0
    max_backoff_seconds: float = 300.0
    attempt_seconds: float = 1800.0  # the estimate of an attempt when no earlier run says otherwise


def parse_deadline(text: str) -> Optional[time]:
    """`HH:MM` as a time of day, None when it is not one."""
    match = DEADLINE.match(text)
    return time(int(match[1]), int(match[2])) if match else None


def schedule_time(schedule: Optional[str]) -> Optional[time]:
    """The time of day a schedule fires at, when it has one fixed minute and hour (`30 5 * * *`,
    `0 4 * * 0`, `@daily`); None otherwise (`*/15 * * * *`, `@hourly`, `@reboot`, none)."""
    if not schedule:
        return None
    words = schedule.split()
    if len(words) == 1:
        return time(0, 0) if words[0].lower() in MIDNIGHT_MACROS else None
    if len(words) != 5 or not (words[0].isdigit() and words[1].isdigit()):
        return None
    minute, hour = int(words[0]), int(words[1])
    return time(hour, minute) if minute < 60 and hour < 24 else None


def window_minutes(start: time, deadline: time) -> int:
    """Minutes from the scheduled start to the deadline (over midnight when the deadline is earlier)."""
    minutes = (deadline.hour * 60 + deadline.minute) - (start.hour * 60 + start.minute)
    return minutes % (24 * 60)


def deadline_for(now: datetime, zone: tzinfo, start: time, deadline: time) -> Optional[datetime]:
    """The deadline the run started at `now` (aware) works towards, as an aware datetime in
    `zone`; None when `now` is outside every window from `start` to `deadline` (wall clock)."""
    local = now.astimezone(zone).replace(tzinfo=None)
    day = datetime.combine(local.date(), deadline)
    if day <= local:
        day += timedelta(days=1)
    if local < day - timedelta(minutes=window_minutes(start, deadline)):
        return None
    return day.replace(tzinfo=zone)


def seconds_until(now: datetime, then: datetime) -> float:
    """Real seconds between two aware datetimes (across a daylight saving change too)."""
    return then.timestamp() - now.timestamp()


def backoff(policy: RetryPolicy, failed_attempts: int) -> float:
    """The wait after the `failed_attempts`-th failure: doubling from backoff_seconds, at most
    max_backoff_seconds."""
    return min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** max(0, failed_attempts - 1))


def estimate(durations: Iterable[float], policy: RetryPolicy) -> float:
    """How long an attempt is expected to take: the longest recent run with a margin, or the
    policy's conservative `attempt_seconds` when there is no earlier run."""
    known = [d for d in durations if isinstance(d, (int, float)) and d > 0]
    if not known:
        return policy.attempt_seconds
    return float(math.ceil(max(known) * ESTIMATE_MARGIN))


@dataclass(frozen=True)
class Decision:
    retry: bool
    wait: float  # seconds to wait before the next attempt (when retry)
    reason: str  # why not (when not retry), or what the wait is for


def decide(now: datetime, deadline: Optional[datetime], policy: RetryPolicy, failed_attempts: int,
           attempt_seconds: float) -> Decision:
    """After the `failed_attempts`-th transient failure at `now`: try again (and after how long),
    or why not. The wait is the backoff, shortened when only a shorter one leaves the next attempt
    time to end by the deadline."""
    if deadline is None:
        return Decision(False, 0.0, "the run started outside the job's window before its deadline")
    if failed_attempts >= policy.max_attempts:
        return Decision(False, 0.0, f"{policy.max_attempts} attempts made (retry.max_attempts)")
    left = seconds_until(now, deadline) - attempt_seconds
    if left < 0:
        return Decision(False, 0.0, f"the next attempt (about {attempt_seconds:.0f} s) could not end by the "
                        f"deadline {deadline:%H:%M} {deadline.tzname() or ''}".rstrip())
    wait = min(backoff(policy, failed_attempts), left)
    return Decision(True, wait, f"an attempt takes about {attempt_seconds:.0f} s, the deadline is {deadline:%H:%M}")
