"""The job file (/etc/dumpjob/jobs.yml): parsed, validated and merged with its `defaults:`.

Every problem is reported as one ConfigError naming the file, the job and the key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import yaml

from .anomaly import ACTIONS, AnomalyLimits
from .errors import ConfigError
from .keys import render_key, timezone
from .retry import RetryPolicy, parse_deadline, schedule_time, window_minutes

DEFAULT_PATH = "/etc/dumpjob/jobs.yml"
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# How a job meets a server of the other flavour (mysqldump.compatibility): adapt the dump to it,
# adapt but keep MariaDB's sandbox-mode line, or refuse.
FLAVOUR_MISMATCH = ("adapt", "keep", "refuse")
CRON_MACROS = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@reboot"}

# S3's rules: 3-63 characters of lowercase letters, digits, '.' and '-', a letter or digit at
# both ends, no '..', not shaped like an IP address.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
DATE_FIELD = re.compile(r"\{date[:}]")
# The collection's cron grammar (plugins/module_utils/cron_schedule.py, which converts the schedule
# when the cron entry is written). This program is installed on its own, without Ansible, so it
# cannot import that module: the rules are repeated here, item syntax and all, and
# tests/unit/test_cron_grammar.py holds both to one table of accepted and refused expressions.
CRON_ITEM = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")
# Per cron field: its name, its range and the names cron accepts in it.
CRON_FIELDS = (
    ("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)

COMPRESSION_KEYS = {"type", "level", "threads"}
CSV_KEYS = {"null", "line_terminator", "header"}
COMPARE_KEYS = {"ignore_auto_increment"}
RETRY_KEYS = {"max_attempts", "backoff_seconds", "max_backoff_seconds", "attempt_seconds"}
ANOMALY_KEYS = {"action", "raw_bytes_drop_percent", "table_rows_drop_percent", "table_gone"}
KIND_ONLY = {
    "mysqldump": {"databases", "tables", "no_data", "harmless_warnings", "flavour_mismatch", "mysqldump",
                  "credentials_transport"},
    "query": {"database", "query", "csv", "min_rows"},
}
COMMON_KEYS = {
    "kind", "description", "secret_id", "region", "bucket", "key", "parallel_key", "legacy_key", "timezone",
    "compression", "sse_kms_key_id", "schedule", "metrics_namespace", "upload_concurrency", "part_size_mib",
    "min_bytes", "ssl_ca", "work_dir", "lock_dir", "progress_seconds", "compare", "connect_timeout", "syslog",
    "deadline", "retry", "anomaly",
}
ALL_KEYS = COMMON_KEYS | KIND_ONLY["mysqldump"] | KIND_ONLY["query"]
# Keys of earlier versions: each names its replacement.
REPLACED = {"allow_flavour_mismatch": "'flavour_mismatch: adapt' (the default; 'refuse' refuses a client of the "
                                      "other flavour)"}
REQUIRED = {"mysqldump": ("secret_id", "bucket", "key", "databases"),
            "query": ("secret_id", "bucket", "key", "database", "query")}


@dataclass(frozen=True)
class Compression:
    type: str = "gzip"
    level: int = 6
    threads: int = 0  # 0: one per CPU

    @property
    def extension(self) -> str:
        return ".gz" if self.type == "gzip" else ".zst"


@dataclass(frozen=True)
class CsvFormat:
    null: str = "NULL"
    line_terminator: str = "\r\n"
    header: bool = True


@dataclass(frozen=True)
class Job:
    name: str
    kind: str
    secret_id: str
    bucket: str
    key: str
    parallel_key: str
    legacy_key: str
    timezone: str = "Asia/Tokyo"
    databases: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    no_data: bool = False
    database: Optional[str] = None
    query: Optional[str] = None
    description: Optional[str] = None
    region: Optional[str] = None
    compression: Compression = field(default_factory=Compression)
    sse_kms_key_id: Optional[str] = None
    schedule: Optional[str] = None
    metrics_namespace: Optional[str] = None
    upload_concurrency: int = 4
    part_size_mib: int = 8
    min_bytes: int = 1024
    min_rows: int = 0
    harmless_warnings: tuple[str, ...] = ()
    flavour_mismatch: str = "adapt"
    mysqldump: str = "mysqldump"
    credentials_transport: str = "pipe"
    ssl_ca: Optional[str] = None
    work_dir: str = "/var/tmp"
    lock_dir: str = "/run/dumpjob"
    progress_seconds: float = 10.0
    connect_timeout: int = 10
    syslog: bool = True
    csv: CsvFormat = field(default_factory=CsvFormat)
    ignore_auto_increment: bool = False
    deadline: Optional[str] = None  # HH:MM in `timezone`: retries end so that the last attempt ends by then
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    anomaly: AnomalyLimits = field(default_factory=AnomalyLimits)

    def object_key(self, when: datetime, parallel: bool = False) -> str:
        return render_key(self.parallel_key if parallel else self.key, when, self.name)

    def legacy_object_key(self, when: datetime) -> str:
        return render_key(self.legacy_key, when, self.name)


@dataclass(frozen=True)
class Config:
    path: str
    jobs: dict[str, Job]

    def job(self, name: str) -> Job:
        if name not in self.jobs:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise ConfigError(f"config {self.path}: no job named '{name}' (jobs: {known})")
        return self.jobs[name]


def load(path: str | Path = DEFAULT_PATH, host_files: bool = True) -> Config:
    """The job file, parsed; with `host_files` also the files it names on this host (`ssl_ca`)
    must be there and readable. The controller checks a job file for another host with
    host_files=False (check-config --skip-host-files)."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {path} does not exist; pass --config PATH or install it with the dumpjob "
                          "role") from None
    except OSError as exc:
        raise ConfigError(f"config {path} cannot be read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}: not valid YAML{where}") from None
    cfg = parse(doc, path)
    if host_files:
        check_host_files(cfg)
    return cfg


