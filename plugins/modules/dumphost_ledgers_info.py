# -*- coding: utf-8 -*-

# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dumphost_ledgers_info
short_description: Read the dump host's cutover and key-retirement ledgers and say what a rollback would cut off
version_added: 0.1.0
description:
  - Reads, on the dump host, the cutover ledger (O(cutover_ledger), each job's phase and moves, read under
    the ledger's lock with its version check) and the key-retirement ledger (O(static_keys_ledger), written
    by the C(jram.dumphost.static_keys) role, read the same way), and returns what they say as data, for playbooks to decide on
    instead of parsing the files in Jinja.
  - Per job - its phase, since when, its latest move and whether that move was a rollback; the jobs past
    C(legacy), in C(cutover), C(retired), in production (either); whether static keys are retired and whose.
  - Says in one line each what forbids rolling back phase 3 (the instance profile, IMDSv2) and phase 1
    (role, policy, profile, secret, alarms) now, and in which order to roll back instead (RV(refusals)).
  - Returns the forced rollbacks recorded in O(forced_log).
  - Changes nothing. A missing file is an empty ledger (nothing moved, no key retired).
author:
  - JRAM infrastructure team (@jram)
options:
  cutover_ledger:
    description: The cutover ledger.
    type: path
    default: /var/lib/dumpjob/cutover.json
  static_keys_ledger:
    description: The key-retirement ledger.
    type: path
    default: /var/lib/dumpjob/static_keys.json
  forced_log:
    description: The log of forced rollbacks (one JSON object a line) that C(playbooks/rollback.yml) appends to.
    type: path
    default: /var/lib/dumpjob/forced_rollbacks.log
notes:
  - The ledgers are root's (mode 0600); run with C(become=true).
  - Supports check mode fully - it only reads - and returns the same as outside it.
seealso:
  - module: jram.dumphost.cron_cutover
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the host's ledgers
  jram.dumphost.dumphost_ledgers_info:
  become: true
  register: ledgers

- name: Refuse to detach the instance profile while production runs on it
  ansible.builtin.assert:
    that: ledgers.refusals.phase3 is none
    fail_msg: "{{ ledgers.refusals.phase3 }}"
    quiet: true

- name: Leave alone the jobs an operator rolled back
  ansible.builtin.debug:
    msg: "rolled back, left alone: {{ ledgers.rolled_back_jobs | join(', ') or 'none' }}"
"""

RETURN = r"""
jobs:
  description:
    - Per job the cutover ledger knows - C(phase), C(phase_since), C(latest_move) (C(time), C(from), C(to), C(kind) one of
      C(rollback), C(forward) or C(stay), C(forced), C(reason), C(by); null when the job never moved) and C(rolled_back)
      (its latest move went to an earlier phase).
    - A job the ledger does not know is in C(legacy).
  returned: always
  type: dict
  sample:
    basis:
      phase: cutover
      phase_since: "2026-11-27T01:00:00Z"
      latest_move: {time: "2026-11-27T01:00:00Z", from: parallel, to: cutover, kind: forward, forced: false, reason: null, by: alice}
      rolled_back: false
    contract_status:
      phase: legacy
      phase_since: "2026-11-28T02:00:00Z"
      latest_move: {time: "2026-11-28T02:00:00Z", from: parallel, to: legacy, kind: rollback, forced: false, reason: null, by: alice}
      rolled_back: true
phases:
  description: Job name to its phase (the jobs the ledger knows).
  returned: always
  type: dict
  sample: {basis: cutover, contract_status: legacy}
past_legacy:
  description: Whether any job is past C(legacy) (in C(parallel), C(cutover) or C(retired)).
  returned: always
  type: bool
  sample: true
jobs_past_legacy:
  description: The jobs in C(parallel), C(cutover) or C(retired), sorted.
  returned: always
  type: list
  elements: str
  sample: [basis]
jobs_in_cutover:
  description: The jobs in C(cutover), sorted.
  returned: always
  type: list
  elements: str
  sample: [basis]
jobs_retired:
  description: The jobs in C(retired), sorted.
  returned: always
  type: list
  elements: str
  sample: []
