# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding, disabling, restoring and removing a legacy cron line, and rendering the new entry.

A crontab is handled as text split on ``\\n`` only, each line keeping its terminator, so that any
edit here changes exactly the lines it means to and ``"".join(lines)`` gives back every other byte
(tabs, trailing spaces, ``\\r`` of CRLF files, a missing final newline, comments, ``MAILTO``).

The legacy line's identity is its command: every active job line whose command matches
``legacy.match`` belongs to the job (the same command scheduled twice is one job; matches with
different commands are refused as ambiguous). Disabling prefixes the line with a marker that
carries the job name::

    #jram.dumphost[<job>] disabled <UTC time>: <original line, byte for byte>

and restoring removes exactly that prefix. Pure functions: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.jram.dumphost.plugins.module_utils import cron_schedule
from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError, LegacyLineError

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MARKER_PREFIX = "#jram.dumphost[{job}] disabled {when}: "
_MARKER = re.compile(r"^#jram\.dumphost\[(?P<job>[A-Za-z0-9_-]+)\] disabled (?P<when>[0-9TZ:-]+): ")
_ENV = re.compile(r"^\s*[^\s=#]+\s*=")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]*\$?$")
# Environment names that would put static AWS credentials in a world-readable file, or undo the
# conversion of the schedule to the host's zone.
_REFUSED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "CRON_TZ")
DEFAULT_ENV = (("SHELL", "/bin/sh"), ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))


def validate_job_name(job: str) -> str:
    """Job names become file names under /etc/cron.d, which cron reads only when they are made of
    letters, digits, ``_`` and ``-``."""
    if not isinstance(job, str) or not JOB_NAME.match(job):
        raise InvalidOptionError(f"job name {job!r} is not usable: use 1-64 letters, digits, '_' or '-', "
                                 "starting with a letter or digit (cron ignores /etc/cron.d files with other names)")
    return job


def split_lines(text: str) -> list:
    """Split on ``\\n`` only, keeping terminators: ``"".join(split_lines(t)) == t`` for any text."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def body(line: str) -> str:
    """A line without its ``\\n`` (a ``\\r`` of CRLF stays: it is part of what cron reads)."""
    return line[:-1] if line.endswith("\n") else line


@dataclass(frozen=True)
class JobLine:
    """An active job line: where it is, its schedule, its user (system crontabs) and command."""

    index: int
    schedule: str
    user: str | None
    command: str


def parse_job_line(line: str, index: int, system: bool) -> JobLine | None:
    """The job in a line, or None for blank, comment and environment lines (and unparsable ones,
    which cron itself skips)."""
    text = body(line).rstrip("\r")
    stripped = text.strip()
    if not stripped or stripped.startswith("#") or _ENV.match(text):
        return None
    words = stripped.split(None, 1)
    count = 1 if words[0].startswith("@") else 5
    count += 1 if system else 0
    fields = stripped.split(None, count)
    if len(fields) <= count:
        return None
    return JobLine(index, " ".join(fields[:count - (1 if system else 0)]),
                   fields[count - 1] if system else None, fields[count].rstrip())


def marker_job(line: str) -> str | None:
    match = _MARKER.match(line)
    return match["job"] if match else None


def marker_prefix(job: str, when: str) -> str:
    return MARKER_PREFIX.format(job=job, when=when)


def compile_match(match: str, regex: bool):
    """A predicate on commands for ``legacy.match``."""
    if not isinstance(match, str) or not match.strip():
        raise InvalidOptionError("legacy.match is empty: give a part of the legacy job's command, "
                                 "e.g. its script path")
    if not regex:
        return lambda command: match in command
    try:
        pattern = re.compile(match)
    except re.error as exc:
        raise InvalidOptionError(f"legacy.match {match!r} is not a valid regular expression ({exc}): "
                                 "fix it or set legacy.regex: false for a plain substring") from None
    return lambda command: pattern.search(command) is not None


@dataclass(frozen=True)
class LegacyState:
    """Where a job's legacy line is in a crontab: active lines (matching the command) and lines
    disabled with this job's marker."""

    active: tuple
    disabled: tuple

    @property
    def status(self) -> str:
        if self.active and self.disabled:
            return "mixed"
        if self.active:
            return "active"
        if self.disabled:
            return "disabled"
        return "absent"

    @property
    def command(self) -> str | None:
        return self.active[0].command if self.active else None


