"""`<key>.manifest.json`: what a published dump is, written after the object is complete."""

from __future__ import annotations

import json
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from .aws import error_code
from .errors import UsageError, VerifyFailedError
from .upload import storage_error

FORMAT = 1
SUFFIX = ".manifest.json"


def manifest_key(key: str) -> str:
    return key + SUFFIX


def put(s3, bucket: str, key: str, document: dict[str, Any], sse_kms_key_id: Optional[str] = None) -> str:
    body = (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    args = {"Bucket": bucket, "Key": manifest_key(key), "Body": body, "ContentType": "application/json",
            "ChecksumAlgorithm": "SHA256"}
    if sse_kms_key_id:
        args.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=sse_kms_key_id)
    try:
        s3.put_object(**args)
    except (ClientError, BotoCoreError) as exc:
        raise storage_error("writing the manifest", f"s3://{bucket}/{manifest_key(key)}", exc) from None
    return manifest_key(key)


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
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
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
