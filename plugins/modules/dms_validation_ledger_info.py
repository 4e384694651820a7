# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dms_validation_ledger_info
short_description: The DMS validation ledger's verdicts per day and whether its gate is open
version_added: 0.3.0
description:
  - Reads the ledger M(jram.dumphost.dms_validation_ledger) writes (under the same lock, with its version check)
    and returns the latest verdict of each day, the run of consecutive identical days and the gate -
    O(required_days) consecutive identical days, the latest of them today or yesterday (and with O(month_end), a month
    end among them) - that must be open
    before the Glue ETL moves to the DMS copy and before the dump jobs are retired.
  - Changes nothing. A missing ledger is an empty one.
author:
  - JRAM infrastructure team (@jram)
options:
  required_days:
    description: Consecutive identical days the gate needs.
    type: int
    default: 14
  month_end:
    description:
      - The run of identical days must include the last day of a month (the gate before the dump jobs are
        retired, when the vendor's month-end batch must have been copied right once).
    type: bool
    default: false
  timezone:
    description: The time zone whose today decides whether the latest verdict is recent.
    type: str
    default: Asia/Tokyo
  ledger_path:
    description: The ledger file.
    type: path
    default: /var/lib/dumpjob/dms_validation.json
notes:
  - The ledger is root's (mode 0600); run with C(become=true).
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.dms_validation_ledger
"""

EXAMPLES = r"""
- name: Is the DMS copy proven?
  jram.dumphost.dms_validation_ledger_info:
    required_days: 14
  become: true
  register: dms_gate

- name: Stop before switching the Glue ETL to the DMS copy
  ansible.builtin.assert:
    that: dms_gate.gate.open
    fail_msg: "{{ dms_gate.gate.problems | join('; ') }}"

- name: Before retiring the dump jobs - 30 identical days, a month end among them
  jram.dumphost.dms_validation_ledger_info:
    required_days: 30
    month_end: true
  become: true
  register: dms_retire_gate
"""

RETURN = r"""
days:
  description: The latest verdict of each day, oldest first, with its per-table details.
  returned: always
  type: list
  elements: dict
  sample: [{date: "2026-11-30", verdict: identical, details: {tables: {}}, recorded_at: "2026-11-30T21:10:00Z"}]
gate:
  description: C(open), C(problems), C(consecutive_identical_days), C(latest) (C(date), C(verdict)).
  returned: always
  type: dict
  sample: {open: true, problems: [], consecutive_identical_days: ["2026-11-17", "...", "2026-11-30"],
           latest: {date: "2026-11-30", verdict: identical}}
ledger_path:
  description: The ledger read.
  returned: always
  type: str
  sample: /var/lib/dumpjob/dms_validation.json
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger
from ansible_collections.jram.dumphost.plugins.module_utils import dms_validation_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            required_days=dict(type="int", default=14),
            month_end=dict(type="bool", default=False),
            timezone=dict(type="str", default="Asia/Tokyo"),
            ledger_path=dict(type="path", default=ledger_mod.DEFAULT_PATH),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["required_days"] < 1:
        module.fail_json(msg=f"required_days must be 1 or more, got {p['required_days']}")
    try:
        now = ledger_mod.today(p["timezone"])
        with cutover_ledger.locked(p["ledger_path"]):
            ledger = ledger_mod.load(p["ledger_path"])
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    days = ledger_mod.by_date(ledger)
    module.exit_json(changed=False, days=[days[d] for d in sorted(days)],
                     gate=ledger_mod.gate(ledger, p["required_days"], now, p["month_end"]), ledger_path=p["ledger_path"])


if __name__ == "__main__":
    main()
