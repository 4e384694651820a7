"""S3 multipart upload fed by a stream: parts spooled to unnamed temporary files in a private
directory (never more than concurrency + 1 of them, none larger than one part), uploaded in
parallel with a CRC-32 checksum per part, completed only when the caller says so and aborted
otherwise.

S3 checks each part against its CRC-32 on arrival, so a part damaged on the way is refused and
sent again. CRC-32 is the AWS SDKs' default part checksum; it is computed here with ISA-L's (the
`isal` package, else zlib's; the same function): 0.007 CPU-s for the benchmark's 165 MiB of
output, where SHA-256 per part took 0.10, and S3's emulator completed the upload about 0.07 s
sooner. The object's SHA-256, which `verify` checks, is the manifest's, computed once over the
whole stream (see docs/dumpjob.md, "Performance").

Part sizes grow so that any dump up to 1 TB fits in S3's 10,000 parts while small dumps still
upload in parallel: parts 1-1000 are `part_size_mib` (8 MiB by default), 1001-2000 twice that,
and so on (8 MiB base: 8 GB, 24 GB, 56 GB, 120 GB, 248 GB, 504 GB, 1016 GB after 7,000 parts)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import shutil
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before Python 3.11
from dataclasses import dataclass
from typing import Any, Callable, Optional

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .aws import NO_CREDENTIALS, describe, error_code, transient_aws_error
from .errors import StorageError

MIB = 1 << 20
MAX_PARTS = 10_000
TIER = 1000

try:  # ISA-L's CRC-32: the same checksum as zlib's, several times faster
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - the wheelhouse ships isal
    crc32 = zlib.crc32


def crc32_b64(value: int) -> str:
    """A CRC-32 as S3 takes it: the 4 bytes big-endian, base64."""
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def part_size(number: int, base_mib: int) -> int:
    return base_mib * MIB * 2 ** ((number - 1) // TIER)


def capacity(base_mib: int) -> int:
    return sum(part_size(n, base_mib) for n in range(1, MAX_PARTS + 1, TIER)) * TIER


@dataclass
class Part:
    number: int
    size: int
    crc32_b64: str
    etag: Optional[str] = None


def storage_error(action: str, url: str, exc: BaseException) -> StorageError:
    """The StorageError for an S3 failure: transient when S3 was unreachable, slow or failing on
    its side (a later attempt may succeed), permanent when it refused or the bucket is missing."""
    code = error_code(exc)
    if isinstance(exc, NoCredentialsError):
        return StorageError(f"{action} {url} failed: {NO_CREDENTIALS}", transient=False)
    if code == "NoSuchBucket":
        bucket = url[5:].split("/", 1)[0]
        return StorageError(f"bucket '{bucket}' does not exist; create it or fix 'bucket' in the job", transient=False)
    if code in ("AccessDenied", "403", "Forbidden"):
        return StorageError(f"{action} {url} was denied ({describe(exc)}); allow it in the instance role's policy",
                            transient=False)
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{action} {url} failed: S3 endpoint unreachable ({type(exc).__name__}); "
                            "check the network or the endpoint")
    return StorageError(f"{action} {url} failed ({describe(exc)})", transient=transient_aws_error(exc))


class CompleteError(StorageError):
    """CompleteMultipartUpload failed or its answer was lost; `code` is S3's error code, if any."""

    def __init__(self, message: str, code: str = "", transient: bool | None = None):
        super().__init__(message, transient)
        self.code = code


class UploadCancelledError(Exception):
    """Raised into botocore's retry loop of a part upload once the upload is being aborted."""


