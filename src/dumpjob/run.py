"""`dumpjob run JOB`: one dump, streamed to S3 and published all or nothing.

The multipart upload is completed only when mysqldump exited 0, its stderr holds nothing but
known-harmless warnings, the `-- Dump completed` trailer arrived and the dump is above the size
floor (for `query`: the cursor was read to its end and the row floor is met). Then the manifest
is written, naming this run, and the upload completed last (see manifest.py for why that order
keeps the manifest true). Anything else, including SIGTERM/SIGINT before the upload is being
completed, aborts the upload: the key keeps whatever it held before."""

from __future__ import annotations

import os
import platform
import resource
import signal
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

import boto3
import pymysql
from botocore.exceptions import BotoCoreError, ClientError

from . import __version__, anomaly, aws, compress, db, manifest, memory, metrics, mysqldump, retry
from .config import Job
from .csvout import CsvEncoder
from .errors import (
    AnomalyRefusedError,
    DatabaseError,
    DumpIncompleteError,
    DumpJobError,
    RunInterruptedError,
    StorageError,
)
from .keys import key_pattern
from .keys import timezone as timezone_of
from .lock import JobLock
from .log import Logger
from .scan import DumpScanner
from .upload import CompleteError, MultipartUpload, abort_stale, storage_error

BLOCK = 1 << 20
PIPE_GATHER = 256 << 10  # a read shorter than this found the pipe nearly empty


class Progress:
    """Counters of the running dump, logged every `interval` seconds by a daemon thread; with the
    previous dump's raw size (`expected`), also how far along the dump is and when it should end
    at the rate so far."""

    def __init__(self, log: Logger, interval: float):
        self.log, self.interval = log, interval
        self.expected: Optional[int] = None
        self.raw = 0
        self.compressed = 0
        self.table: Optional[str] = None
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.report(time.monotonic() - self.started)

    def report(self, elapsed: float) -> None:
        percent, eta = estimate(self.raw, self.expected, elapsed)
        if percent is None:
            along = ""
        elif eta is None:
            along = f" ({percent:.0f}% of the previous dump's size, past it)" if percent >= 100 else ""
        else:
            along = f" ({percent:.0f}% of the previous dump's size, about {_duration(eta)} left)"
        self.log.info("progress", f"{self.raw / 2**20:.0f} MiB dumped{along}, {self.compressed / 2**20:.0f} MiB "
                      f"uploaded{f', table {self.table}' if self.table else ''}",
                      raw_bytes=self.raw, compressed_bytes=self.compressed, table=self.table,
                      mib_per_s=round(self.raw / 2**20 / elapsed, 1) if elapsed else None,
                      percent=None if percent is None else round(percent, 1),
                      eta_seconds=None if eta is None else round(eta))


