"""boto3 clients with deliberate retries and timeouts. Credentials come from the default chain
(on the host: the instance role through IMDSv2); AWS_ENDPOINT_URL and
AWS_EC2_METADATA_SERVICE_ENDPOINT are honoured by boto3 itself."""

from __future__ import annotations

import boto3
from botocore.config import Config

from . import __version__


def session(region: str | None = None) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client(sess: boto3.session.Session, service: str, pool: int = 10, attempts: int = 5):
    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=5, read_timeout=120, max_pool_connections=pool,
        user_agent_extra=f"dumpjob/{__version__}",
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    return sess.client(service, config=config)


NO_CREDENTIALS = "no AWS credentials found: attach the instance profile (or configure credentials) and retry"


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe(exc: BaseException) -> str:
    """A short, secret-free description of an AWS error."""
    code = error_code(exc)
    if code:
        message = (getattr(exc, "response", {}) or {}).get("Error", {}).get("Message", "")
        return f"{code}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


# AWS answers that a later request may not get: throttling, timeouts, failures on the service's side.
TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
                   "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "OperationAborted"}


def transient_aws_error(exc: BaseException) -> bool:
    """Whether an AWS error answer is worth another attempt later: a known transient code, or a
    status of 5xx, 408 or 429 (other 4xx answers refuse the request as it is)."""
    if error_code(exc) in TRANSIENT_CODES:
        return True
    status = ((getattr(exc, "response", None) or {}).get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return not isinstance(status, int) or status >= 500 or status in (408, 429)
