"""The `dumpjob` command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any, Optional

from . import __version__, config
from .errors import DumpJobError, ExitCode, UsageError
from .hardening import harden
from .keys import run_time
from .log import Logger

EXIT_CODES = """exit codes:
  0  success (compare: identical or equivalent; doctor: every check passed)
  1  internal error (a bug: please report it)
  2  usage: bad arguments
  3  config: the job file is missing, invalid, or names a job that does not exist;
     its ssl_ca file is missing or unreadable; the client is missing, or is of
     the other flavour than the server's and the job sets flavour_mismatch: refuse
  4  secret: the secret is missing, unreadable, or lacks a key
  5  database: unreachable, login refused (after the AWSPENDING retry), privileges,
     TLS verification failed (CA or host name), or the connection was lost during
     the dump
  6  dump incomplete: mysqldump failed, was killed, wrote unexpected stderr, the
     trailer is missing, or the dump is below its size floor
  7  storage: the bucket is missing, S3 is unreachable or refused a request, or
     the key holds another object than the one this run completed (left as is)
  8  lock held: another run of the same job is in progress
  9  interrupted: SIGTERM, SIGINT or SIGHUP before the upload is being completed;
     the upload was aborted (later, the run publishes first and exits 0)
 10  verify: the object does not match its manifest, or the manifest names a run
     that never published
 11  compare: the dumps differ
 12  doctor: at least one check failed
 13  anomaly: published, but smaller than the job's previous dump beyond the
     job's limits (anomaly:); the 'anomaly' log line names the tables
 14  anomaly refused: as 13, with anomaly.action: refuse; nothing published