def parse(doc: Any, path: str = "<config>") -> Config:
    if not isinstance(doc, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping with 'jobs:' (and optional 'defaults:')")
    unknown = set(doc) - {"defaults", "jobs"}
    if unknown:
        raise ConfigError(f"config {path}: unknown top-level key '{sorted(unknown)[0]}' (allowed: defaults, jobs)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"config {path}: 'defaults' must be a mapping")
    for key in defaults:
        if key in REPLACED:
            raise ConfigError(f"config {path}: defaults: key '{key}' was replaced by {REPLACED[key]}")
        if key not in ALL_KEYS:
            raise ConfigError(f"config {path}: defaults: unknown key '{key}'")
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise ConfigError(f"config {path}: missing key 'jobs' (a mapping of job name to job)")
    parsed = {}
    for name, body in jobs.items():
        parsed[str(name)] = _job(path, str(name), defaults, body)
    return Config(path, parsed)


class _Reader:
    """Typed access to one job's merged mapping; every error names the job and the key."""

    def __init__(self, path: str, name: str, data: dict):
        self.path, self.name, self.data = path, name, data

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"config {self.path}: job '{self.name}': key '{key}' {problem}")

    def get(self, key: str, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise ConfigError(f"config {self.path}: job '{self.name}': missing key '{key}'")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"must be {_type_name(kind)}, not a boolean")
        if not isinstance(value, kind):
            raise self.fail(key, f"must be {_type_name(kind)}")
        if isinstance(value, str) and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def strings(self, key: str, required: bool = False) -> tuple[str, ...]:
        value = self.get(key, list, None, required)
        if value is None:
            return ()
        if not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, "must be a non-empty list of names")
        return tuple(value)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.get(key, int, default)
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}")
        return value

    def mapping(self, key: str, allowed: set[str]) -> dict:
        value = self.get(key, dict, {})
        for sub in value:
            if sub not in allowed:
                raise self.fail(f"{key}.{sub}", f"is unknown (allowed: {', '.join(sorted(allowed))})")
        return value


def _type_name(kind: type | tuple) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping",
             float: "a number"}
    return names.get(kind, str(kind)) if not isinstance(kind, tuple) else " or ".join(names[k] for k in kind)