production_jobs:
  description: The jobs in C(cutover) or C(retired) - they run only on the new program and the instance role.
  returned: always
  type: list
  elements: str
  sample: [basis]
rolled_back_jobs:
  description: The jobs whose latest move was a rollback, sorted.
  returned: always
  type: list
  elements: str
  sample: [contract_status]
keys:
  description:
    - What the key-retirement ledger says - C(retired) (any user's static key left the host, retired within its grace
      period or deleted after it), C(retired_users), C(deleted_users), C(key_ids) (of those users), and C(users) with
      each user's C(state), C(key_ids), C(iam_users) and times. Key ids and names only, never a secret.
  returned: always
  type: dict
  sample:
    retired: true
    retired_users: [ec2-user]
    deleted_users: []
    key_ids: [AKIA0000EXAMPLEKEY]
    users:
      ec2-user:
        state: retired
        key_ids: [AKIA0000EXAMPLEKEY]
        iam_users: {AKIA0000EXAMPLEKEY: legacy-dump}
        retired_at: "2026-11-28T03:00:00Z"
        delete_after: "2026-12-12T03:00:00Z"
        deleted_at: null
        rolled_back_at: null
refusals:
  description:
    - One line per rollback the ledgers forbid now (null when they allow it) - C(phase3) (detach the instance profile,
      lower IMDSv2) and C(phase1) (delete role, policy, profile, secret, alarms) - naming what blocks it, the order to
      roll back in and how to force it.
    - Phase 1 is also refused by C(playbooks/rollback.yml) while an instance uses the profile, which only AWS knows.
  returned: always
  type: dict
  sample:
    phase3: >-
      rollback of phase 3 refused: the static key(s) of ec2-user (AKIA0000EXAMPLEKEY) are retired; job(s) basis
      is in cutover, and without the instance role they have no AWS credentials. Roll back in this order:
      playbooks/rollback.yml -e phase=keys, then -e job=NAME -e to=parallel (or legacy) for basis, then -e phase=3;
      or pass -e force_reason='why' to detach anyway (recorded in /var/lib/dumpjob/forced_rollbacks.log). Nothing
      was changed.
    phase1: null
forced_rollbacks:
  description: The forced rollbacks recorded in O(forced_log), oldest first (C(time), C(phase), C(by), C(reason), C(overridden)).
  returned: always
  type: list
  elements: dict
  sample:
    - {time: "2026-11-29T04:00:00Z", phase: "3", by: alice, reason: "host replaced tonight", overridden: "rollback of phase 3 refused: ..."}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils import rollback_guard as guard
from ansible_collections.jram.dumphost.plugins.module_utils import static_keys_ledger as keys_ledger
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError


def read(params: dict) -> dict:
    """Everything the module returns, from the three files (changed is always false: it only reads)."""
    path = params["cutover_ledger"]
    with ledger_mod.locked(path):
        ledger = ledger_mod.load(path)
    states = guard.job_states(ledger)
    with keys_ledger.locked(params["static_keys_ledger"]):
        keys = guard.key_states(keys_ledger.load(params["static_keys_ledger"]))
    past = guard.jobs_in(states, "parallel", "cutover", "retired")
    return {
        "jobs": states,
        "phases": {job: state["phase"] for job, state in states.items()},
        "past_legacy": bool(past),
        "jobs_past_legacy": past,
        "jobs_in_cutover": guard.jobs_in(states, "cutover"),
        "jobs_retired": guard.jobs_in(states, "retired"),
        "production_jobs": guard.jobs_in(states, *guard.PRODUCTION),
        "rolled_back_jobs": sorted(job for job, state in states.items() if state["rolled_back"]),
        "keys": keys,
        "refusals": {"phase3": guard.phase3_blocker(states, keys, params["forced_log"]),
                     "phase1": guard.phase1_blocker(states, keys, params["forced_log"])},
        "forced_rollbacks": guard.load_forced_log(params["forced_log"]),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cutover_ledger=dict(type="path", default=ledger_mod.DEFAULT_PATH),
            static_keys_ledger=dict(type="path", default=keys_ledger.DEFAULT_PATH),
            forced_log=dict(type="path", default=guard.FORCED_LOG_PATH),
        ),
        supports_check_mode=True,
    )
    try:
        result = read(module.params)
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