A job with a deadline tries again after a failure of a transient class (the
database unreachable or lost, S3, the server interrupting the dump) while the
next attempt can end by the deadline; the exit code is the last attempt's.
password: 4 (secret: no AWSPENDING version) and 5 (database: the password is refused
or cannot be changed) as above; 0 when the database accepts the stage asked for.
Every failure ends with one JSON log line {"level":"error","event":"error","msg":...}
on stderr naming the cause and what the key holds now; nothing is published unless
the run succeeded."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dumpjob", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Stream mysqldump (or a query as CSV) to S3, all or nothing, with database credentials read "
                    "from AWS Secrets Manager at each run.", epilog=EXIT_CODES)
    p.add_argument("--version", action="version", version=f"dumpjob {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser, with_config: bool = True) -> None:
        if with_config:
            sp.add_argument("--config", default=config.DEFAULT_PATH, metavar="PATH",
                            help=f"job file (default {config.DEFAULT_PATH})")
        sp.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")

    run = sub.add_parser("run", help="run one job now", epilog=EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("job")
    run.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="the day in the object key (backfills)")
    run.add_argument("--parallel", action="store_true", help="write to the job's parallel_key (cutover phase 2)")
    common(run)

    doctor = sub.add_parser("doctor", help="preflight checks for one job or all jobs")
    doctor.add_argument("job", nargs="?")
    common(doctor)

    verify = sub.add_parser("verify", help="re-check a published dump against its manifest")
    verify.add_argument("url", metavar="S3URL", help="s3://BUCKET/KEY of the dump (or of its manifest)")
    verify.add_argument("--region", help="AWS region (default: the AWS configuration's)")
    common(verify, with_config=False)

    compare = sub.add_parser("compare", help="compare the legacy and the new dump of one day")
    compare.add_argument("job")
    compare.add_argument("--date", type=_date, required=True, metavar="YYYY-MM-DD")
    compare.add_argument("--legacy-url", metavar="S3URL", help="instead of the job's legacy_key")
    compare.add_argument("--new-url", metavar="S3URL", help="instead of the job's parallel_key")
    common(compare)

    password = sub.add_parser(
        "password", help="the database half of a rotation of the job's secret (docs/rotation.md)",
        description="status: which of the secret's AWSCURRENT and AWSPENDING the database accepts; set: change the "
                    "account's own password to AWSPENDING (logged in with AWSCURRENT); test: log in with AWSPENDING "
                    "and check the job's privileges; revert: change it back to AWSCURRENT. No password is ever "
                    "printed or logged.")
    password.add_argument("job")
    password.add_argument("action", choices=("status", "set", "test", "revert"))
    common(password)

    check = sub.add_parser("check-config", help="validate the job file")
    check.add_argument("--skip-host-files", action="store_true",
                       help="check the file's shape only, not the files it names on this host (ssl_ca): for a "
                            "job file checked on another machine than the one that runs it")
    common(check)

    from . import schedule_cli  # status and catch-up: their own module
    schedule_cli.add_parsers(sub, common)
    return p


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-01-31") from None


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    log = Logger()
    # Before any command reads a secret: no core file, no ptrace or /proc/<pid>/mem, no MYSQL_PWD.
    harden(log)
    try:
        if args.command == "run":
            return _run(args, log)
        if args.command == "check-config":
            return _check_config(args, log)
        if args.command == "doctor":
            from .doctor import doctor
            cfg = config.load(args.config)
            jobs = [cfg.job(args.job)] if args.job else list(cfg.jobs.values())
            report = _redacted(log, doctor(jobs, log))
            _print(args, log, report, _doctor_text(report))
            return ExitCode.OK if report["ok"] else ExitCode.CHECK_FAILED
        if args.command == "password":
            from .password import password
            job = config.load(args.config).job(args.job)
            report = _redacted(log, password(job, args.action, log))
            _print(args, log, report, report.get("msg") or ", ".join(report["accepts"]) or "neither stage accepted")
            return ExitCode.OK
        if args.command == "verify":
            from .verify import verify
            report = _redacted(log, verify(args.url, args.region, log))
            _print(args, log, report, _checks_text(report))
            return ExitCode.OK if report["ok"] else ExitCode.VERIFY_FAILED
        if args.command == "compare":
            from .compare import compare_job
            job = config.load(args.config).job(args.job)
            report = _redacted(log, compare_job(job, args.date, args.legacy_url, args.new_url, log))
            _print(args, log, report, _compare_text(report))
            return ExitCode.DIFFERENT if report["verdict"] == "different" else ExitCode.OK
        from . import schedule_cli
        if args.command in schedule_cli.COMMANDS:
            return schedule_cli.main(args, log, _print, _redacted)
        raise UsageError(f"unknown command {args.command}")
    except DumpJobError as exc:
        return _fail(args, log, exc)


def _run(args: argparse.Namespace, log: Logger) -> int:
    from .run import run_job
    try:
        job = config.load(args.config).job(args.job)
    except DumpJobError as exc:
        log.job = args.job
        return _fail(args, log, exc)
    log = Logger(job=job.name, system_log=job.syslog).adopt_secrets(log)
    when = run_time(job.timezone, args.date)
    try:
        summary = run_job(job, when, args.parallel, log)
    except DumpJobError as exc:
        return _fail(args, log, exc)
    attempts = f" ({summary['attempts']} attempts)" if summary["attempts"] > 1 else ""
    log.info("summary", f"published {summary['url']}: {summary['raw_bytes']} bytes dumped, "
             f"{summary['compressed_bytes']} stored, {summary['rows']} rows in {summary['seconds']} s{attempts}",
             **summary)
    if args.json:
        print(log.scrub(json.dumps(_redacted(log, summary), ensure_ascii=False)))
    return ExitCode.ANOMALY if summary["anomaly"]["anomalous"] else ExitCode.OK


def _fail(args: argparse.Namespace, log: Logger, exc: DumpJobError) -> int:
    # The raw message is redacted before it becomes one line (Logger.redact), then again as JSON.
    message = log.redact(str(exc))
    log.error("error", message, error=exc.kind, exit_code=int(exc.exit_code))
    if getattr(args, "json", False):
        failure = {"ok": False, "error": message, "kind": exc.kind, "exit_code": int(exc.exit_code)}
        print(log.scrub(json.dumps(failure, ensure_ascii=False)))
    return int(exc.exit_code)


def _redacted(log: Logger, value: Any) -> Any:
    """A report with every string redacted (raw first) and made one line: a doctor reason may quote
    a driver's error, which may quote what the server was sent."""
    if isinstance(value, str):
        return log.redact(value)
    if isinstance(value, dict):
        return {k: _redacted(log, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(log, v) for v in value]
    return value


def _check_config(args: argparse.Namespace, log: Logger) -> int:
    cfg = config.load(args.config, host_files=not args.skip_host_files)
    jobs = {name: {"kind": j.kind, "bucket": j.bucket, "key": j.key, "parallel_key": j.parallel_key,
                   "legacy_key": j.legacy_key, "schedule": j.schedule, "timezone": j.timezone,
                   "compression": j.compression.type, "deadline": j.deadline}
            for name, j in cfg.jobs.items()}
    report = {"ok": True, "config": cfg.path, "jobs": jobs}
    _print(args, log, report, f"config {cfg.path} is valid: {len(jobs)} job(s): {', '.join(sorted(jobs))}")
    return ExitCode.OK


def _print(args: argparse.Namespace, log: Logger, report: dict[str, Any], text: str) -> None:
    """The report as one JSON line, or as text, each line passed through redaction."""
    if args.json:
        print(log.scrub(json.dumps(report, ensure_ascii=False, indent=None)))
    else:
        print(log.scrub(text))  # every form of every secret, with the report's own layout kept


def _checks_text(report: dict[str, Any]) -> str:
    lines = [f"{'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['reason']}" for c in report["checks"]]
    return "\n".join(lines)


def _doctor_text(report: dict[str, Any]) -> str:
    out = ["host:"] + ["  " + line for line in _checks_text(report).splitlines()]
    for job in report["jobs"]:
        out.append(f"job {job['job']}: {'ok' if job['ok'] else 'FAILED'}")
        out += ["  " + line for line in _checks_text(job).splitlines()]
    return "\n".join(out)


def _compare_text(report: dict[str, Any]) -> str:
    out = [f"{report['verdict']}: {report['legacy']['url']} vs {report['new']['url']}"]
    for t in report["tables"]:
        reasons = f" ({'; '.join(t['reasons'])})" if t["reasons"] else ""
        out.append(f"  {t['verdict']:<10} {t['name']}{reasons}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