def _merge(defaults: dict, body: dict) -> dict:
    merged = dict(defaults)
    for key, value in body.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _job(path: str, name: str, defaults: dict, body: Any) -> Job:
    if not JOB_NAME.match(name):
        raise ConfigError(f"config {path}: job '{name}': the name must be letters, digits, '_', '.', '-' (max 64)")
    if not isinstance(body, dict):
        raise ConfigError(f"config {path}: job '{name}' must be a mapping")
    for key in body:
        if key in REPLACED:
            raise ConfigError(f"config {path}: job '{name}': key '{key}' was replaced by {REPLACED[key]}")
        if key not in ALL_KEYS:
            raise ConfigError(f"config {path}: job '{name}': unknown key '{key}'")
    r = _Reader(path, name, _merge(defaults, body))
    kind = r.get("kind", str, required=True)
    if kind not in KIND_ONLY:
        raise r.fail("kind", "must be 'mysqldump' or 'query'")
    other = "query" if kind == "mysqldump" else "mysqldump"
    for key in KIND_ONLY[other]:
        if key in body:
            raise r.fail(key, f"is not valid for kind '{kind}'")
    for key in REQUIRED[kind]:
        if key not in r.data or r.data[key] is None:
            raise ConfigError(f"config {path}: job '{name}': missing key '{key}'")

    tz = r.get("timezone", str, "Asia/Tokyo")
    try:
        timezone(tz)
    except ValueError:
        raise r.fail("timezone", f"names an unknown time zone '{tz}'") from None
    key = r.get("key", str, required=True)
    parallel_key = r.get("parallel_key", str, _default_parallel_key(key))
    legacy_key = r.get("legacy_key", str, key)
    for k, template in (("key", key), ("parallel_key", parallel_key), ("legacy_key", legacy_key)):
        _check_template(r, k, template)
    bucket = r.get("bucket", str, required=True)
    if not BUCKET_NAME.match(bucket) or ".." in bucket or IP_ADDRESS.match(bucket):
        raise r.fail("bucket", f"is '{bucket}', not a valid S3 bucket name (3-63 lowercase letters, digits, "
                     "'.' and '-', a letter or digit at both ends)")
    if parallel_key == key:
        raise r.fail("parallel_key", "must differ from 'key' (the parallel run must not overwrite production)")

    comp = r.mapping("compression", COMPRESSION_KEYS)
    ctype = comp.get("type", "gzip")
    if ctype not in ("gzip", "zstd"):
        raise r.fail("compression.type", "must be 'gzip' or 'zstd'")
    level = comp.get("level", 6 if ctype == "gzip" else 3)
    low, high = (1, 9) if ctype == "gzip" else (1, 19)
    if not isinstance(level, int) or isinstance(level, bool) or not low <= level <= high:
        raise r.fail("compression.level", f"must be an integer from {low} to {high} for {ctype}")
    threads = comp.get("threads", 0)
    if not isinstance(threads, int) or isinstance(threads, bool) or not 0 <= threads <= 64:
        raise r.fail("compression.threads", "must be an integer from 0 (one per CPU) to 64")
    if ctype == "zstd":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            raise r.fail("compression.type", "is 'zstd' but the zstandard package is not installed "
                         "(pip install 'dumpjob[zstd]')") from None

    csv = r.mapping("csv", CSV_KEYS)
    csv_format = CsvFormat(
        null=_str_in(r, "csv.null", csv.get("null", "NULL"), allow_empty=True),
        line_terminator=_str_in(r, "csv.line_terminator", csv.get("line_terminator", "\r\n"), {"\r\n", "\n"}),
        header=_bool_in(r, "csv.header", csv.get("header", True)),
    )
    if any(c in csv_format.null for c in ',"\r\n'):
        raise r.fail("csv.null", "must not contain a comma, a double quote or a line break")
    compare = r.mapping("compare", COMPARE_KEYS)

    schedule = r.get("schedule", str)
    if schedule is not None:
        _check_schedule(r, schedule)
    deadline = _deadline(r, schedule)
    retry = _retry(r)
    anomaly = _anomaly(r)
    databases = r.strings("databases", required=(kind == "mysqldump"))
    tables = r.strings("tables")
    if tables and len(databases) != 1:
        raise r.fail("tables", "needs exactly one entry in 'databases'")
    mismatch = r.get("flavour_mismatch", str, "adapt")
    if mismatch not in FLAVOUR_MISMATCH:
        raise r.fail("flavour_mismatch", f"must be one of {', '.join(FLAVOUR_MISMATCH)}")
    transport = r.get("credentials_transport", str, "pipe")
    if transport not in ("pipe", "file"):
        raise r.fail("credentials_transport", "must be 'pipe' or 'file'")
    warnings = r.strings("harmless_warnings")
    for pattern in warnings:
        try:
            re.compile(pattern)
        except re.error:
            raise r.fail("harmless_warnings", f"holds an invalid regular expression '{pattern}'") from None
    for k in ("work_dir", "lock_dir", "ssl_ca"):
        value = r.get(k, str)
        if value is not None and not value.startswith("/"):
            raise r.fail(k, "must be an absolute path")
    sse = r.get("sse_kms_key_id", str)

    return Job(
        name=name, kind=kind, secret_id=r.get("secret_id", str, required=True),
        bucket=bucket,
        key=key, parallel_key=parallel_key, legacy_key=legacy_key, timezone=tz,
        databases=databases, tables=tables, no_data=r.get("no_data", bool, False),
        database=r.get("database", str), query=r.get("query", str), description=r.get("description", str),
        region=r.get("region", str),
        compression=Compression(ctype, level, threads), sse_kms_key_id=sse, schedule=schedule,
        metrics_namespace=r.get("metrics_namespace", str),
        upload_concurrency=r.integer("upload_concurrency", 4, 1, 32),
        part_size_mib=r.integer("part_size_mib", 8, 5, 512),
        min_bytes=r.integer("min_bytes", 1024 if kind == "mysqldump" else 0, 0, 1 << 50),
        min_rows=r.integer("min_rows", 0, 0, 1 << 50),
        harmless_warnings=warnings, flavour_mismatch=mismatch,
        mysqldump=r.get("mysqldump", str, "mysqldump"), credentials_transport=transport,
        ssl_ca=r.get("ssl_ca", str), work_dir=r.get("work_dir", str, "/var/tmp"),
        lock_dir=r.get("lock_dir", str, "/run/dumpjob"),
        progress_seconds=_positive(r, "progress_seconds", r.get("progress_seconds", float, 10.0)),
        connect_timeout=r.integer("connect_timeout", 10, 1, 300),
        syslog=r.get("syslog", bool, True), csv=csv_format,
        ignore_auto_increment=_bool_in(r, "compare.ignore_auto_increment", compare.get("ignore_auto_increment", False)),
        deadline=deadline, retry=retry, anomaly=anomaly,
    )