def estimate(raw: int, expected: Optional[int], elapsed: float) -> tuple[Optional[float], Optional[float]]:
    """How far along a dump is, in percent of the previous dump's raw size, and the seconds left
    at the rate so far: (None, None) without a previous size; no time left once past it (the
    data grew) or before anything was dumped."""
    if not expected or expected <= 0:
        return None, None
    percent = 100.0 * raw / expected
    if raw <= 0 or raw >= expected or elapsed <= 0:
        return percent, None
    return percent, (expected - raw) * elapsed / raw


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class SignalGuard:
    """SIGTERM/SIGINT/SIGHUP raise RunInterruptedError once in the main thread; later ones are ignored
    while the run cleans up."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self):
        self.received: Optional[int] = None
        self.deferred = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> SignalGuard:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handler(self, signum: int, frame) -> None:
        if self.received is None:
            self.received = signum
            if not self.deferred:
                raise RunInterruptedError(f"stopped by {signal.Signals(signum).name}")


def run_job(job: Job, when: datetime, parallel: bool, log: Logger) -> dict[str, Any]:
    """Run one job, trying again after a transient failure while the job's deadline allows (see
    retry.py); the summary on success, a DumpJobError (with its exit code) otherwise. The lock is
    held from the first attempt to the last."""
    key = job.object_key(when, parallel)
    url = f"s3://{job.bucket}/{key}"
    started_at = datetime.now(timezone.utc)
    t0 = time.monotonic()
    log.info("start", f"dump of job {job.name} to {url} started", kind=job.kind, url=url, parallel=parallel,
             date=when.date().isoformat(), pid=os.getpid())
    sess = aws.session(job.region)
    deadline = _deadline(job, started_at, log)
    history = History(job, when, parallel)
    attempt = 0
    with SignalGuard() as guard, JobLock(job.lock_dir, job.name):
        while True:
            attempt += 1
            guard.deferred = False
            try:
                run = _Run(job, sess, key, log, parallel, when, guard, history, attempt)
                outcome = run.execute()
                break
            except DumpJobError as exc:
                error = exc
            except Exception as exc:  # an unexpected failure: never published, still reported in one line
                error = DumpJobError(f"internal error: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
            try:
                _try_again(job, sess, log, guard, history, deadline, attempt, error)
            except DumpJobError as final:
                anomalous = True if isinstance(final, AnomalyRefusedError) else None  # None: no comparison made
                _metrics(job, sess, log, False, 0, time.monotonic() - t0, attempt, anomalous)
                raise final from error.__cause__
    seconds = time.monotonic() - t0
    outcome.update(started_at=started_at.isoformat(), seconds=round(seconds, 3), attempts=attempt)
    anomaly_text, comparison = outcome.pop("anomaly_text"), outcome["anomaly"]
    if comparison["anomalous"]:
        log.warning("anomaly", f"published {outcome['url']} with an anomaly: {anomaly_text}",
                    tables=comparison["tables"], previous=comparison["previous"])
    _metrics(job, sess, log, True, outcome["compressed_bytes"], seconds, attempt, comparison["anomalous"])
    return outcome


def _deadline(job: Job, now: datetime, log: Logger) -> Optional[datetime]:
    """The deadline this run works towards (None: no retries), logged once."""
    if job.deadline is None:
        return None
    zone = timezone_of(job.timezone)
    deadline = retry.deadline_for(now, zone, retry.schedule_time(job.schedule), retry.parse_deadline(job.deadline))
    if deadline is None:
        log.info("deadline", f"started outside the window from the schedule's start to the deadline {job.deadline} "
                 f"({job.timezone}): one attempt, no retries", deadline=None)
    else:
        log.info("deadline", f"retries until {deadline.isoformat()}: at most {job.retry.max_attempts} attempts, "
                 f"each started only if it can end by then", deadline=deadline.isoformat(),
                 max_attempts=job.retry.max_attempts)
    return deadline


def _try_again(job: Job, sess: boto3.session.Session, log: Logger, guard: SignalGuard, history: History,
               deadline: Optional[datetime], attempt: int, error: DumpJobError) -> None:
    """After a failed attempt: return once it is time for the next one, or raise the error to end
    the run with (the attempt's own, saying why it was not retried)."""
    if isinstance(error, RunInterruptedError):
        raise error
    if guard.received is not None:
        raise RunInterruptedError(f"stopped by {signal.Signals(guard.received).name} while attempt {attempt} "
                                  f"was failing: {error}")
    if job.deadline is None:
        raise error
    if not error.transient:
        log.warning("attempt", f"attempt {attempt} failed ({error.kind}: {error}); not retried: a permanent failure",
                    attempt=attempt, error=error.kind, transient=False, next_attempt_at=None)
        raise error.extended(f"attempt {attempt}, not retried: a permanent failure")
    now = datetime.now(timezone.utc)
    estimate = history.attempt_seconds(aws.client(sess, "s3"), job.retry, log)
    decision = retry.decide(now, deadline, job.retry, attempt, estimate)
    if not decision.retry:
        log.warning("attempt", f"attempt {attempt} failed ({error.kind}: {error}); no further attempt: "
                    f"{decision.reason}", attempt=attempt, error=error.kind, transient=True, next_attempt_at=None,
                    estimate_seconds=estimate)
        raise error.extended(f"attempt {attempt}, not retried: {decision.reason}")
    at = (now + timedelta(seconds=decision.wait)).astimezone(deadline.tzinfo)
    log.warning("attempt", f"attempt {attempt} failed ({error.kind}: {error}); attempt {attempt + 1} at "
                f"{at:%H:%M:%S} {at.tzname()} (in {decision.wait:.0f} s; {decision.reason})", attempt=attempt,
                error=error.kind, transient=True, next_attempt_at=at.isoformat(), wait_seconds=round(decision.wait, 1),
                estimate_seconds=estimate, deadline=deadline.isoformat())
    guard.deferred = False  # the failed attempt's cleanup is over: a signal now ends the wait
    try:
        time.sleep(decision.wait)  # a signal ends the wait (SignalGuard raises here)
    except RunInterruptedError as exc:
        raise RunInterruptedError(f"{exc} while waiting for attempt {attempt + 1}, after attempt {attempt} "
                                  f"failed: {error}") from None


class History:
    """The job's published dumps before this run (their manifests): the previous one for the
    anomaly check, the recent durations for the retries' estimate. Read from S3 once, when first
    needed; a failed read is tried again by the next caller."""

    LOOKBACK_DAYS = 8  # a weekly job's previous dump is 7 days back
    KEEP = 3

    def __init__(self, job: Job, when: datetime, parallel: bool):
        self.job = job
        keys: list[str] = []
        for days in range(self.LOOKBACK_DAYS + 1):
            key = job.object_key(when - timedelta(days=days), parallel)
            if key not in keys:
                keys.append(key)
        self.keys = keys
        self._manifests: Optional[list[dict[str, Any]]] = None

    def manifests(self, s3) -> list[dict[str, Any]]:
        """Up to KEEP manifests of published dumps, the latest first (this day's key first: a run
        of a day already published compares with that dump); StorageError when S3 fails."""
        if self._manifests is None:
            self._manifests = manifest.published(s3, self.job.bucket, self.keys, self.KEEP)
        return self._manifests

    def previous(self, s3) -> Optional[dict[str, Any]]:
        found = self.manifests(s3)
        return found[0] if found else None

    def attempt_seconds(self, s3, policy: retry.RetryPolicy, log: Logger) -> float:
        try:
            found = self.manifests(s3)
        except StorageError as exc:
            log.warning("history", f"the job's earlier manifests could not be read ({exc}); an attempt is taken to "
                        f"last retry.attempt_seconds ({policy.attempt_seconds:.0f} s)")
            found = []
        return retry.estimate([doc.get("seconds") for doc in found], policy)


def _metrics(job: Job, sess: boto3.session.Session, log: Logger, ok: bool, nbytes: int, seconds: float,
             attempts: int, anomaly: Optional[bool]) -> None:
    if not job.metrics_namespace:
        return
    problem = metrics.put_run(aws.client(sess, "cloudwatch", attempts=3), job.metrics_namespace, job.name, ok,
                              nbytes, seconds, attempts, anomaly)
    if problem:
        log.warning("metrics", f"CloudWatch metrics not published ({problem}); the run's outcome stands")


class _Run:
    def __init__(self, job: Job, sess: boto3.session.Session, key: str, log: Logger, parallel: bool,
                 when: datetime, guard: SignalGuard, history: History, attempt: int = 1):
        self.job, self.sess, self.key, self.log, self.parallel, self.when = job, sess, key, log, parallel, when
        self.guard, self.history, self.attempt = guard, history, attempt
        self.comparison: Optional[anomaly.Comparison] = None
        self.url = f"s3://{job.bucket}/{key}"
        self.s3 = aws.client(sess, "s3", pool=job.upload_concurrency + 4)
        self.started_at = datetime.now(timezone.utc)
        self.t0 = time.monotonic()
        self.progress = Progress(log, job.progress_seconds)
        self.run_id = uuid.uuid4().hex
        self.previous_manifest: Optional[bytes] = None  # what the key's manifest was before ours
        self.manifest_written = False
        self.decided = False  # the upload was completed, or may have been: nothing left to abort
        self.codec_cpu: Optional[float] = None
        self.deflate_blocks: Optional[dict[str, int]] = None  # gzip blocks per library, when ISA-L is tried

    # -- the shared frame -------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        if self.job.compression.type == "gzip":
            memory.limit_arenas()  # before the run's threads start
        self.deflate = compress.deflate_implementation() if self.job.compression.type == "gzip" else None
        if self.deflate is not None:
            self.log.info("compression", f"gzip through {self.deflate.describe(self.job.compression.level)}, "
                          f"{compress.threads_for(self.job.compression)} threads", deflate=self.deflate.name,
                          deflate_version=self.deflate.version)
        sm = aws.client(self.sess, "secretsmanager")
        # S3's checks and the upload's creation run in a thread of their own (clients are
        # thread-safe) while the database is logged in to and the dump starts.
        upload = MultipartUpload(self.job.bucket, self.key, self.job.work_dir, self.job.upload_concurrency,
                                 self.job.part_size_mib, self.job.sse_kms_key_id,
                                 {"dumpjob-job": self.job.name, "dumpjob-version": __version__,
                                  manifest.RUN_METADATA: self.run_id},
                                 "application/zstd" if self.job.compression.type == "zstd" else "application/gzip")
        upload.start(self._s3_checks, self._abort_stale)
        conn = None
        # From here on, any way out but a completed upload aborts it (_abandon).
        try:
            client = mysqldump.detect_client(self.job.mysqldump) if self.job.kind == "mysqldump" else None
            database = self.job.database if self.job.kind == "query" else None
            creds, conn = db.login(
                sm, self.job.secret_id,
                lambda c: db.connect(c, database=database, ssl_ca=self.job.ssl_ca, timeout=self.job.connect_timeout),
                on_retry=lambda msg: self.log.warning("auth_retry", msg), remember=self.log.add_secret)
            self.creds = creds
            server = db.server_info(conn)
            self.log.info("database", f"logged in to {server.flavour} {server.version} at {creds.host}:{creds.port} "
                          f"as {creds.username} (secret stage {creds.stage})", server_version=server.version,
                          stage=creds.stage, tls=db.tls_cipher(conn))
            compat = None
            if client is not None:
                compat = mysqldump.compatibility(client, server, self.job.flavour_mismatch)
                if compat.mode != mysqldump.NATIVE:
                    self.log.warning("flavour", f"the {client.flavour} client dumps a {server.flavour} server: mode "
                                     f"{compat.mode}, MariaDB's sandbox-mode line "
                                     f"{'dropped' if compat.drop_sandbox_line else 'kept'}", **compat.record)
                conn.close()
                conn = None
            upload.allow()
            if compat is not None:
                details = self._stream(upload, lambda sink: self._mysqldump(client, compat, sink))
                details["compatibility"] = compat.record
            else:
                details = self._stream(upload, lambda sink: self._query(conn, sink))
            details["versions"]["server"] = server.version
            self.log.info("streamed", f"dump streamed: {details['raw_bytes'] / 2**20:.0f} MiB dumped, "
                          f"{upload.size / 2**20:.0f} MiB uploaded in {len(upload.parts)} parts; publishing",
                          raw_bytes=details["raw_bytes"], compressed_bytes=upload.size, parts=len(upload.parts),
                          seconds=round(time.monotonic() - self.t0, 3))
            self._pause("streamed")
            return self._publish(upload, details)
        except BaseException as exc:
            raise self._abandon(upload, exc) from None
        finally:
            if conn is not None and conn.open:
                conn.close()

    def _s3_checks(self) -> Any:
        """The upload's start, before it may create the upload: the bucket, and the previous
        dump's size for the progress line."""
        self._check_bucket()
        self.progress.expected = self._previous_raw_bytes()
        return self.s3

    def _abort_stale(self, s3) -> None:
        template, prefix = key_pattern(self.job.parallel_key if self.parallel else self.job.key, self.job.name)
        stale = abort_stale(s3, self.job.bucket, template, prefix)
        if stale:
            self.log.warning("stale_upload", f"aborted {stale} incomplete upload(s) of this job under "
                             f"s3://{self.job.bucket}/{prefix} left by an earlier run")

    def _previous_raw_bytes(self) -> Optional[int]:
        """The raw size of the job's previous published dump, for the progress line; None when
        there is none or S3 cannot tell now (the anomaly check reads it again at the end)."""
        try:
            previous = self.history.previous(self.s3)
        except StorageError:
            return None
        raw = (previous or {}).get("raw_bytes")
        return raw if isinstance(raw, int) and raw > 0 else None

    def _check_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.job.bucket)
        except (ClientError, BotoCoreError) as exc:
            if aws.error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"bucket '{self.job.bucket}' does not exist; create it or fix 'bucket' in the "
                                   "job") from None
            raise storage_error("checking the bucket of", self.url, exc) from None

    def _stream(self, upload: MultipartUpload, produce: Callable) -> dict[str, Any]:
        """Run `produce(sink)` into compressor and upload, and wait for every part; the caller
        aborts the upload when this raises."""
        compressor = compress.make(self.job.compression, self._emitter(upload), self.deflate)
        self.progress.start()
        try:
            details = produce(compressor.feed)
            compressor.finish()
            self.codec_cpu = compressor.cpu_seconds
            self.deflate_blocks = compressor.blocks_written
            upload.finish_parts()
            return details
        except BaseException:
            compressor.close()
            raise
        finally:
            self.progress.stop()

    def _abandon(self, upload: MultipartUpload, exc: BaseException) -> BaseException:
        """Abort the upload after `exc`, put back the manifest this run replaced, and return the
        error to raise: its message ends with what the key holds now."""
        self.guard.deferred = True  # a second signal must not cut the cleanup short
        self.progress.stop()
        if self.decided:
            return exc  # the upload was completed (or may have been): the message says what the key holds
        if not upload.allowed:  # failed before the dump began: the upload is not created (its checks may still run)
            upload.abort(0.0)
            return exc
        started = upload.stop_start(120.0)
        upload_id = upload.upload_id
        if upload_id is not None:
            self.log.warning("aborting", f"aborting upload {upload_id} to {self.url}: {exc}")
            confirmed = upload.abort()
            self.log.info("aborted", f"upload {upload_id} to {self.url} aborted" if confirmed else
                          f"upload {upload_id} to {self.url} could not be aborted", confirmed=confirmed)
        else:
            confirmed = upload.abort() and started
        if confirmed:
            suffix = "upload aborted, nothing published"
        elif upload_id is None:
            suffix = ("S3 did not answer the upload's start; nothing was published, and an upload it may have "
                      "created is removed by the job's next run or a bucket lifecycle rule "
                      "(AbortIncompleteMultipartUpload)")
        else:
            suffix = (f"the incomplete upload {upload_id} could not be aborted (S3 unreachable); nothing was "
                      "published, and the job's next run or a bucket lifecycle rule (AbortIncompleteMultipartUpload) "
                      "removes it")
        suffix += "; " + (self._restore_manifest() if self.manifest_written else
                          f"{self.url} holds what it held before")
        if isinstance(exc, DumpJobError):
            return exc.extended(suffix)
        if isinstance(exc, Exception):
            return DumpJobError(f"internal error: {type(exc).__name__}: {exc}; {suffix}")
        return exc

    def _pause(self, point: str) -> None:
        """Test hook: with DUMPJOB_TEST_STOP_AT naming this point (comma-separated names), the
        process stops itself (SIGSTOP) here, so that a test can kill or signal it between two
        publishing steps. Points: streamed, manifest_written, completed, published."""
        if point in os.environ.get("DUMPJOB_TEST_STOP_AT", "").split(","):
            self.log.info("test_stop", f"stopped at {point} (DUMPJOB_TEST_STOP_AT)", point=point)
            os.kill(os.getpid(), signal.SIGSTOP)
            # Resumed. A signal sent while the process was stopped may be taken by any of its
            # threads; the pause lets its handler run here, at the named point, not a step later.
            time.sleep(0.2)

    def _emitter(self, upload: MultipartUpload) -> Callable[[bytes], None]:
        def emit(data: bytes) -> None:
            upload.write(data)
            self.progress.compressed += len(data)
        return emit

    # -- the mysqldump kind -----------------------------------------------------------------------
    def _mysqldump(self, client: mysqldump.Client, compat: mysqldump.Compatibility,
                   feed: Callable[[bytes, Optional[str]], None]) -> dict:
        args = mysqldump.flags(compat, self.job)
        scanner = DumpScanner(multi_database=len(self.job.databases) > 1)
        first_line = mysqldump.FirstLineFilter(compat.drop_sandbox_line)
        dump = mysqldump.DumpProcess.start(client, args, self.creds, self.job.ssl_ca, self.job.credentials_transport,
                                           self.job.work_dir)
        self.log.info("mysqldump", f"{client.version_line} started, output in {client.output_buffering}",
                      flags=dump.public_flags(), pid=dump.proc.pid, output_buffer=bool(client.wrapper))
        raw = 0
        # mysqldump writes in pieces of a few KiB; read at once, the pipe hands them over one by
        # one (tens of thousands of reads per GiB, each a trip through this loop). With a 1 MiB
        # pipe, a short pause after a short read lets it gather a few hundred KiB first, still far
        # from full, so mysqldump never waits on it.
        pause = 0.001 if dump.pipe_size >= BLOCK else 0.0
        try:
            fd = dump.stdout_fd
            pending: list[bytes] = []
            size = 0
            while True:
                chunk = os.read(fd, BLOCK - size)
                if not chunk:
                    pending.append(first_line.flush())
                    break
                chunk = first_line.feed(chunk)
                pending.append(chunk)
                size += len(chunk)
                if size < BLOCK:
                    if pause and len(chunk) < PIPE_GATHER:
                        time.sleep(pause)
                    continue
                data = b"".join(pending) if len(pending) > 1 else pending[0]
                pending, size = [], 0
                scanner.feed(data)
                feed(data, scanner.table)
                raw += len(data)
                self.progress.raw, self.progress.table = raw, scanner.table
            data = b"".join(pending)
            if data:
                scanner.feed(data)
                feed(data, scanner.table)
                raw += len(data)
                self.progress.raw = raw
            returncode = dump.wait()
        except BaseException:
            dump.stop()
            raise
        problem = mysqldump.failure(returncode, dump.stderr_lines, self.job.harmless_warnings, raw, self.job.ssl_ca)
        if isinstance(problem, DumpIncompleteError) and returncode > 0:
            gone = self._database_gone()
            if gone:
                raise DatabaseError(f"database connection lost during the dump after {raw} bytes (mysqldump exited "
                                    f"{returncode} and the server no longer answers: {gone}); check the server and "
                                    "retry", transient=True) from None
        if problem is not None:
            raise problem
        if not scanner.trailer_ok:
            raise DumpIncompleteError(f"the dump has no '-- Dump completed' trailer after {raw} bytes "
                                      "(mysqldump exited 0)")
        if raw < self.job.min_bytes:
            raise DumpIncompleteError(f"the dump is {raw} bytes, below the floor of {self.job.min_bytes} (min_bytes)")
        for line in dump.stderr_lines:
            self.log.warning("mysqldump_stderr", f"mysqldump: {line}")
        return {"raw_bytes": raw, "tables": scanner.rows, "trailer": scanner.trailer, "flags": dump.public_flags(),
                "versions": {"mysqldump": client.version_line}, "sandbox_line_dropped": first_line.dropped}

    def _database_gone(self) -> Optional[str]:
        """Why the database cannot be reached now, or None when it answers (a failed mysqldump may
        have lost its server without saying so on stderr)."""
        try:
            db.connect(self.creds, ssl_ca=self.job.ssl_ca, timeout=5).close()
        except DatabaseError as exc:
            return str(exc).split(" (", 1)[-1].split(");", 1)[0]
        return None

    # -- the query kind ---------------------------------------------------------------------------
    def _query(self, conn, feed: Callable[[bytes], None]) -> dict:
        encoder = CsvEncoder(self.job.csv)
        raw = rows = 0
        cur = conn.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.execute("SET SESSION net_write_timeout = 3600")
            cur.execute(self.job.query)
            if cur.description is None:
                raise DatabaseError("the job's query returned no result set; 'query' must be a SELECT")
            columns = [d[0] for d in cur.description]
            pending = [encoder.line(columns).encode("utf-8")] if encoder.header else []
            size = len(pending[0]) if pending else 0
            while True:
                batch = cur.fetchmany(2000)
                if not batch:
                    break
                rows += len(batch)
                data = encoder.lines(batch)
                pending.append(data)
                size += len(data)
                if size >= BLOCK:
                    block = b"".join(pending)
                    pending, size = [], 0
                    feed(block)
                    raw += len(block)
                    self.progress.raw = raw
            if pending:
                block = b"".join(pending)
                feed(block)
                raw += len(block)
                self.progress.raw = raw
            cur.close()
        except pymysql.err.MySQLError as exc:
            db.drop_connection(conn)
            if db.is_lost_connection(exc):
                raise DatabaseError(f"database connection lost during the query after {rows} rows "
                                    f"({db.reason(exc)}); check the server and retry", transient=True) from None
            if db.is_server_interruption(exc):
                raise DatabaseError(f"the database server interrupted the query after {rows} rows "
                                    f"({db.reason(exc)}); check the server's log and retry", transient=True) from None
            raise DatabaseError(f"the job's query failed ({db.reason(exc)}); fix 'query' or the grants") from None
        except BaseException:
            # Closing the cursor would read the rest of the result set first (PyMySQL drains an
            # unbuffered result); dropping the connection stops the read, and the server's query
            # with it, at once.
            db.drop_connection(conn)
            raise
        if rows < self.job.min_rows:
            raise DumpIncompleteError(f"the query returned {rows} rows, below the floor of {self.job.min_rows} "
                                      "(min_rows)")
        if raw < self.job.min_bytes:
            raise DumpIncompleteError(f"the export is {raw} bytes, below the floor of {self.job.min_bytes} (min_bytes)")
        return {"raw_bytes": raw, "tables": {"(query)": rows}, "columns": columns, "trailer": None,
                "flags": [], "versions": {"pymysql": pymysql.__version__}}

    # -- publishing -------------------------------------------------------------------------------
    def _publish(self, upload: MultipartUpload, details: dict) -> dict[str, Any]:
        """Manifest first (naming this run), then the object, which carries the run's id from its
        creation: the manifest describes the object at the key only when the ids match, so a kill
        between any two steps leaves a state verify, compare and the cutover classify correctly."""
        if self.guard.received is not None:
            raise RunInterruptedError(f"stopped by {signal.Signals(self.guard.received).name}")
        self.comparison = anomaly.compare(self.history.previous(self.s3), details["raw_bytes"], details["tables"],
                                          self.job.anomaly)
        if self.comparison.anomalous and self.job.anomaly.action == "refuse":
            raise AnomalyRefusedError(f"anomaly: {self.comparison.describe()}; not published (anomaly.action: "
                                      "refuse; if the data really shrank, publish it with anomaly.action: publish "
                                      "or wider limits)")
        sha256 = upload.sha256.hexdigest()
        document = self._manifest(upload, details, sha256)
        self.previous_manifest = manifest.get_body(self.s3, self.job.bucket, self.key)
        self.manifest_written = True  # from the attempt on, unless S3 answered that it refused the write
        try:
            manifest_key = manifest.put(self.s3, self.job.bucket, self.key, document, self.job.sse_kms_key_id)
        except StorageError as exc:
            self.manifest_written = getattr(exc, "maybe_written", True)
            raise
        self._pause("manifest_written")
        # The point of no return: a signal from here on waits until the upload is complete.
        self.guard.deferred = True
        if self.guard.received is not None:
            raise RunInterruptedError(f"stopped by {signal.Signals(self.guard.received).name}")
        try:
            upload.complete()
        except CompleteError as exc:
            self._resolve_complete(upload, exc)
        self.decided = True
        self._pause("completed")
        exists, run_id, length = manifest.object_run(self.s3, self.job.bucket, self.key)
        if not exists or run_id != self.run_id or length != upload.size:
            # Never deleted: the instance role has no s3:DeleteObject on the dump prefixes, and
            # whatever the key holds may be the only copy someone has.
            raise StorageError(f"the upload to {self.url} was completed, but the key holds "
                               f"{'nothing' if not exists else f'{length} bytes of run {run_id}'} instead of the "
                               f"{upload.size} bytes of this run {self.run_id}; left as it is (dumpjob deletes no "
                               f"dump), and its manifest does not describe it (dumpjob verify {self.url} says so); "
                               "find what else writes to the key (the bucket's object versions show it), stop it, "
                               "then run the job again")
        if self.guard.received is not None:
            self.log.warning("signal", f"{signal.Signals(self.guard.received).name} arrived while publishing; the "
                             "dump was published in full first")
        self._pause("published")
        usage, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = usage.ru_maxrss / 1024
        seconds = time.monotonic() - self.t0
        return {
            "ok": True, "job": self.job.name, "url": self.url, "bucket": self.job.bucket, "key": self.key,
            "manifest": f"s3://{self.job.bucket}/{manifest_key}", "run_id": self.run_id,
            "raw_bytes": details["raw_bytes"], "compressed_bytes": upload.size, "sha256": sha256,
            "parts": len(upload.parts), "rows": sum(details["tables"].values()), "tables": len(details["tables"]),
            "anomaly": self.comparison.record(), "anomaly_text": self.comparison.describe(),
            "mib_per_s": round(details["raw_bytes"] / 2**20 / seconds, 1) if seconds else None,
            "peak_rss_mib": round(peak, 1), "deflate_blocks": self.deflate_blocks,
            # where the CPU went: this process (all its threads), its children (mysqldump), the reading
            # thread (reading, scanning, hashing, spooling), the codec's workers
            "cpu_seconds": {"process": round(usage.ru_utime + usage.ru_stime, 3),
                            "main_thread": round(time.thread_time(), 3),
                            "children": round(children.ru_utime + children.ru_stime, 3),
                            "codec": None if self.codec_cpu is None else round(self.codec_cpu, 3)},
        }

    def _resolve_complete(self, upload: MultipartUpload, exc: CompleteError) -> None:
        """CompleteMultipartUpload failed, or its answer was lost and the retry found no upload
        (NoSuchUpload): the object at the key decides whether this run's upload became it."""
        try:
            exists, run_id, length = manifest.object_run(self.s3, self.job.bucket, self.key)
        except StorageError as head_failed:
            self.decided = True
            raise StorageError(f"{exc}; whether the dump was published is unknown ({head_failed}); "
                               f"run 'dumpjob verify {self.url}': its manifest describes the object only if this "
                               "run's upload completed") from None
        if exists and run_id == self.run_id and length == upload.size:
            self.log.warning("complete_resolved", f"completing the upload to {self.url} reported {exc.code or exc}, "
                             "but the object at the key is this run's: the upload was completed", code=exc.code)
            upload.upload_id = None
            return
        raise exc

    def _restore_manifest(self) -> str:
        """Put back the manifest this run replaced (it describes the object the key still holds);
        without one, this run's manifest stays and, naming a run that never published, describes
        nothing. Returns what the key holds now, for the error line."""
        if self.previous_manifest is None:
            return f"{self.url} holds what it held before"
        try:
            manifest.put_body(self.s3, self.job.bucket, self.key, self.previous_manifest, self.job.sse_kms_key_id)
        except StorageError as exc:
            return (f"{self.url} holds what it held before, but its earlier manifest could not be put back ({exc}); "
                    "run the job again")
        return f"{self.url} and its manifest hold what they held before"

    def _manifest(self, upload: MultipartUpload, details: dict, sha256: str) -> dict[str, Any]:
        finished_at = datetime.now(timezone.utc)
        document = {
            "format": manifest.FORMAT, "run_id": self.run_id, "job": self.job.name, "kind": self.job.kind,
            "bucket": self.job.bucket, "key": self.key, "url": self.url, "parallel": self.parallel,
            "date": self.when.date().isoformat(), "timezone": self.job.timezone,
            "started_at": self.started_at.isoformat(), "finished_at": finished_at.isoformat(),
            "seconds": round(time.monotonic() - self.t0, 3),
            "raw_bytes": details["raw_bytes"], "compressed_bytes": upload.size, "sha256": sha256,
            "parts": len(upload.parts),
            "compression": {"type": self.job.compression.type, "level": self.job.compression.level},
            "tables": details["tables"], "trailer": details["trailer"], "flags": details["flags"],
            "attempt": self.attempt, "anomaly": self.comparison.record() if self.comparison else None,
            "databases": list(self.job.databases) or [self.job.database],
            "db_host": self.creds.host, "secret_stage": self.creds.stage,
            "sse_kms_key_id": self.job.sse_kms_key_id,
            "versions": {"dumpjob": __version__, "python": platform.python_version(), "boto3": boto3.__version__,
                         **details["versions"]},
        }
        if "compatibility" in details:
            document["compatibility"] = details["compatibility"]
        if "columns" in details:
            document["columns"] = details["columns"]
            document["csv_header"] = self.job.csv.header
            document["csv_null"] = self.job.csv.null
        return document
