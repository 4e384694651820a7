"""`<key>.manifest.json`: what a published dump is.

A run writes the manifest *before* it completes the upload, and the manifest names the run
(`run_id`), which the object carries as its `dumpjob-run` metadata from the moment it exists. A
manifest describes the object at its key only when the two ids are equal: whatever step a run
dies at, the key holds nothing, the previous object or the new one, and the manifest describes
exactly that object or, naming another run, says nothing about it (`describes`)."""

from __future__ import annotations

import json
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from .aws import error_code
from .errors import UsageError, VerifyFailedError
from .upload import storage_error

FORMAT = 2
READABLE = (1, 2)  # format 1: written after the object, without run_id
SUFFIX = ".manifest.json"
RUN_METADATA = "dumpjob-run"


def manifest_key(key: str) -> str:
    return key + SUFFIX


def put(s3, bucket: str, key: str, document: dict[str, Any], sse_kms_key_id: Optional[str] = None) -> str:
    body = (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    return put_body(s3, bucket, key, body, sse_kms_key_id)


def put_body(s3, bucket: str, key: str, body: bytes, sse_kms_key_id: Optional[str] = None) -> str:
    args = {"Bucket": bucket, "Key": manifest_key(key), "Body": body, "ContentType": "application/json",
            "ChecksumAlgorithm": "SHA256"}
    if sse_kms_key_id:
        args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=sse_kms_key_id)
    try:
        s3.put_object(**args)
    except (ClientError, BotoCoreError) as exc:
        error = storage_error("writing the manifest", f"s3://{bucket}/{manifest_key(key)}", exc)
        error.maybe_written = isinstance(exc, BotoCoreError)  # no answer: the write may have landed
        raise error from None
    return manifest_key(key)


def get_body(s3, bucket: str, key: str) -> Optional[bytes]:
    """The manifest's bytes as stored, None when there is none."""
    try:
        return s3.get_object(Bucket=bucket, Key=manifest_key(key))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise storage_error("reading", f"s3://{bucket}/{manifest_key(key)}", exc) from None
    except BotoCoreError as exc:
        raise storage_error("reading", f"s3://{bucket}/{manifest_key(key)}", exc) from None


def object_run(s3, bucket: str, key: str) -> tuple[bool, Optional[str], Optional[int]]:
    """(exists, the run id in its metadata, its size) of the object at the key."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            return False, None, None
        raise storage_error("checking", f"s3://{bucket}/{key}", exc) from None
    except BotoCoreError as exc:
        raise storage_error("checking", f"s3://{bucket}/{key}", exc) from None
    return True, (head.get("Metadata") or {}).get(RUN_METADATA), head.get("ContentLength")


def describes(doc: dict[str, Any], exists: bool, run_id: Optional[str]) -> Optional[str]:
    """None when the manifest describes the object found at its key, else why it does not."""
    url = doc.get("url") or f"s3://{doc.get('bucket')}/{doc.get('key')}"
    if not exists:
        return (f"the manifest of {url} describes run {doc.get('run_id')}, which never published: there is no "
                "object at the key (the run failed or was killed before completing its upload)")
    if doc.get("format") == 1:
        return None  # written after its object, by a version that did not link them
    if run_id != doc.get("run_id"):
        return (f"the manifest of {url} describes run {doc.get('run_id')}, but the object at the key was written "
                f"by {'run ' + run_id if run_id else 'something other than dumpjob'} (a later run died between "
                "its manifest and its upload); run the job again to publish a described dump")
    return None


def published(s3, bucket: str, keys: list[str], limit: int) -> list[dict[str, Any]]:
    """Up to `limit` manifests found at `keys` (in the order given) that describe the object at
    their key, i.e. of dumps that were published. A manifest that is no JSON, of an unknown format
    or of a run that never published is passed over; S3 failing raises StorageError."""
    found: list[dict[str, Any]] = []
    for key in keys:
        body = get_body(s3, bucket, key)
        if body is None:
            continue
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("format") not in READABLE:
            continue
        exists, run_id, _length = object_run(s3, bucket, key)
        if describes(doc, exists, run_id) is not None:
            continue
        found.append(doc)
        if len(found) >= limit:
            break
    return found


def get(s3, bucket: str, key: str) -> dict[str, Any]:
    url = f"s3://{bucket}/{manifest_key(key)}"
    try:
        body = s3.get_object(Bucket=bucket, Key=manifest_key(key))["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            raise VerifyFailedError(f"no manifest at {url}; the dump was not published by dumpjob or is "
                                    "incomplete") from None
        raise storage_error("reading", url, exc) from None
    except BotoCoreError as exc:
        raise storage_error("reading", url, exc) from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise VerifyFailedError(f"the manifest {url} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") not in READABLE:
        raise VerifyFailedError(f"the manifest {url} has an unknown format")
    return doc


def parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise UsageError(f"'{url}' is not an s3://BUCKET/KEY URL")
    bucket, key = url[5:].split("/", 1)
    if not bucket or not key:
        raise UsageError(f"'{url}' is not an s3://BUCKET/KEY URL")
    if key.endswith(SUFFIX):
        key = key[: -len(SUFFIX)]
    return bucket, key