def locate(lines: list, job: str, matches, system: bool, where: str, match_text: str) -> LegacyState:
    """Find the job's active and disabled lines; refuse matches spanning different commands."""
    active = []
    disabled = []
    for index, line in enumerate(lines):
        if marker_job(line) == job:
            disabled.append(index)
            continue
        parsed = parse_job_line(line, index, system)
        if parsed is not None and matches(parsed.command):
            active.append(parsed)
    commands = sorted({entry.command for entry in active})
    if len(commands) > 1:
        listed = "; ".join(f"line {entry.index + 1}: {entry.command}" for entry in active)
        raise LegacyLineError(f"legacy.match {match_text!r} matches {len(commands)} different commands in {where} "
                              f"({listed}): make legacy.match specific to the job's command")
    return LegacyState(tuple(active), tuple(disabled))


def disable(lines: list, state: LegacyState, job: str, when: str) -> list:
    """Comment out the job's active lines with the marker; everything else unchanged."""
    new = list(lines)
    prefix = marker_prefix(job, when)
    for entry in state.active:
        new[entry.index] = prefix + lines[entry.index]
    return new


def restore(lines: list, state: LegacyState) -> list:
    """Put the job's disabled lines back exactly as they were before :func:`disable`."""
    new = list(lines)
    for index in state.disabled:
        match = _MARKER.match(lines[index])
        new[index] = lines[index][match.end():]
    return new


def remove(lines: list, state: LegacyState) -> list:
    """Drop the job's lines, active and disabled (retirement)."""
    gone = {entry.index for entry in state.active} | set(state.disabled)
    return [line for index, line in enumerate(lines) if index not in gone]


def disabled_commands(lines: list, state: LegacyState, system: bool) -> list:
    """The commands of the job's disabled lines, as cron would read them once restored."""
    restored = restore(lines, state)
    commands = []
    for index in state.disabled:
        parsed = parse_job_line(restored[index], index, system)
        if parsed is not None:
            commands.append(parsed.command)
    return commands


def script_of(command: str) -> str | None:
    """The legacy script a command runs: its first word when that is an absolute path."""
    first = command.split(None, 1)[0] if command.strip() else ""
    if first.startswith("/") and not any(c in first for c in "'\"$`;&|<>(){}*?"):
        return first
    return None


def other_users_of(lines: list, script: str, state: LegacyState, system: bool) -> list:
    """Active job lines, other than the job's own, whose command mentions the script."""
    own = {entry.index for entry in state.active}
    users = []
    for index, line in enumerate(lines):
        parsed = parse_job_line(line, index, system)
        if parsed is not None and index not in own and script in parsed.command:
            users.append(parsed)
    return users


def validate_cron_user(user: str) -> str:
    if not isinstance(user, str) or not _USER.match(user):
        raise InvalidOptionError(f"cron_user {user!r} is not a valid user name: use lowercase letters, "
                                 "digits, '_', '-' and '.'")
    return user


