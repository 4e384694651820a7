"""The command line of `dumpjob status` and `dumpjob catch-up` (docs/dumpjob.md): their arguments
and what they print; cli.py hands them over here."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any, Callable

from . import config
from .errors import UsageError
from .log import Logger

COMMANDS = ("status", "catch-up")


def add_parsers(sub, common: Callable[[argparse.ArgumentParser], None]) -> None:
    status = sub.add_parser("status", help="each job's last runs (from its manifests) and its next run",
                            description="Per job: the last days' outcome (published, published with anomaly, "
                                        "missing, not scheduled, not yet due), the attempts, raw and stored size, "
                                        "duration and anomaly of each published dump, and the next scheduled run "
                                        "in the job's zone.")
    status.add_argument("jobs", nargs="*", metavar="JOB", help="the jobs to show (default: every job)")
    status.add_argument("--days", type=_days, default=7, metavar="N",
                        help="how many days back, today first (default 7)")
    status.add_argument("--date", type=_date, metavar="YYYY-MM-DD",
                        help="the last day to show (default today), e.g. after backfills")
    status.add_argument("--parallel", action="store_true", help="the jobs' parallel_key (cutover phase 2)")
    common(status)

    catch = sub.add_parser("catch-up", help="run the jobs whose scheduled run was missed while the host was down",
                           description="For each job (default: every job): run it now when its scheduled run of "
                                       "the current window was missed (no published manifest for the day) and its "
                                       "deadline has not passed; a job without a deadline is not caught up. Holds "
                                       "the job's lock while it looks, so a run in progress makes it stand aside. "
                                       "Started at boot by the @reboot entry in the job's cron file.")
    catch.add_argument("jobs", nargs="*", metavar="JOB")
    catch.add_argument("--parallel", action="store_true", help="the jobs' parallel_key (cutover phase 2)")
    common(catch)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-01-31") from None


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of days from 1 to 366")
    return int(text)


def main(args: argparse.Namespace, log: Logger, show: Callable[[argparse.Namespace, Logger, dict, str], None],
         redacted: Callable[[Logger, Any], Any]) -> int:
    cfg = config.load(args.config)
    jobs = [cfg.job(name) for name in args.jobs] if args.jobs else [cfg.jobs[n] for n in sorted(cfg.jobs)]
    if args.command == "status":
        from .status import job_status, text
        report = redacted(log, [job_status(job, args.days, args.parallel, last_day=args.date) for job in jobs])
        show(args, log, {"ok": True, "jobs": report}, text(report))
        return 0
    if args.command == "catch-up":
        from .catchup import catch_up, exit_code, text
        outcomes = catch_up(jobs, args.parallel, log)
        report = redacted(log, {"ok": exit_code(outcomes) == 0, "jobs": [o.record() for o in outcomes]})
        show(args, log, report, text(outcomes))
        return exit_code(outcomes)
    raise UsageError(f"unknown command {args.command}")
