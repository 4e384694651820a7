# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rotation_ledger
short_description: Record a step of a database password rotation in the host's ledger
version_added: 0.2.0
description:
  - Appends O(step) to the secret's open rotation in O(path) (root-only JSON, mode 0600) - when, by whom,
    and the version ids the rotation moves (O(new_version), O(old_version), O(previous_version)); never a
    value. V(create) opens a rotation; V(finish) and V(rollback) close it.
  - A step recorded already is not recorded again (changed false), so a resumed rotation records each
    step once.
author:
  - JRAM infrastructure team (@jram)
options:
  secret_id:
    description: The rotated secret.
    type: str
    required: true
  step:
    description: The step that completed.
    type: str
    required: true
    choices: [create, set, test, finish, rollback]
  by:
    description: Who ran it (the controller's user).
    type: str
    required: true
  new_version:
    description: The AWSPENDING version the rotation created.
    type: str
  old_version:
    description: The AWSCURRENT version when the rotation started.
    type: str
  previous_version:
    description: The AWSPREVIOUS version when the rotation started (restored by a rollback).
    type: str
  path:
    description: The ledger.
    type: path
    default: /var/lib/dumpjob/rotations.json
notes:
  - Run with C(become=true).
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
seealso:
  - module: jram.dumphost.rotation_ledger_info
"""

EXAMPLES = r"""
- name: Record the finish step
  jram.dumphost.rotation_ledger:
    secret_id: jram/dumphost/basis-reader
    step: finish
    by: "{{ lookup('ansible.builtin.env', 'USER') }}"
  become: true
"""

RETURN = r"""
rotation:
  description: The secret's rotation the step was recorded on (versions, C(steps) with time and by, C(outcome)).
  returned: always
  type: dict
  sample: {secret_id: jram/dumphost/basis-reader, new_version: 5f1c0d9e-aaaa-bbbb-cccc-000000000002,
           old_version: 5f1c0d9e-aaaa-bbbb-cccc-000000000001, previous_version: null, started: "2026-05-01T01:00:00Z",
           started_by: ops, steps: {create: {time: "2026-05-01T01:00:00Z", by: ops}}, outcome: null}
"""

import json
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import secret_rotation as rot


def main():
    module = AnsibleModule(
        argument_spec=dict(
            secret_id=dict(type="str", required=True),
            step=dict(type="str", required=True, choices=list(rot.STEPS)),
            by=dict(type="str", required=True),
            new_version=dict(type="str"),
            old_version=dict(type="str"),
            previous_version=dict(type="str"),
            path=dict(type="path", default=rot.LEDGER_PATH),
        ),
        supports_check_mode=True,
    )
    p = module.params
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = None
    try:
        doc = rot.load(p["path"])
        changed, after = rot.record(doc, p["secret_id"], p["step"], when, p["by"], p["new_version"],
                                    p["old_version"], p["previous_version"])
    except rot.RotationError as exc:
        if module.check_mode and doc is not None and p["step"] != "create" and rot.open_rotation(doc, p["secret_id"]) is None:
            # check mode recorded no create: this step would be recorded on the rotation it would open
            module.exit_json(changed=True, rotation={}, msg=f"would record {p['step']} on the new rotation")
        module.fail_json(msg=str(exc))
    entry = [e for e in after["rotations"] if e["secret_id"] == p["secret_id"]]
    result = {"changed": changed, "rotation": entry[-1] if entry else {}}
    if changed and not module.check_mode:
        rot.save(p["path"], after)
    if changed and module._diff:
        result["diff"] = {"before": json.dumps(doc, indent=2, sort_keys=True) + "\n",
                          "after": json.dumps(after, indent=2, sort_keys=True) + "\n",
                          "before_header": p["path"], "after_header": p["path"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
