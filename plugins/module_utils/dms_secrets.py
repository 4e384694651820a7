# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A database login from a Secrets Manager secret in RDS secret JSON (host, port, username,
password, dbname), as the DMS modules read it. A failure names the secret and the fix, never the
secret's value."""

from __future__ import annotations

import json

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    BotoCoreError = ClientError = None  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

SECRET_KEYS = ("host", "port", "username", "password")


def read_secret(module, client, secret_id):
    """The secret's JSON as a dict; fails the module when it is missing, unreadable or not RDS JSON.
    ``client``: a secretsmanager client made with an AWSRetry decorator."""
    try:
        raw = client.get_secret_value(SecretId=secret_id, aws_retry=True)["SecretString"]
    except is_boto3_error_code("ResourceNotFoundException"):
        module.fail_json(msg=f"secret {secret_id} does not exist: create it (RDS secret JSON) or fix the secret id")
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"cannot read secret {secret_id}; grant secretsmanager:GetSecretValue on it")
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    missing = [k for k in SECRET_KEYS if not isinstance(value, dict) or value.get(k) in (None, "")]
    if missing:
        module.fail_json(msg=f"secret {secret_id} is not RDS secret JSON (missing {', '.join(missing)}): "
                             "store host, port, username, password and dbname")
    return value
