# -*- coding: utf-8 -*-

# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cutover_status_info
short_description: Per job, the cutover evidence that counts now, from the cutover ledger
version_added: 0.1.0
description:
  - Reads the cutover ledger O(ledger_path) on the dump host (as M(jram.dumphost.cron_cutover) reads it,
    with its version check) and returns, per job, its phase and the evidence its next gate counts - the
    validated days and latest verdict recorded since the job last entered C(parallel), the days with a
    successful production run recorded since it last entered C(cutover) - and how many older records
    no longer count, since a rollback and a new move forward start the count again.
  - Returns the same as a table of one line per job (RV(table)), the status the cutover playbooks print.
  - Changes nothing. A missing ledger is an empty one.
author:
  - JRAM infrastructure team (@jram)
options:
  ledger_path:
    description:
      - The cutover ledger.
    type: path
    default: /var/lib/dumpjob/cutover.json
  jobs:
    description:
      - Jobs to report besides those the ledger knows (a job it does not know is in C(legacy)).
    type: list
    elements: str
    default: []
  predicted:
    description:
      - Phases a check-mode run would move jobs to (job name to phase); the table shows them with a C(*).
    type: dict
    default: {}
notes:
  - The ledger is root's (mode 0600); run with C(become=true).
  - Supports check mode fully - it only reads - and returns the same as outside it.
seealso:
  - module: jram.dumphost.cron_cutover
  - module: jram.dumphost.dump_compare
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the cutover status
  jram.dumphost.cutover_status_info:
    jobs: [basis, contract_status]
  become: true
  register: cutover_status

- name: Show it
  ansible.builtin.debug:
    msg: "{{ cutover_status.table }}"
"""

RETURN = r"""
jobs:
  description:
    - Per job, C(phase), C(phase_since), C(counting_from) (the latest entry into the phase whose evidence counts
      - C(parallel) for a job in C(parallel), C(cutover) for one in C(cutover) or C(retired); null when the ledger
      records none), C(validated_days), C(latest_verdict) (C(date), C(verdict)), C(production_days),
      C(latest_production_run) (C(date), C(status)), C(stale_verdicts) and C(stale_runs) (records from before
      C(counting_from), which no longer count).
  returned: always
  type: dict
  sample:
    basis:
      job: basis
      phase: parallel
      phase_since: "2026-12-03T01:00:00Z"
      counting_from: "2026-12-03T01:00:00Z"
      validated_days: ["2026-12-03"]
      latest_verdict: {date: "2026-12-04", verdict: incomplete}
      production_days: []
      latest_production_run: null
      stale_verdicts: 2
      stale_runs: 1
table:
  description: The status table, a header line and one line per job, columns two spaces apart.
  returned: always
  type: list
  elements: str
  sample:
    - "job               phase      since                 counting_from         validated  last_validated  ..."
ledger_path:
  description: The ledger read.
  returned: always
  type: str
  sample: /var/lib/dumpjob/cutover.json
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_phases as phases
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ledger_path=dict(type="path", default=ledger_mod.DEFAULT_PATH),
            jobs=dict(type="list", elements="str", default=[]),
            predicted=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        ledger = ledger_mod.load(p["ledger_path"])
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    names = sorted(set(p["jobs"]) | set(ledger["jobs"]))
    module.exit_json(
        changed=False,
        jobs={job: phases.evidence(ledger, job) for job in names},
        table=phases.status_table(ledger, names, {job: str(phase) for job, phase in p["predicted"].items()}),
        ledger_path=p["ledger_path"],
    )


if __name__ == "__main__":
    main()