def _deadline(r: _Reader, schedule: Optional[str]) -> Optional[str]:
    value = r.data.get("deadline")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        raise r.fail("deadline", "must be a quoted 'HH:MM' (YAML reads an unquoted 6:40 as the number "
                     f"{value}); write deadline: \"06:40\"")
    text = r.get("deadline", str)
    deadline = parse_deadline(text)
    if deadline is None:
        raise r.fail("deadline", f"is '{text}', not a time of day 'HH:MM' (00:00-23:59) such as '06:40'")
    start = schedule_time(schedule)
    if start is None:
        raise r.fail("deadline", "needs a 'schedule' that starts at one time of day, such as '30 5 * * *' or "
                     f"'@daily' (the deadline closes the window that opens there; schedule is {schedule!r})")
    if window_minutes(start, deadline) == 0:
        raise r.fail("deadline", f"is the schedule's own start {text}; set the time by which the dump must be "
                     "published, after the start")
    return text


def _retry(r: _Reader) -> RetryPolicy:
    given = r.mapping("retry", RETRY_KEYS)
    default = RetryPolicy()
    policy = RetryPolicy(
        max_attempts=_int_in(r, "retry.max_attempts", given.get("max_attempts", default.max_attempts), 1, 100),
        backoff_seconds=_number_in(r, "retry.backoff_seconds", given.get("backoff_seconds", default.backoff_seconds),
                                   1, 3600),
        max_backoff_seconds=_number_in(r, "retry.max_backoff_seconds",
                                       given.get("max_backoff_seconds", default.max_backoff_seconds), 1, 86400),
        attempt_seconds=_number_in(r, "retry.attempt_seconds", given.get("attempt_seconds", default.attempt_seconds),
                                   1, 86400),
    )
    if policy.max_backoff_seconds < policy.backoff_seconds:
        raise r.fail("retry.max_backoff_seconds", f"is {policy.max_backoff_seconds:g}, below retry.backoff_seconds "
                     f"{policy.backoff_seconds:g}; raise it or lower the backoff")
    return policy


def _anomaly(r: _Reader) -> AnomalyLimits:
    given = r.mapping("anomaly", ANOMALY_KEYS)
    default = AnomalyLimits()
    return AnomalyLimits(
        action=_str_in(r, "anomaly.action", given.get("action", default.action), set(ACTIONS)),
        raw_bytes_drop_percent=_number_in(r, "anomaly.raw_bytes_drop_percent",
                                          given.get("raw_bytes_drop_percent", default.raw_bytes_drop_percent), 0, 100),
        table_rows_drop_percent=_number_in(r, "anomaly.table_rows_drop_percent",
                                           given.get("table_rows_drop_percent", default.table_rows_drop_percent),
                                           0, 100),
        table_gone=_bool_in(r, "anomaly.table_gone", given.get("table_gone", default.table_gone)),
    )


def _default_parallel_key(key: str) -> str:
    if key.startswith("dumps/"):
        return "dumps-test/" + key[len("dumps/"):]
    return "dumps-test/" + key


