#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: dms_endpoint_mysql
short_description: An AWS DMS MySQL, MariaDB or Aurora MySQL endpoint whose credentials come from Secrets Manager
description:
  - Creates, converges or deletes one DMS endpoint of a MySQL-compatible engine that logs in with the
    credentials of a Secrets Manager secret (C(MySQLSettings.SecretsManagerSecretId) and
    C(SecretsManagerAccessRoleArn)), over TLS verified against a certificate imported into DMS.
  - No password is ever an option of this module; DMS reads host, port, user and password from the
    secret (RDS secret JSON) through the access role, so nothing secret passes through Ansible.
  - Written because M(community.aws.dms_endpoint) has no C(MySQLSettings), so it cannot use Secrets
    Manager, and needs the password as an option.
  - Settings are compared with what DMS describes; only those given are managed (DMS adds its defaults).
version_added: 0.1.0
author:
  - JRAM infrastructure team (@jram-infra)
options:
  identifier:
    description: The endpoint identifier.
    type: str
    required: true
  state:
    description: Whether the endpoint exists.
    type: str
    choices: [present, absent]
    default: present
  endpoint_type:
    description: Whether DMS reads (V(source)) or writes (V(target)) through this endpoint.
    type: str
    choices: [source, target]
  engine:
    description: The engine name DMS knows the database by.
    type: str
    choices: [mysql, mariadb, aurora]
    default: mysql
  secret_id:
    description: ARN or name of the Secrets Manager secret (RDS secret JSON) with host, port, username and password.
    type: str
  secret_access_role_arn:
    description: The IAM role DMS assumes to read O(secret_id) (trusts C(dms.amazonaws.com), may C(secretsmanager:GetSecretValue)).
    type: str
  database_name:
    description: The database to read or write; for a MySQL source usually omitted (every schema of the table mappings).
    type: str
  ssl_mode:
    description:
      - TLS to the database. V(verify-full) checks the certificate and the host name, V(verify-ca) the certificate only;
        both need O(certificate_arn). V(require) and V(none) are accepted only with O(allow_unverified_tls).
    type: str
    choices: [none, require, verify-ca, verify-full]
    default: verify-full
  certificate_arn:
    description: ARN of the CA certificate imported into DMS (for RDS, the region's RDS CA bundle).
    type: str
  allow_unverified_tls:
    description: Accept O(ssl_mode) V(require) or V(none) (a connection an attacker in the network path could read).
    type: bool
    default: false
  mysql_settings:
    description:
      - Further C(MySQLSettings) keys as the DMS API names them (for example C(ServerTimezone), C(TargetDbType),
        C(ParallelLoadThreads), C(AfterConnectScript)). Credential keys (C(Password), C(Username), C(ServerName),
        C(Port)) are refused; they come from the secret.
    type: dict
    default: {}
extends_documentation_fragment:
  - jram.dumphost.dms
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The vendor's RDS MySQL as the DMS source, credentials from Secrets Manager
  jram.dumphost.dms_endpoint_mysql:
    identifier: jram-dumphost-source
    endpoint_type: source
    engine: mysql
    secret_id: arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:jram/dumphost/dms-replication-AbCdEf
    secret_access_role_arn: arn:aws:iam::123456789012:role/jram-dumphost-dms-secrets
    ssl_mode: verify-full
    certificate_arn: arn:aws:dms:ap-northeast-1:123456789012:cert:RDSGLOBALBUNDLE
    mysql_settings:
      ServerTimezone: UTC
    tags:
      Project: jram-dumphost
      Component: dms
"""

RETURN = r"""
endpoint:
  description: The endpoint as DMS describes it (as it would be created, in check mode).
  returned: when state=present
  type: dict
  sample:
    endpoint_arn: arn:aws:dms:ap-northeast-1:123456789012:endpoint:ABCDEFGHIJ
    endpoint_identifier: jram-dumphost-source
    endpoint_type: source
    engine_name: mysql
    ssl_mode: verify-full
arn:
  description: The endpoint's ARN (empty in check mode before it exists).
  returned: when state=present
  type: str
  sample: arn:aws:dms:ap-northeast-1:123456789012:endpoint:ABCDEFGHIJ
"""

import contextlib

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.jram.dumphost.plugins.module_utils import dms_provision_aws as dms
from ansible_collections.jram.dumphost.plugins.module_utils.dms_provision import ProvisionError

KIND = "endpoint"
CREDENTIAL_KEYS = ("Password", "Username", "ServerName", "Port")


def desired_endpoint(params):
    """The managed settings, in the shape create_endpoint takes them; refuses what cannot work."""
    unknown = sorted(k for k in params["mysql_settings"] if k in CREDENTIAL_KEYS)
    if unknown:
        raise ProvisionError(f"mysql_settings {', '.join(unknown)}: credentials come from secret_id, remove them")
    if params["ssl_mode"] in ("none", "require") and not params["allow_unverified_tls"]:
        raise ProvisionError(f"ssl_mode {params['ssl_mode']} does not verify the server: use verify-full or verify-ca "
                             "with certificate_arn, or set allow_unverified_tls")
    if params["ssl_mode"].startswith("verify-") and not params["certificate_arn"]:
        raise ProvisionError(f"ssl_mode {params['ssl_mode']} needs certificate_arn: import the CA bundle into DMS "
                             "(aws dms import-certificate) and give its ARN")
    settings = dict(params["mysql_settings"], SecretsManagerSecretId=params["secret_id"],
                    SecretsManagerAccessRoleArn=params["secret_access_role_arn"])
    return {"EndpointType": params["endpoint_type"], "EngineName": params["engine"], "SslMode": params["ssl_mode"],
            "CertificateArn": params["certificate_arn"], "DatabaseName": params["database_name"],
            "MySQLSettings": settings}


def comparable(endpoint):
    return {"EndpointType": str(endpoint.get("EndpointType", "")).lower(), "EngineName": endpoint.get("EngineName"),
            "SslMode": endpoint.get("SslMode"), "CertificateArn": endpoint.get("CertificateArn"),
            "DatabaseName": endpoint.get("DatabaseName"), "MySQLSettings": endpoint.get("MySQLSettings") or {}}


def main():
    argument_spec = dict(
        identifier=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        endpoint_type=dict(type="str", choices=["source", "target"]),
        engine=dict(type="str", choices=["mysql", "mariadb", "aurora"], default="mysql"),
        secret_id=dict(type="str"),
        secret_access_role_arn=dict(type="str", no_log=False),  # an ARN, not a secret
        database_name=dict(type="str"),
        ssl_mode=dict(type="str", choices=["none", "require", "verify-ca", "verify-full"], default="verify-full"),
        certificate_arn=dict(type="str"),
        allow_unverified_tls=dict(type="bool", default=False),
        mysql_settings=dict(type="dict", default={}),
        tags=dict(type="dict", default={}),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True,
                              required_if=[("state", "present", ["endpoint_type", "secret_id",
                                                                 "secret_access_role_arn"])])
    p = module.params
    result = {}
    try:
        if p["state"] == "present":
            desired = desired_endpoint(p)  # before any call to AWS
            client = module.client("dms", retry_decorator=AWSRetry.jittered_backoff())

            def create(settings, tags):
                return client.create_endpoint(aws_retry=True, EndpointIdentifier=p["identifier"], Tags=tags,
                                              **settings)["Endpoint"]

            def modify(arn, changes):
                if "MySQLSettings" in changes:
                    changes["MySQLSettings"] = desired["MySQLSettings"]
                return client.modify_endpoint(aws_retry=True, EndpointArn=arn, **changes)["Endpoint"]

            changed, endpoint, diff = dms.ensure_present(client, KIND, p["identifier"], desired, create, modify,
                                                         comparable, p["tags"], p["purge_tags"], module.check_mode)
            result = {"endpoint": dms.snake(endpoint), "arn": endpoint.get("EndpointArn", "")}
        else:
            client = module.client("dms", retry_decorator=AWSRetry.jittered_backoff())
            changed, diff = dms.ensure_absent(
                client, KIND, p["identifier"],
                lambda e: client.delete_endpoint(aws_retry=True, EndpointArn=e["EndpointArn"]),
                comparable, module.check_mode)
    except ProvisionError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"DMS endpoint {p['identifier']} could not be {p['state']}")
    if diff and module._diff:
        result["diff"] = diff
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
