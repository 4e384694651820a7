"""Object keys from templates such as `dumps/basis_{date:%Y%m%d}.sql.gz`, dated in the job's zone."""

from __future__ import annotations

import string
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

FIELDS = {"date", "job"}


def timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(name) from None


def render_key(template: str, when: datetime, job: str) -> str:
    """Fill `{date:FORMAT}` and `{job}`; anything else is a config error."""
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in FIELDS:
            raise ConfigError(f"has an unknown field '{{{name}}}' (allowed: {{date:%Y%m%d}}-style and {{job}})")
    try:
        return template.format(date=when, job=job)
    except (ValueError, IndexError, KeyError) as exc:
        raise ConfigError(f"is not a valid key template: {exc}") from None


def run_time(zone: str, on: date | None = None, now: datetime | None = None) -> datetime:
    """The moment a run stands for, in the job's zone; `on` (from --date) replaces the day."""
    tz = timezone(zone)
    current = (now or datetime.now(tz)).astimezone(tz)
    if on is None:
        return current
    return datetime.combine(on, time(current.hour, current.minute, current.second), tzinfo=tz)