def _check_template(r: _Reader, key: str, template: str) -> None:
    if template.startswith("/") or template.endswith("/"):
        raise r.fail(key, "must be an object key without a leading or trailing '/'")
    try:
        rendered = render_key(template, datetime(2001, 2, 3, 4, 5, 6), r.name)
    except ConfigError as exc:
        raise r.fail(key, str(exc)) from None
    if not rendered:
        raise r.fail(key, "renders to an empty key")
    if not DATE_FIELD.search(template):
        raise r.fail(key, f"is '{template}', which has no {{date:...}} field, so every run would overwrite the "
                     "same object; add one such as {date:%Y%m%d}")


def _check_schedule(r: _Reader, schedule: str) -> None:
    problem = cron_problem(schedule)
    if problem:
        raise r.fail("schedule", f"is '{schedule}': {problem}")


def cron_problem(schedule: str) -> str | None:
    """Why ``schedule`` is not five cron fields or one of cron's macros (None: it is)."""
    if "\n" in schedule or "\r" in schedule:
        return "it holds a line break; give one line of five cron fields"
    fields = schedule.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        if fields[0].lower() in CRON_MACROS:
            return None
        return f"not one of cron's macros ({', '.join(sorted(CRON_MACROS))})"
    if len(fields) != 5:
        return "not a five-field cron expression like '30 5 * * *' or a macro like '@daily'"
    for text, (what, low, high, names) in zip(fields, CRON_FIELDS):
        problem = _cron_field_problem(text.lower(), low, high, names)
        if problem:
            return f"{what} '{text}' {problem}"
    return None


def _cron_field_problem(text: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    def value(v: str) -> int | None:
        if v.isdigit():
            return int(v)
        return names.index(v) + low if v in names else None

    for item in text.split(","):
        match = CRON_ITEM.match(item)
        if not match:
            return f"holds '{item}', which is not cron syntax (*, N, N-M, */S, N-M/S or a list of these)"
        step = match["step"]
        if step is not None and int(step) < 1:
            return f"has a step '{step}' that is not a number of 1 or more"
        if match["range"] == "*":
            continue
        bounds = [value(bound) for bound in match["range"].split("-")]
        if any(b is None for b in bounds):
            return f"holds '{match['range']}', not a number or a name"
        if any(not low <= b <= high for b in bounds):
            return f"is outside {low}-{high}"
        if bounds[0] > bounds[-1]:
            return "runs backwards, so cron would never fire it"
        if step is not None and len(bounds) == 1:
            return f"has a step after the single value '{item}'; write a range such as {bounds[0]}-{high}/{step}"
    return None


def _str_in(r: _Reader, key: str, value: Any, choices: set[str] | None = None, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise r.fail(key, "must be a string")
    if choices is not None and value not in choices:
        raise r.fail(key, f"must be one of {sorted(repr(c) for c in choices)}")
    return value


def _int_in(r: _Reader, key: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise r.fail(key, f"must be an integer from {low} to {high}")
    return value


def _number_in(r: _Reader, key: str, value: Any, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise r.fail(key, f"must be a number from {low:g} to {high:g}")
    return float(value)


def _bool_in(r: _Reader, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise r.fail(key, "must be true or false")
    return value


def _positive(r: _Reader, key: str, value: float) -> float:
    if value <= 0:
        raise r.fail(key, "must be a positive number of seconds")
    return value


def check_host_files(cfg: Config) -> None:
    """Each job's `ssl_ca` exists on this host, is readable by this user and holds a PEM
    certificate: a missing CA is a config error found by check-config, not a failed login."""
    for name, job in cfg.jobs.items():
        if job.ssl_ca is None:
            continue
        where = f"config {cfg.path}: job '{name}': key 'ssl_ca'"
        fix = "install the CA bundle there (role dumpjob: dumpjob_ssl_ca_bundle) or fix 'ssl_ca'"
        try:
            with open(job.ssl_ca, "rb") as f:
                head = f.read(1 << 20)
        except FileNotFoundError:
            raise ConfigError(f"{where} names {job.ssl_ca}, which does not exist; {fix}") from None
        except IsADirectoryError:
            raise ConfigError(f"{where} names {job.ssl_ca}, a directory, not a CA file; {fix}") from None
        except OSError as exc:
            raise ConfigError(f"{where} names {job.ssl_ca}, which cannot be read ({exc.strerror}); make it "
                              "readable by the dumpjob user (root-owned, mode 0644)") from None
        if b"-----BEGIN CERTIFICATE-----" not in head:
            raise ConfigError(f"{where} names {job.ssl_ca}, which holds no PEM certificate; {fix}")
