"""Object keys from templates such as `dumps/basis_{date:%Y%m%d}.sql.gz`, dated in the job's zone."""

from __future__ import annotations

import re
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
    for _text, name, _spec, _conversion in string.Formatter().parse(template):
        if name is not None and name not in FIELDS:
            raise ConfigError(f"has an unknown field '{{{name}}}' (allowed: {{date:%Y%m%d}}-style and {{job}})")
    try:
        return template.format(date=when, job=job)
    except (ValueError, IndexError, KeyError) as exc:
        raise ConfigError(f"is not a valid key template: {exc}") from None


# strftime directives that always render as this many digits; any other renders as some text
# without a '/'.
DIGITS = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "y": 2, "j": 3, "U": 2, "W": 2, "V": 2, "G": 4,
          "u": 1, "w": 1, "I": 2}


def key_pattern(template: str, job: str) -> tuple[re.Pattern, str]:
    """A pattern matching every key `template` renders (any date) for `job`, and the literal
    prefix those keys share (what S3 can list by)."""
    parts, prefix, literal = [], "", True
    for text, name, spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(text))
        if literal:
            prefix += text
        if name is None:
            continue
        if name == "job":
            parts.append(re.escape(job))
            if literal:
                prefix += job
            continue
        literal = False
        parts.append(_strftime_pattern(spec or ""))
    return re.compile("".join(parts)), prefix


def _strftime_pattern(spec: str) -> str:
    out, i = [], 0
    while i < len(spec):
        if spec[i] == "%" and i + 1 < len(spec):
            d = spec[i + 1]
            out.append("%" if d == "%" else rf"\d{{{DIGITS[d]}}}" if d in DIGITS else "[^/]+?")
            i += 2
        else:
            out.append(re.escape(spec[i]))
            i += 1
    return "".join(out)


def run_time(zone: str, on: date | None = None, now: datetime | None = None) -> datetime:
    """The moment a run stands for, in the job's zone; `on` (from --date) replaces the day."""
    tz = timezone(zone)
    current = (now or datetime.now(tz)).astimezone(tz)
    if on is None:
        return current
    return datetime.combine(on, time(current.hour, current.minute, current.second), tzinfo=tz)
