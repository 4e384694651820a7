"""Database credentials from a Secrets Manager secret in the RDS JSON shape, read at each run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .aws import NO_CREDENTIALS, describe, error_code, transient_aws_error
from .errors import SecretError

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"


@dataclass(frozen=True)
class DbCredentials:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: Optional[str] = None
    stage: str = CURRENT
    version_id: Optional[str] = None


def fetch(sm, secret_id: str, stage: str = CURRENT) -> Optional[DbCredentials]:
    """The secret's value at `stage`; None when that stage does not exist (AWSPENDING outside rotation)."""
    try:
        answer = sm.get_secret_value(SecretId=secret_id, VersionStage=stage)
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            if stage != CURRENT:
                return None
            raise SecretError(f"secret '{secret_id}' does not exist; create it (phase 1) or fix 'secret_id' in "
                              "the job") from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise SecretError(f"not allowed to read secret '{secret_id}'; grant secretsmanager:GetSecretValue "
                              "on it to the instance role") from None
        if code == "DecryptionFailure":
            raise SecretError(f"secret '{secret_id}' cannot be decrypted; grant kms:Decrypt on its key to the "
                              "instance role") from None
        raise SecretError(f"reading secret '{secret_id}' failed ({describe(exc)})",
                          transient=transient_aws_error(exc)) from None
    except NoCredentialsError:
        raise SecretError(f"cannot read secret '{secret_id}': {NO_CREDENTIALS}") from None
    except BotoCoreError as exc:
        raise SecretError(f"cannot reach Secrets Manager to read '{secret_id}' ({type(exc).__name__}); "
                          "check the network and AWS credentials", transient=True) from None
    return parse(secret_id, answer.get("SecretString"), stage, answer.get("VersionId"))


def parse(secret_id: str, text: Optional[str], stage: str = CURRENT, version_id: Optional[str] = None) -> DbCredentials:
    if not text:
        raise SecretError(f"secret '{secret_id}' has no string value; store the RDS secret JSON "
                          "(host, port, username, password)")
    try:
        doc = json.loads(text)
    except ValueError:
        raise SecretError(f"secret '{secret_id}' is not JSON; store the RDS secret JSON "
                          "(host, port, username, password)") from None
    if not isinstance(doc, dict):
        raise SecretError(f"secret '{secret_id}' is not a JSON object")
    for key in ("host", "username", "password"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            raise SecretError(f"secret '{secret_id}' has no '{key}' key; add it to the secret JSON")
    port = doc.get("port", 3306)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise SecretError(f"secret '{secret_id}' has a 'port' that is not a number") from None
    if not 0 < port < 65536:
        raise SecretError(f"secret '{secret_id}' has a 'port' out of range")
    for key in ("username", "password"):
        if any(c in doc[key] for c in "\r\n\x00"):
            raise SecretError(f"secret '{secret_id}' has a '{key}' with a line break or NUL, which a MySQL "
                              "option file cannot carry; rotate it to one without")
    dbname = doc.get("dbname")
    return DbCredentials(host=doc["host"], port=port, username=doc["username"], password=doc["password"],
                         dbname=dbname if isinstance(dbname, str) else None, stage=stage, version_id=version_id)
