"""S3 multipart upload fed by a stream: parts spooled to unnamed temporary files in a private
directory (never more than concurrency + 1 of them, none larger than one part), uploaded in
parallel with a SHA-256 checksum per part, completed only when the caller says so and aborted
otherwise.

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
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before Python 3.11
from dataclasses import dataclass
from typing import Optional

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .aws import NO_CREDENTIALS, describe, error_code, transient_aws_error
from .errors import StorageError

MIB = 1 << 20
MAX_PARTS = 10_000
TIER = 1000


def part_size(number: int, base_mib: int) -> int:
    return base_mib * MIB * 2 ** ((number - 1) // TIER)


def capacity(base_mib: int) -> int:
    return sum(part_size(n, base_mib) for n in range(1, MAX_PARTS + 1, TIER)) * TIER


@dataclass
class Part:
    number: int
    size: int
    sha256_b64: str
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
    """Write compressed bytes in order with write(); then complete() or abort()."""

    def __init__(self, s3, bucket: str, key: str, work_dir: str, concurrency: int = 4, base_part_mib: int = 8,
                 sse_kms_key_id: Optional[str] = None, metadata: Optional[dict] = None,
                 content_type: str = "application/octet-stream"):
        self.s3, self.bucket, self.key = s3, bucket, key
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
        self._part_hash = None
        self._part_bytes = 0
        self._aborting = False
        # An aborting upload must not keep retrying its parts in flight (S3 may answer them with errors).
        s3.meta.events.register_first("needs-retry.s3.UploadPart", self._no_retry_when_aborting,
                                      unique_id=f"dumpjob-no-retry-{id(self)}")
        args = {"Bucket": bucket, "Key": key, "ChecksumAlgorithm": "SHA256", "ContentType": content_type}
        if sse_kms_key_id:
            args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=sse_kms_key_id)
        if metadata:
            args["Metadata"] = metadata
        try:
            self.upload_id = s3.create_multipart_upload(**args)["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            self._cleanup()
            raise storage_error("starting the upload to", self.url, exc) from None

    # -- writing ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._failure()
        if self._file is None:
            self._acquire_slot()
            self._file = tempfile.TemporaryFile(dir=self._dir)  # noqa: SIM115 - closed by the upload worker
            self._part_hash = hashlib.sha256()
            self._part_bytes = 0
        self._file.write(data)
        self._part_hash.update(data)
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
        part = Part(number, self._part_bytes, base64.b64encode(self._part_hash.digest()).decode())
        self.parts.append(part)
        handle, self._file = self._file, None
        self._futures.append(self._pool.submit(self._upload, part, handle))

    def _upload(self, part: Part, handle) -> None:
        try:
            if self._error is not None:
                return
            handle.flush()
            handle.seek(0)
            answer = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                         PartNumber=part.number, Body=handle, ContentLength=part.size,
                                         ChecksumSHA256=part.sha256_b64)
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
        """Upload what is buffered and wait for every part."""
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
        parts = [{"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": p.sha256_b64} for p in self.parts]
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
        self._aborting = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.upload_id is None:
            self._cleanup()
            return True
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
