# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_password
short_description: The database half of a rotation, on the dump host as the dump program's user
version_added: 0.2.0
description:
  - Runs C(dumpjob password JOB ACTION --json) on the host as O(run_as) with cron's environment, so that
    the password change uses the job's own secret, instance role and verified TLS connection, as a dump
    does. The passwords never leave that program - not in argv, the environment, a file or the result.
  - V(set) - the database account's own password becomes the secret's AWSPENDING (logged in with
    AWSCURRENT); unchanged when the database accepts AWSPENDING already.
  - V(revert) - it becomes AWSCURRENT again (logged in with AWSPENDING); unchanged when the database
    accepts AWSCURRENT.
  - V(test) - log in with AWSPENDING and check the job's privileges; changes nothing.
  - In check mode the module asks C(dumpjob password JOB status) which stage the database accepts and
    reports what it would change.
author:
  - JRAM infrastructure team (@jram)
options:
  job:
    description: A job of the job file whose secret is being rotated.
    type: str
    required: true
  action:
    description: What to do.
    type: str
    required: true
    choices: [set, revert, test]
  run_as:
    description: The user C(dumpjob) runs as (through C(runuser)); empty runs it as the module's user.
    type: str
    default: dumpjob
  dumpjob_bin:
    description: The dumpjob program (the wrapper that loads C(/etc/dumpjob/environment)).
    type: path
    default: /usr/local/bin/dumpjob
  config:
    description: The job file, when not the program's default C(/etc/dumpjob/jobs.yml).
    type: path
notes:
  - Needs root (C(become=true)) to switch to O(run_as).
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.db_secret_rotation
"""

EXAMPLES = r"""
- name: Change the database password to the secret's AWSPENDING
  jram.dumphost.db_password:
    job: basis
    action: set
  become: true
"""

RETURN = r"""
accepts:
  description: The stages the database accepts after the module ran (in check mode, now).
  returned: always
  type: list
  elements: str
  sample: [AWSPENDING]
current_version:
  description: The version id of the secret's AWSCURRENT.
  returned: always
  type: str
  sample: 5f1c0d9e-aaaa-bbbb-cccc-000000000001
pending_version:
  description: The version id of the secret's AWSPENDING, null when there is none.
  returned: always
  type: str
  sample: 5f1c0d9e-aaaa-bbbb-cccc-000000000002
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: the database now accepts AWSPENDING
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program as program

TARGET = {"set": "AWSPENDING", "revert": "AWSCURRENT"}


def run(module, action):
    p = module.params
    runuser = None
    if p["run_as"]:
        runuser = module.get_bin_path("runuser")
        if not runuser:
            module.fail_json(msg="runuser is not installed on the host: install util-linux, or set run_as: ''")
    argv = [*program.command(p["dumpjob_bin"], p["run_as"], runuser), "password", p["job"], action, "--json"]
    if p["config"]:
        argv += ["--config", p["config"]]
    rc, out, err = module.run_command(argv, expand_user_and_vars=False)
    answer = program.answer(out)
    if rc != 0 or answer is None or not answer.get("ok"):
        error = (answer or {}).get("error") or program.last_line(err) or "no output"
        module.fail_json(msg=f"dumpjob password {p['job']} {action} failed (exit {rc}): {error}", exit_code=rc)
    return answer


def main():
    module = AnsibleModule(
        argument_spec=dict(
            job=dict(type="str", required=True),
            action=dict(type="str", required=True, choices=["set", "revert", "test"]),
            run_as=dict(type="str", default="dumpjob"),
            dumpjob_bin=dict(type="path", default="/usr/local/bin/dumpjob"),
            config=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    action = module.params["action"]
    if module.check_mode and action != "test":
        status = run(module, "status")
        target = TARGET[action]
        would = target not in status["accepts"]
        if would and status["pending_version"] is None and action == "set":
            msg = "would set the password to AWSPENDING once the create step has made it"
        else:
            msg = f"would change the password to {target}" if would else f"the database accepts {target}; nothing to do"
        module.exit_json(changed=would, msg=msg, accepts=status["accepts"], current_version=status["current_version"],
                         pending_version=status["pending_version"])
    if module.check_mode:
        module.exit_json(changed=False, msg="test skipped in check mode", accepts=[], current_version=None,
                         pending_version=None)
    answer = run(module, action)
    accepts = [TARGET.get(action, "AWSPENDING")]
    module.exit_json(changed=bool(answer.get("changed")), msg=answer.get("msg"), accepts=accepts,
                     current_version=answer.get("current_version"), pending_version=answer.get("pending_version"))


if __name__ == "__main__":
    main()
