# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dms_validation_ledger
short_description: Record the day's verdict of the DMS target against the source in the DMS validation ledger
version_added: 0.3.0
description:
  - Records the verdict of M(jram.dumphost.dms_validate) for O(date) - per table its verdict and counts of
    differences, never a row or key value - in the ledger O(ledger_path) on the dump host, a root 0600 JSON
    file replaced atomically under the same directory lock as the cutover ledger.
  - The same verdict with the same details for a day is recorded once, so a second run of the same day with the
    same result reports C(changed=false); a different result for the day is appended and supersedes the earlier one.
  - Returns the gate that the ledger's verdicts open - O(required_days) consecutive identical days - the
    condition before the Glue ETL moves to the DMS copy and before the dump jobs are retired (docs/dms_validation.md).
author:
  - JRAM infrastructure team (@jram)
options:
  verdict:
    description: The day's verdict (RV(jram.dumphost.dms_validate#module:verdict)); V(incomplete) when the comparison could not run.
    type: str
    required: true
    choices: [identical, different, incomplete]
  details:
    description: The comparison's C(details) (per table verdict and counts); must hold no row value.
    type: dict
    default: {}
  date:
    description: The day, C(YYYY-MM-DD); default today in O(timezone).
    type: str
  timezone:
    description: The time zone whose today is the default O(date).
    type: str
    default: Asia/Tokyo
  required_days:
    description: Consecutive identical days the gate needs.
    type: int
    default: 14
  ledger_path:
    description: The ledger file.
    type: path
    default: /var/lib/dumpjob/dms_validation.json
notes:
  - Needs root (C(become=true)) to write the root 0600 ledger.
  - Check mode reports whether an entry would be recorded, without writing it; the diff shows the entry.
seealso:
  - module: jram.dumphost.dms_validate
  - module: jram.dumphost.dms_validation_ledger_info
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
"""

EXAMPLES = r"""
- name: Record today's verdict
  jram.dumphost.dms_validation_ledger:
    verdict: "{{ dms_validation.verdict }}"
    details: "{{ dms_validation.details }}"
  become: true
"""

RETURN = r"""
date:
  description: The day recorded.
  returned: always
  type: str
  sample: "2026-11-30"
entry:
  description: The entry recorded (or that would be, in check mode); null when the ledger already had it.
  returned: always
  type: dict
  sample: {date: "2026-11-30", verdict: identical, details: {tables: {}}, recorded_at: "2026-11-30T21:10:00Z"}
gate:
  description:
    - C(open), C(problems), C(consecutive_identical_days) (the run of identical days ending at the latest day),
      C(latest) (C(date), C(verdict)), after this run.
  returned: always
  type: dict
  sample: {open: false, problems: ["3 consecutive identical day(s), 14 needed"],
           consecutive_identical_days: ["2026-11-28", "2026-11-29", "2026-11-30"],
           latest: {date: "2026-11-30", verdict: identical}}
ledger_path:
  description: The ledger file.
  returned: always
  type: str
  sample: /var/lib/dumpjob/dms_validation.json
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger
from ansible_collections.jram.dumphost.plugins.module_utils import dms_validation_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError, InvalidOptionError


def run(module):
    p = module.params
    if p["required_days"] < 1:
        raise InvalidOptionError(f"required_days must be 1 or more, got {p['required_days']}")
    now = ledger_mod.today(p["timezone"])
    date = ledger_mod.check_date(p["date"]) if p["date"] else now
    path = p["ledger_path"]
    with cutover_ledger.locked(path):
        ledger = ledger_mod.load(path)
        entry = ledger_mod.record(ledger, date, p["verdict"], p["details"])
        if entry and not module.check_mode:
            cutover_ledger.write(path, ledger)
    result = {"changed": entry is not None, "date": date, "entry": entry,
              "gate": ledger_mod.gate(ledger, p["required_days"], now), "ledger_path": path}
    if module._diff and entry:
        result["diff"] = {"before": "", "after": json.dumps(entry, indent=2, sort_keys=True) + "\n",
                          "before_header": f"{path} ({date})", "after_header": f"{path} ({date})"}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            verdict=dict(type="str", required=True, choices=list(ledger_mod.VERDICTS)),
            details=dict(type="dict", default={}),
            date=dict(type="str"),
            timezone=dict(type="str", default="Asia/Tokyo"),
            required_days=dict(type="int", default=14),
            ledger_path=dict(type="path", default=ledger_mod.DEFAULT_PATH),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
