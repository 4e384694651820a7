"""`dumpjob compare JOB --date D`: the legacy and the new object of one day, table by table.

Verdict per table: `identical` (same text once volatile lines are left out), `equivalent` (same
DDL, row count and rows, in another batching or order), `different` (with the reasons). The
overall verdict is the worst of the tables'. Both objects are streamed: memory is bounded by the
longest line."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from typing import Any, Optional

from . import aws, manifest
from .config import Job
from .digest import csv_sections, dump_sections
from .keys import run_time
from .log import Logger
from .objects import raw_chunks, split_lines, stored_chunks

RANK = {"identical": 0, "equivalent": 1, "different": 2}


def compare_job(job: Job, day: date, legacy_url: Optional[str], new_url: Optional[str], log: Logger) -> dict[str, Any]:
    when = run_time(job.timezone, day)
    legacy_url = legacy_url or f"s3://{job.bucket}/{job.legacy_object_key(when)}"
    new_url = new_url or f"s3://{job.bucket}/{job.object_key(when, parallel=True)}"
    s3 = aws.client(aws.session(job.region), "s3")
    log.info("compare", f"comparing {legacy_url} with {new_url}", job=job.name)
    legacy = _digest(s3, legacy_url, job)
    new = _digest(s3, new_url, job)
    tables = compare_sections(legacy.pop("sections"), new.pop("sections"))
    verdict = max((t["verdict"] for t in tables), key=RANK.__getitem__, default="identical")
    return {"job": job.name, "date": day.isoformat(), "verdict": verdict, "legacy": legacy, "new": new,
            "ignore_auto_increment": job.ignore_auto_increment, "tables": tables}


def _digest(s3, url: str, job: Job) -> dict[str, Any]:
    bucket, key = manifest.parse_s3_url(url)
    stored = hashlib.sha256()
    size = 0
    raw = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in stored_chunks(s3, bucket, key):
            stored.update(chunk)
            size += len(chunk)
            yield chunk

    def raw_counted() -> Iterator[bytes]:
        nonlocal raw
        for chunk in raw_chunks(counted(), url):
            raw += len(chunk)
            yield chunk

    lines = split_lines(raw_counted())
    sections = csv_sections(lines) if job.kind == "query" else dump_sections(lines, job.ignore_auto_increment)
    return {"url": url, "compressed_bytes": size, "sha256": stored.hexdigest(), "raw_bytes": raw,
            "sections": sections}


def compare_sections(legacy: dict[str, dict], new: dict[str, dict]) -> list[dict[str, Any]]:
    names = list(new) + [n for n in legacy if n not in new]
    out = []
    for name in names:
        a, b = legacy.get(name), new.get(name)
        reasons = []
        if a is None:
            verdict, reasons = "different", ["missing in the legacy dump"]
        elif b is None:
            verdict, reasons = "different", ["missing in the new dump"]
        elif a["exact_sha256"] == b["exact_sha256"]:
            verdict = "identical"
        else:
            if a["ddl_sha256"] != b["ddl_sha256"]:
                reasons.append("DDL differs")
            if a["rows"] != b["rows"]:
                reasons.append(f"row count {a['rows']} (legacy) vs {b['rows']} (new)")
            elif a["content_sha256"] != b["content_sha256"]:
                reasons.append("row contents differ")
            verdict = "different" if reasons else "equivalent"
            if not reasons:
                reasons.append("same DDL and rows, different batching, order or comments")
        entry = {"name": name, "kind": (b or a)["kind"], "verdict": verdict, "reasons": reasons}
        for side, data in (("legacy", a), ("new", b)):
            entry[side] = None if data is None else {k: data[k] for k in ("ddl_sha256", "rows", "content_sha256")}
        out.append(entry)
    return out
