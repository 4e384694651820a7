
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dumpjob_doctor_info
short_description: Run dumpjob doctor on the dump host and return its report as data
version_added: 0.1.0
description:
  - Runs C(dumpjob doctor [JOB] --json) on the host as the dump program's user (O(run_as)) with cron's
    environment (as the job's cron entry runs it), and returns the report as data - the host checks,
    each job's checks, the failing ones - instead of text for a playbook to parse.
  - Returns, per job, the mysqldump client and the database server flavours and the compatibility mode
    the job's dumps will use (the doctor's C(flavour) check), with a one-line summary for an operator.
    Before phase 3 the program usually cannot read the job's secret or reach its database; the client
    is then reported with the mode null.
  - A failing check is a finding, not a failure of the task; the task fails only when the program gives
    no JSON answer at all.
  - It changes nothing on the host; the doctor's bucket check writes one small test object under each
    job's prefix and deletes it again.
author:
  - JRAM infrastructure team (@jram)
options:
  job:
    description:
      - One job of the job file; all jobs when omitted.
    type: str
  run_as:
    description:
      - The user C(dumpjob) runs as (through C(runuser)); the program never needs root. An empty
        string runs it as the user the module runs as.
    type: str
    default: dumpjob
  cron_environment:
    description:
      - Run with cron's environment (only C(HOME), C(USER), C(LOGNAME), C(SHELL), a fixed C(PATH) and
        C(LANG); the wrapper adds C(/etc/dumpjob/environment)), so that the answer is what a cron run
        would meet. V(false) passes the module's environment on.
    type: bool
    default: true
  dumpjob_bin:
    description:
      - The dumpjob program (the wrapper that loads C(/etc/dumpjob/environment)).
    type: path
    default: /usr/local/bin/dumpjob
  config:
    description:
      - The job file, when not the program's default C(/etc/dumpjob/jobs.yml).
    type: path
  gate_checks:
    description:
      - The checks whose failure is a finding (RV(findings)); the others' failures are RV(other_findings).
        C(bucket) stands for every C(bucket:<prefix>). Omitted, every check gates.
    type: list
    elements: str
    choices: [instance_role, aws_identity, config, secret, database, privileges, flavour, bucket]
  expected_role:
    description:
      - The IAM role the host must see. A passing C(instance_role) check that names another role, or a
        passing C(aws_identity) check whose credentials are not this role's from the instance role, is
        then a finding too (when those checks gate).
    type: str
notes:
  - Needs root (C(become=true)) to switch to O(run_as).
  - Supports check mode fully - it only reads - and returns the same as outside it.
seealso:
  - module: jram.dumphost.dump_compare
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the doctor's findings and the client/server compatibility of every job
  jram.dumphost.dumpjob_doctor_info:
  become: true
  register: doctor

- name: Show the client and the mode each job will use
  ansible.builtin.debug:
    msg: "{{ doctor.summary }}"

- name: Require the instance role, its identity, and each job's secret and prefixes (phase 3's gate)
  jram.dumphost.dumpjob_doctor_info:
    gate_checks: [instance_role, aws_identity, secret, bucket]
    expected_role: jram-dumphost
  become: true
  register: phase3_doctor
  failed_when: phase3_doctor.findings | length > 0

- name: Require a passing doctor for one job, as the program's user with cron's environment
  jram.dumphost.dumpjob_doctor_info:
    job: basis
    run_as: dumpjob
  become: true
  register: basis_doctor
  failed_when: not basis_doctor.ok
"""

RETURN = r"""
installed:
  description: Whether O(dumpjob_bin) is an executable on the host; when false nothing else was run.
  returned: always
  type: bool
  sample: true
ok:
  description: Whether every check passed (false too when the program is missing or refused to run).
  returned: always
  type: bool
  sample: false
exit_code:
  description:
    - The program's exit code (0 every check passed, 12 a check failed, others see docs/dumpjob.md); null when not
      installed.
    - Not named C(rc), which Ansible would read as the task's own failure.
  returned: always
  type: int
  sample: 12