def validate_program(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or re.search(r"[\s%\\\"'$`;&|<>]", path):
        raise InvalidOptionError(f"dumpjob_bin {path!r} must be an absolute path without spaces, quotes, "
                                 "'%' or shell characters (cron passes it to /bin/sh)")
    return path


def validate_env(env: dict) -> list:
    """cron.d environment lines (defaults first, then the given ones sorted), or InvalidOptionError."""
    merged = dict(DEFAULT_ENV)
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise InvalidOptionError(f"cron_env name {name!r} is not a valid environment variable name")
        if name in _REFUSED_ENV:
            reason = ("the schedule is already converted to the host's zone" if name == "CRON_TZ"
                      else "static AWS credentials are what this collection removes; the instance role provides them")
            raise InvalidOptionError(f"cron_env must not set {name}: {reason}")
        value = "" if value is None else str(value)
        if "\n" in value or "\r" in value:
            raise InvalidOptionError(f"cron_env {name} contains a line break: give a one-line value")
        if value != value.strip() or (value and value[0] in "'\""):
            raise InvalidOptionError(f"cron_env {name} starts or ends with a space or a quote, which cron "
                                     "would strip: give the bare value")
        merged[name] = value
    defaults = [name for name, _value in DEFAULT_ENV]
    names = defaults + sorted(name for name in merged if name not in defaults)
    return [f"{name}={merged[name]}" for name in names]


def entry_command(program: str, job: str, phase: str) -> str:
    """What the new cron entry runs: the test prefix in ``parallel``, production otherwise."""
    return f"{program} run {job}" + (" --parallel" if phase == "parallel" else "")


def catch_up_command(program: str, job: str, phase: str) -> str:
    """What the job's ``@reboot`` entry runs: the day's run missed while the host was down, made
    before the job's deadline (``dumpjob catch-up``), on the key the scheduled entry writes."""
    return f"{program} catch-up {job}" + (" --parallel" if phase == "parallel" else "")


def render_cron_d(job: str, phase: str, specs: list, schedule: str, timezone: str, host_zone: str,
                  user: str, program: str, env_lines: list) -> str:
    """The content of ``/etc/cron.d/dumpjob-<job>``. Deterministic: no timestamps, so a second
    run compares equal and check mode predicts the exact bytes."""
    command = entry_command(program, job, phase)
    lines = [
        f"# jram.dumphost: job {job}, phase {phase}. Managed by jram.dumphost.cron_cutover; local edits are replaced.",
        f"# Schedule '{schedule}' in {timezone}, written below in the host zone {host_zone} "
        "(cron here fires on the host clock).",
        *env_lines,
        "# At boot: the scheduled run missed while the host was down, if the job's deadline has not passed.",
        f"@reboot {user} {catch_up_command(program, job, phase)}",
        *(f"{spec} {user} {command}" for spec in specs),
    ]
    return "\n".join(lines) + "\n"


# What cron's crontab command (Debian's and cronie's) accepts in a user crontab, to refuse before
# any write a move whose crontab it would refuse to install, or could not install back. The time
# spec is read with the collection's cron grammar (cron_schedule, lenient as cron is).


def entry_problem(line: str, system: bool) -> str | None:
    """Why the crontab command would refuse this line, without quoting it (None: it accepts it)."""
    text = body(line).rstrip("\r")
    stripped = text.strip()
    if not stripped or stripped.startswith("#") or _ENV.match(text):
        return None
    words = stripped.split()
    if words[0].startswith("@"):
        if words[0].lower() not in cron_schedule.SHORTHANDS:
            return f"unknown schedule shorthand {words[0][:16]}"
        count = 1
    else:
        try:
            cron_schedule.parse_fields(words[:5], strict=False)
        except cron_schedule.FieldError as exc:
            return exc.reason
        count = 5
    count += 1 if system else 0
    if len(words) <= count:
        return "no command" if len(words) >= count else "too few fields"
    if system and not _USER.match(words[count - 1]):
        return "bad user name"
    return None


def installable_problem(text: str) -> str | None:
    """Why ``crontab FILE`` would refuse to install ``text`` as a user crontab, naming the line
    but never quoting it (None: it installs)."""
    if text and not text.endswith("\n"):
        return ("it does not end with a line break, which the crontab command refuses to install (so the move "
                "could not be undone byte for byte); add the final newline with crontab -e")
    for index, line in enumerate(split_lines(text)):
        problem = entry_problem(line, False)
        if problem:
            return (f"its line {index + 1} is not an entry the crontab command accepts ({problem}); fix or remove "
                    "that line with crontab -e")
    return None


def system_file_problem(text: str) -> str | None:
    """Why cron would not read ``text`` (a file the module renders for /etc/cron.d) as meant."""
    if not text.endswith("\n"):
        return "it does not end with a line break"
    for index, line in enumerate(split_lines(text)):
        stripped = body(line).strip()
        if not stripped or stripped.startswith("#") or _ENV.match(stripped):
            continue
        if entry_problem(line, True):
            return f"its line {index + 1} is not a system crontab entry"
    return None


def job_text(lines: list, indexes: list) -> str:
    """The job's own lines (0-based ``indexes``), for a diff that shows nothing else of a crontab."""
    return "".join(lines[index] for index in sorted(indexes))