class MultipartUpload:
    """Write compressed bytes in order with write(); then complete() or abort().

    The upload starts in a thread of its own (start()), so that the S3 round trips before it do
    not delay the dump: the caller's checks run at once, CreateMultipartUpload once the caller
    allows it (allow()). Parts written meanwhile are spooled and uploaded once the upload exists;
    a failed start reaches write() and finish_parts() as a failed part does."""

    def __init__(self, bucket: str, key: str, work_dir: str, concurrency: int = 4, base_part_mib: int = 8,
                 sse_kms_key_id: Optional[str] = None, metadata: Optional[dict] = None,
                 content_type: str = "application/octet-stream"):
        self.s3: Any = None  # the client the start hands over
        self.bucket, self.key = bucket, key
        self.url = f"s3://{bucket}/{key}"
        self.base_part_mib = base_part_mib
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.parts: list[Part] = []
        self.upload_id: Optional[str] = None
        self._error: Optional[BaseException] = None
        self._slots = threading.BoundedSemaphore(concurrency + 1)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload")
        self._futures = []
        self._dir = tempfile.mkdtemp(prefix="dumpjob-parts-", dir=work_dir)
        self._file = None
        self._part_crc = 0
        self._part_bytes = 0
        self._aborting = False
        self._args = {"Bucket": bucket, "Key": key, "ChecksumAlgorithm": "CRC32", "ContentType": content_type}
        if sse_kms_key_id:
            self._args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=sse_kms_key_id)
        if metadata:
            self._args["Metadata"] = metadata
        self.allowed = False
        self._allowed = threading.Event()
        self._started = threading.Event()  # the start is over: the upload exists, or it failed or stopped

    # -- starting ---------------------------------------------------------------------------
    def start(self, check: Callable[[], Any], before_create: Callable[[Any], None]) -> None:
        """In a thread: `check()` (returns the S3 client to upload with), then, once allow() was
        called, `before_create(client)` and CreateMultipartUpload. An exception of either is the
        upload's failure, raised to the writer as it is (StorageError) or as an internal error."""
        thread = threading.Thread(target=self._start, args=(check, before_create), name="upload-start", daemon=True)
        thread.start()

    def _start(self, check: Callable[[], Any], before_create: Callable[[Any], None]) -> None:
        try:
            s3 = check()
            self._allowed.wait()
            if self._aborting:
                return
            before_create(s3)
            self._create(s3)
        except BaseException as exc:  # handed to the writer thread
            if self._error is None:
                self._error = self._start_failure(exc)
        finally:
            self._started.set()

    def _start_failure(self, exc: BaseException) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, (ClientError, BotoCoreError)):
            return storage_error("starting the upload to", self.url, exc)
        return StorageError(f"starting the upload to {self.url} failed: internal error: {type(exc).__name__}: {exc}",
                            transient=False)

    def _create(self, s3) -> None:
        # An aborting upload must not keep retrying its parts in flight (S3 may answer them with errors).
        s3.meta.events.register_first("needs-retry.s3.UploadPart", self._no_retry_when_aborting,
                                      unique_id=f"dumpjob-no-retry-{id(self)}")
        try:
            upload_id = s3.create_multipart_upload(**self._args)["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            raise storage_error("starting the upload to", self.url, exc) from None
        self.s3, self.upload_id = s3, upload_id
        if self._aborting:  # abort() stopped waiting for the start: undo it here
            abort_upload(s3, self.bucket, self.key, upload_id, 10.0)

    def allow(self) -> None:
        """Let the start create the upload; its checks' failure is raised now if it is known."""
        self.allowed = True
        self._allowed.set()
        if self._error is not None:
            raise self._failure()

    def stop_start(self, timeout: float) -> bool:
        """Stop a start that has not created the upload yet and wait for it to end; False when it
        has not ended within `timeout` (S3 does not answer)."""
        self._aborting = True
        self._allowed.set()
        end = time.monotonic() + timeout
        while not self._started.wait(min(0.5, max(0.0, end - time.monotonic()))):
            if time.monotonic() >= end:
                return False
        return True

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._failure()
        if self._file is None:
            self._acquire_slot()
            self._file = tempfile.TemporaryFile(dir=self._dir)  # noqa: SIM115 - closed by the upload worker
            self._part_crc = 0
            self._part_bytes = 0
        self._file.write(data)
        self._part_crc = crc32(data, self._part_crc)
        self.sha256.update(data)
        self._part_bytes += len(data)
        self.size += len(data)
        if self._part_bytes >= part_size(len(self.parts) + 1, self.base_part_mib):
            self._submit()

    def _no_retry_when_aborting(self, **kwargs) -> None:
        if self._aborting:
            raise UploadCancelledError("upload aborted")

    def _acquire_slot(self) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self._error is not None:
                raise self._failure()

    def _submit(self) -> None:
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            raise StorageError(f"upload to {self.url} needs more than {MAX_PARTS} parts; raise 'part_size_mib'",
                               transient=False)
        part = Part(number, self._part_bytes, crc32_b64(self._part_crc))
        self.parts.append(part)
        handle, self._file = self._file, None
        self._futures.append(self._pool.submit(self._upload, part, handle))

    def _upload(self, part: Part, handle) -> None:
        try:
            self._started.wait()
            if self._error is not None or self.upload_id is None:
                return
            handle.flush()
            handle.seek(0)
            answer = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                         PartNumber=part.number, Body=handle, ContentLength=part.size,
                                         ChecksumCRC32=part.crc32_b64)
            part.etag = answer["ETag"]
        except BaseException as exc:  # handed to the writer thread
            if self._error is None:
                self._error = exc
                self._failed_part = part.number
        finally:
            handle.close()
            self._slots.release()

    def _failure(self) -> StorageError:
        exc = self._error
        if isinstance(exc, StorageError):
            return exc
        return storage_error(f"uploading part {getattr(self, '_failed_part', '?')} of", self.url, exc)

    # -- finishing ----------------------------------------------------------------------------
    def finish_parts(self) -> None:
        """Upload what is buffered and wait for the start and every part."""
        while not self._started.wait(0.5):
            continue
        if self._file is not None and (self._part_bytes or not self.parts):
            self._submit()
        for future in self._futures:
            while True:
                try:
                    future.result(timeout=0.5)
                    break
                except FutureTimeout:
                    continue
        if self._error is not None:
            raise self._failure()

    def complete(self) -> dict:
        """CompleteMultipartUpload of the parts finish_parts() uploaded. On failure the upload id is
        kept (the caller resolves an ambiguous answer, then aborts) and CompleteError says why."""
        self.finish_parts()
        parts = [{"PartNumber": p.number, "ETag": p.etag, "ChecksumCRC32": p.crc32_b64} for p in self.parts]
        try:
            answer = self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                                       MultipartUpload={"Parts": parts})
        except (ClientError, BotoCoreError) as exc:
            error = storage_error("completing the upload to", self.url, exc)
            raise CompleteError(str(error), error_code(exc), error.transient) from None
        self.upload_id = None
        self._cleanup()
        return answer

    def abort(self, deadline_seconds: float = 120.0) -> bool:
        """Abort the upload, retrying while S3 is unreachable; True when S3 confirmed it."""
        if self._error is None:
            self._error = StorageError("aborted")
        end = time.monotonic() + deadline_seconds
        started = self.stop_start(deadline_seconds)
        deadline_seconds = max(10.0, end - time.monotonic())
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.upload_id is None:
            self._cleanup()
            return started
        confirmed = abort_upload(self.s3, self.bucket, self.key, self.upload_id, deadline_seconds)
        # A part in flight may still land after the abort (S3 documents this): wait for the
        # workers briefly, then abort once more so that no part is left behind.
        end = time.monotonic() + 15
        for future in self._futures:
            with contextlib.suppress(BaseException):  # only waiting for the worker to be done
                future.result(timeout=max(0.1, end - time.monotonic()))
        if confirmed:
            abort_upload(self.s3, self.bucket, self.key, self.upload_id, 10.0)
        self.upload_id = None
        self._cleanup()
        return confirmed

    def _cleanup(self) -> None:
        self._pool.shutdown(wait=False)
        shutil.rmtree(self._dir, ignore_errors=True)


def abort_upload(s3, bucket: str, key: str, upload_id: str, deadline_seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + deadline_seconds
    delay = 0.5
    while True:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            return True
        except ClientError as exc:
            if error_code(exc) in ("NoSuchUpload", "404"):
                return True
            if time.monotonic() + delay > deadline:
                return False
        except BotoCoreError:
            if time.monotonic() + delay > deadline:
                return False
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def abort_stale(s3, bucket: str, template: re.Pattern, prefix: str) -> int:
    """Abort the incomplete uploads under `prefix` whose key matches the job's key template (any
    day), left by runs of this job that died; the job lock rules out a live run of it. Uploads to
    other keys, other jobs' included, are left alone."""
    count = 0
    try:
        pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
        uploads = [u for page in pages for u in page.get("Uploads", [])]
    except (ClientError, BotoCoreError):
        return 0
    for upload in uploads:
        key = upload.get("Key", "")
        if template.fullmatch(key) and abort_upload(s3, bucket, key, upload["UploadId"], 10.0):
            count += 1
    return count