error:
  description: Why the doctor did not report (the program's one-line error, e.g. an invalid job file), null when it reported.
  returned: always
  type: str
  sample: null
report:
  description: The doctor's report as C(dumpjob doctor --json) prints it (C(ok), host C(checks), C(jobs) with their C(checks)); empty when it did not report.
  returned: always
  type: dict
  sample:
    ok: false
    checks:
      - {name: aws_identity, ok: false, reason: "no AWS credentials found (no instance role and no keys); attach the instance profile"}
    jobs:
      - job: basis
        ok: false
        checks:
          - {name: config, ok: true, reason: "job 'basis' (mysqldump) is valid"}
          - name: flavour
            ok: true
            reason: "mysqldump from MariaDB 10.5; server not reached"
            client: "mysqldump  Ver 10.19 Distrib 10.5.25-MariaDB, for Linux (x86_64)"
            client_flavour: mariadb
            server_flavour: null
            server_version: null
            mode: null
failed_checks:
  description: Every failing check, host checks with C(job) null.
  returned: always
  type: list
  elements: dict
  sample:
    - {job: null, name: aws_identity, reason: "no AWS credentials found (no instance role and no keys); attach the instance profile"}
flavour:
  description:
    - Per job, from the doctor's C(flavour) check (the job's, else the host's) - C(client) (the
      C(mysqldump --version) line), C(client_flavour) and C(server_flavour) (C(mariadb) or C(mysql)),
      C(server_version), C(mode) (C(native), C(mariadb-client-mysql-server) or C(mysql-client-mariadb-server)),
      C(ok), C(reason) and a one-line C(summary).
    - C(mode) is null when the server could not be reached; every field but C(reason) and C(summary) is
      null when the program's doctor has no flavour check.
  returned: always
  type: dict
  sample:
    basis:
      client: "mysqldump  Ver 10.19 Distrib 10.5.25-MariaDB, for Linux (x86_64)"
      client_flavour: mariadb
      server_flavour: mysql
      server_version: "8.0.39"
      mode: mariadb-client-mysql-server
      ok: true
      reason: "MariaDB client, MySQL server: MySQL-compatible flags, the sandbox-mode line dropped"
      summary: "basis: client mysqldump  Ver 10.19 Distrib 10.5.25-MariaDB, for Linux (x86_64) (mariadb), server mysql 8.0.39: mode mariadb-client-mysql-server"
findings:
  description:
    - "One line per failing check that gates (O(gate_checks)) - host checks C(name: reason) first, then
      an identity that is not O(expected_role)'s, then job checks C(job: name: reason)."
    - When the program did not report, the one line saying why.
  returned: always
  type: list
  elements: str
  sample: ["basis: secret: reading secret 'rds/basis' failed: AccessDeniedException"]
other_findings:
  description: One line per failing check that does not gate, in the form of RV(findings).
  returned: always
  type: list
  elements: str
  sample: ["basis: database: cannot connect to db.example.internal:3306"]
passed:
  description: The reason of every passing host check, by check name.
  returned: always
  type: dict
  sample: {instance_role: "instance role 'jram-dumphost' (IMDSv2)"}
summary:
  description: The C(summary) line of every job's flavour, in job order (or why there is none).
  returned: always
  type: list
  elements: str
  sample:
    - >-
      basis: client mysqldump  Ver 10.19 Distrib 10.5.25-MariaDB, for Linux (x86_64) (mariadb); server not
      reached, so the mode is not known yet (cannot read secret 'rds/basis')
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program as program
from ansible_collections.jram.dumphost.plugins.module_utils.errors import HostError


def no_report(installed, exit_code, error, summary):
    """The answer when the program gave no report: the reason is the one finding."""
    return {"installed": installed, "ok": False, "exit_code": exit_code, "report": {}, "failed_checks": [],
            "flavour": {}, "error": error, "summary": [summary], "findings": [summary], "other_findings": [],
            "passed": {}}


def not_installed(path):
    return no_report(False, None, f"{path} (dumpjob_bin) is not an executable on the host: install the dump program "
                                  "first (role jram.dumphost.dumpjob, phase 2)",
                     f"dumpjob is not installed at {path} yet")


def doctor(module):
    """The doctor's answer as the module's result (changed is always false: it only reads)."""
    p = module.params
    if not os.access(p["dumpjob_bin"], os.X_OK):
        return not_installed(p["dumpjob_bin"])
    runuser = program.runuser(module, p["run_as"])
    argv = [*program.command(p["dumpjob_bin"], p["run_as"], runuser, p["cron_environment"]), "doctor"]
    if p["job"]:
        argv.append(p["job"])
    if p["config"]:
        argv += ["--config", p["config"]]
    # $HOME and $USER in the cron-environment script are the user's, expanded by its shell.
    rc, out, err = module.run_command([*argv, "--json"], expand_user_and_vars=False)
    answer = program.answer(out)
    if answer is None:
        raise HostError(f"dumpjob doctor gave no JSON answer (exit {rc}): {program.last_line(err) or 'no output'}")
    if "jobs" not in answer:  # the program refused to run: its one-line error answer
        error = answer.get("error") or program.last_line(err)
        return no_report(True, rc, error, f"dumpjob doctor did not report (exit {rc}): {error}")
    flavour = program.flavour(answer)
    found, other = program.findings(answer, p["gate_checks"], p["expected_role"])
    return {"installed": True, "ok": bool(answer.get("ok")) and rc == 0, "exit_code": rc, "report": answer,
            "error": None, "failed_checks": program.failed_checks(answer), "flavour": flavour,
            "summary": [entry["summary"] for entry in flavour.values()], "findings": found, "other_findings": other,
            "passed": program.passed(answer)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            job=dict(type="str"),
            run_as=dict(type="str", default="dumpjob"),
            cron_environment=dict(type="bool", default=True),
            dumpjob_bin=dict(type="path", default="/usr/local/bin/dumpjob"),
            config=dict(type="path"),
            gate_checks=dict(type="list", elements="str", choices=list(program.CHECKS)),
            expected_role=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    try:
        result = doctor(module)
    except HostError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
