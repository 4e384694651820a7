"""`dumpjob status`: what each job published on its last days, read from the manifests of the
job's keys, and when it runs next.

A day's outcome is `published` (a manifest describes the object at the day's key), `published
with anomaly` (its anomaly check found the dump smaller than the previous one), `missing` (the
schedule fired that day, or may have, and nothing is published), `not scheduled` (the schedule
does not fire that day) or `not yet due` (today, before the scheduled time)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Optional

from . import aws, manifest
from .catchup import next_run, parse_cron
from .config import Job
from .keys import run_time
from .keys import timezone as timezone_of
from .retry import schedule_time

PUBLISHED = "published"
ANOMALY = "published with anomaly"
MISSING = "missing"
NOT_SCHEDULED = "not scheduled"
NOT_YET = "not yet due"


def job_status(job: Job, days: int, parallel: bool = False, now: Optional[datetime] = None, s3=None,
               last_day: Optional[date] = None) -> dict[str, Any]:
    """The job's last `days` days (today first, or `last_day` and the days before it) and its next
    run; StorageError when S3 fails."""
    zone = timezone_of(job.timezone)
    current = (now or datetime.now(zone)).astimezone(zone)
    clock = current
    if last_day is not None and last_day < current.date():  # a past day is over: nothing is "not yet due"
        clock = datetime.combine(last_day, time(23, 59, 59), tzinfo=zone)
    s3 = s3 or aws.client(aws.session(job.region), "s3")
    spec = parse_cron(job.schedule)
    start = schedule_time(job.schedule)
    runs, seen = [], set()
    for back in range(days):
        day = (clock - timedelta(days=back)).date()
        key = job.object_key(run_time(job.timezone, day, clock), parallel)
        if key in seen:  # a key without a date: one object for every day
            continue
        seen.add(key)
        found = manifest.published(s3, job.bucket, [key], 1)
        entry: dict[str, Any] = {"day": day.isoformat(), "url": f"s3://{job.bucket}/{key}"}
        if found:
            entry.update(_published(found[0]))
        elif spec is not None and not spec.fires_on(day):
            entry["outcome"] = NOT_SCHEDULED
        elif back == 0 and start is not None and clock.time().replace(tzinfo=None) < start:
            entry["outcome"] = NOT_YET
        else:
            entry["outcome"] = MISSING
        runs.append(entry)
    following = next_run(job.schedule, zone, current)
    return {"job": job.name, "timezone": job.timezone, "schedule": job.schedule, "deadline": job.deadline,
            "parallel": parallel, "next_run": following.isoformat() if following else None, "runs": runs}


def _published(doc: dict[str, Any]) -> dict[str, Any]:
    record = doc.get("anomaly") or {}
    anomalous = bool(record.get("anomalous"))
    findings = record.get("findings") or []
    return {
        "outcome": ANOMALY if anomalous else PUBLISHED,
        "attempts": doc.get("attempt"),  # the attempt that published: the attempts made that day
        "raw_bytes": doc.get("raw_bytes"), "compressed_bytes": doc.get("compressed_bytes"),
        "seconds": doc.get("seconds"), "started_at": doc.get("started_at"), "finished_at": doc.get("finished_at"),
        "run_id": doc.get("run_id"),
        "anomaly": [f"{f.get('what')} -{f.get('drop_percent')} %" for f in findings] if anomalous else [],
    }


def size(value: Optional[int]) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def text(report: list[dict[str, Any]]) -> str:
    out = []
    for job in report:
        following = "none"
        if job["next_run"] is not None:
            at = datetime.fromisoformat(job["next_run"]).astimezone(timezone_of(job["timezone"]))
            following = at.strftime("%Y-%m-%d %H:%M %Z")
        deadline = f", deadline {job['deadline']}" if job["deadline"] else ""
        out.append(f"job {job['job']} ({job['timezone']}, schedule '{job['schedule']}'{deadline}"
                   f"{', parallel key' if job['parallel'] else ''}): next run {following}")
        out.append(f"  {'day':<10}  {'outcome':<22}  {'attempts':>8}  {'raw':>10}  {'stored':>10}  "
                   f"{'duration':>9}  anomaly")
        for run in job["runs"]:
            seconds = "-" if run.get("seconds") is None else f"{run['seconds']:.1f} s"
            anomaly = ", ".join(run.get("anomaly") or []) or "-"
            out.append(f"  {run['day']:<10}  {run['outcome']:<22}  {run.get('attempts') or '-':>8}  "
                       f"{size(run.get('raw_bytes')):>10}  {size(run.get('compressed_bytes')):>10}  "
                       f"{seconds:>9}  {anomaly}")
    return "\n".join(out)
