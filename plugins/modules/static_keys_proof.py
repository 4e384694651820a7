# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_keys_proof
short_description: Prove that the instance role serves an OS user without its static key
version_added: 0.3.0
description:
  - As O(user), with cron's environment and O(path) (through C(runuser), from root), asks the AWS CLI
    (O(aws_cli)) and boto3 (O(boto3_python)) for their identity and writes one probe object with each under
    the URLs of O(cli_probes) and O(boto3_probes). Both must see the role O(expected_role); every write must
    succeed.
  - Fails with one line per way the proof failed. Deleting the probe objects is left to the caller.
  - Key retirement runs it with the user's key files moved aside (M(jram.dumphost.static_key_files)).
  - Writes only the probe objects; C(changed) is always false. Skipped in check mode.
author:
  - JRAM infrastructure team (@jram)
options:
  user:
    description: The OS user.
    type: str
    required: true
  expected_role:
    description: The role name the identities must be an assumed role of.
    type: str
    required: true
  cli_probes:
    description: The C(s3://bucket/key) objects the AWS CLI writes.
    type: list
    elements: str
    default: []
  boto3_probes:
    description: The C(s3://bucket/key) objects boto3 writes.
    type: list
    elements: str
    default: []
  aws_cli:
    description: The AWS CLI, as cron's PATH finds it.
    type: str
    default: aws
  boto3_python:
    description: A Python with boto3 (the dump program's venv).
    type: str
    default: /opt/dumpjob/venv/bin/python
  path:
    description: The PATH the user's programs run with (cron's).
    type: str
    default: /usr/local/bin:/usr/bin:/bin
notes:
  - Run with C(become=true); C(runuser) must be installed.
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.static_key_files
"""

EXAMPLES = r"""
- name: Prove that the instance role serves ec2-user
  jram.dumphost.static_keys_proof:
    user: ec2-user
    expected_role: jram-dumphost
    cli_probes: [s3://dumps/basis/.probe-cli]
    boto3_probes: [s3://dumps/basis/.probe-boto3]
  become: true
"""

RETURN = r"""
cli_arn:
  description: The identity the AWS CLI got (empty when it got none).
  returned: always
  type: str
  sample: arn:aws:sts::123456789012:assumed-role/jram-dumphost/i-0123456789abcdef0
boto3_arn:
  description: The identity boto3 got (empty when it got none).
  returned: always
  type: str
  sample: arn:aws:sts::123456789012:assumed-role/jram-dumphost/i-0123456789abcdef0
boto3_method:
  description: Where boto3 found its credentials (C(iam-role) for the instance role).
  returned: always
  type: str
  sample: iam-role
findings:
  description: One line per way the proof failed; empty on success.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import static_keys_proof as proof


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type="str", required=True),
            expected_role=dict(type="str", required=True),
            cli_probes=dict(type="list", elements="str", default=[]),
            boto3_probes=dict(type="list", elements="str", default=[]),
            aws_cli=dict(type="str", default="aws"),
            boto3_python=dict(type="str", default="/opt/dumpjob/venv/bin/python"),
            path=dict(type="str", default="/usr/local/bin:/usr/bin:/bin"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    bad = [url for url in p["cli_probes"] + p["boto3_probes"] if not url.startswith("s3://") or "/" not in url[5:]]
    if bad:
        module.fail_json(msg=f"probe {bad[0]!r} is not an s3://bucket/key URL: fix cli_probes or boto3_probes")
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="check mode: the proof needs the key files moved aside",
                         cli_arn="", boto3_arn="", boto3_method="", findings=[])
    runuser = module.get_bin_path("runuser", required=True)

    def run(argv, data=None):
        rc, out, err = module.run_command(proof.as_user(runuser, p["user"], p["path"], argv), data=data,
                                          expand_user_and_vars=False, binary_data=True)
        return {"rc": rc, "stdout": out, "stderr": err}

    cli = run([p["aws_cli"], "sts", "get-caller-identity", "--output", "json"])
    writes = []
    for url in p["cli_probes"]:
        done = run([p["aws_cli"], "s3", "cp", "--only-show-errors", "-", url], data=proof.PROBE_BODY)
        writes.append((url, done["rc"], done["stderr"]))
    boto3 = run([p["boto3_python"], "-c", proof.BOTO3_PROBE, *p["boto3_probes"]])
    report = proof.boto3_report(boto3["stdout"])
    found = proof.findings(p["expected_role"], cli, writes, boto3)
    result = {"changed": False, "cli_arn": proof.cli_arn(cli["stdout"]), "boto3_arn": report.get("arn") or "",
              "boto3_method": report.get("method") or "", "findings": found}
    if found:
        module.fail_json(msg="; ".join(found), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
