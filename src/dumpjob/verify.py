"""`dumpjob verify S3URL`: stream a published dump and check it against its manifest: stored
size and SHA-256, a complete compressed stream, raw size, the `-- Dump completed` trailer and the
rows per table (for the `query` kind: the number of CSV records); first of all, that the manifest
names the run whose upload became the object (see manifest.describes): a manifest of a run that
never published says nothing about the object, and with no object at all verify fails at once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Optional

from . import aws, manifest
from .errors import VerifyFailedError
from .log import Logger
from .objects import raw_chunks, stored_chunks
from .scan import DumpScanner


def verify(url: str, region: Optional[str], log: Logger) -> dict[str, Any]:
    bucket, key = manifest.parse_s3_url(url)
    s3 = aws.client(aws.session(region), "s3")
    doc = manifest.get(s3, bucket, key)
    object_url = f"s3://{bucket}/{key}"
    exists, run_id, _manifest = manifest.object_run(s3, bucket, key)
    unrelated = manifest.describes(doc, exists, run_id)
    if not exists:
        raise VerifyFailedError(unrelated)
    log.info("verify", f"verifying {object_url} against its manifest")
    digest = hashlib.sha256()
    stored = 0

    def counted() -> Iterator[bytes]:
        nonlocal stored
        for chunk in stored_chunks(s3, bucket, key):
            digest.update(chunk)
            stored += len(chunk)
            yield chunk

    raw = 0
    scanner = DumpScanner(multi_database=len(doc.get("databases") or []) > 1)
    records = CsvRecordCounter()
    stream_problem = None
    try:
        for chunk in raw_chunks(counted(), object_url):
            raw += len(chunk)
            if doc["kind"] == "query":
                records.feed(chunk)
            else:
                scanner.feed(chunk)
    except VerifyFailedError as exc:
        stream_problem = str(exc)
    checks = [
        _check("run", unrelated is None, unrelated or (f"the object is from run {run_id}, which the manifest describes"
                                                       if doc.get("run_id") else "a format-1 manifest names no run")),
        _check("size", stored == doc["compressed_bytes"],
               f"{stored} bytes stored, manifest says {doc['compressed_bytes']}"),
        _check("sha256", digest.hexdigest() == doc["sha256"],
               f"SHA-256 {digest.hexdigest()}, manifest says {doc['sha256']}"),
        _check("stream", stream_problem is None, stream_problem or "the compressed stream is complete"),
        _check("raw_size", raw == doc["raw_bytes"],
               f"{raw} bytes after decompression, manifest says {doc['raw_bytes']}"),
    ]
    if doc["kind"] == "query":
        expected = doc["tables"].get("(query)")
        rows = records.records - (1 if doc.get("csv_header", True) else 0)
        checks.append(_check("rows", rows == expected,
                             f"{rows} CSV records after the header, manifest says {expected}"))
    else:
        checks.append(_check("trailer", scanner.trailer_ok, scanner.trailer or "no '-- Dump completed' trailer"))
        differing = sorted(t for t in set(scanner.rows) | set(doc["tables"])
                           if scanner.rows.get(t) != doc["tables"].get(t))
        checks.append(_check("rows", not differing,
                             "rows per table match the manifest" if not differing else
                             "rows differ for " + ", ".join(f"{t} ({scanner.rows.get(t)} vs {doc['tables'].get(t)})"
                                                            for t in differing[:5])))
    ok = all(c["ok"] for c in checks)
    return {"ok": ok, "url": object_url, "manifest": f"s3://{bucket}/{manifest.manifest_key(key)}",
            "job": doc.get("job"), "sha256": digest.hexdigest(), "compressed_bytes": stored, "raw_bytes": raw,
            "checks": checks}


def _check(name: str, ok: bool, reason: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "reason": reason}


class CsvRecordCounter:
    """Counts RFC 4180 records: line ends outside double quotes (doubled quotes toggle twice)."""

    def __init__(self):
        self.count = 0
        self._quoted = False
        self._last = b"\n"

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        pieces = chunk.split(b'"')
        for i, piece in enumerate(pieces):
            if i:
                self._quoted = not self._quoted
            if not self._quoted:
                self.count += piece.count(b"\n")
        self._last = chunk[-1:]

    @property
    def records(self) -> int:
        return self.count + (0 if self._last == b"\n" else 1)
