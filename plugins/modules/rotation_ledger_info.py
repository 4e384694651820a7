# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rotation_ledger_info
short_description: Read the host's ledger of database password rotations
version_added: 0.2.0
description:
  - Reads O(path) (written by M(jram.dumphost.rotation_ledger)) and returns every rotation, the open one
    per secret, when each secret was last rotated, and a one-line C(reminder) while one of O(secret_ids)
    was never rotated (its password is still the one phase 1 stored). A missing file is an empty ledger.
author:
  - JRAM infrastructure team (@jram)
options:
  secret_ids:
    description: The secrets the reminder is about (the jobs' secret ids).
    type: list
    elements: str
    default: []
  path:
    description: The ledger.
    type: path
    default: /var/lib/dumpjob/rotations.json
notes:
  - The ledger is root's (mode 0600); run with C(become=true).
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the rotation ledger
  jram.dumphost.rotation_ledger_info:
    secret_ids: [jram/dumphost/basis-reader]
  become: true
  register: rotations
- name: Remind the operator
  ansible.builtin.debug:
    msg: "{{ rotations.reminder }}"
  when: rotations.reminder is not none
"""

RETURN = r"""
rotations:
  description: Every rotation recorded, oldest first (see M(jram.dumphost.rotation_ledger)).
  returned: always
  type: list
  elements: dict
  sample: []
open:
  description: Per secret, its rotation in progress (neither finished nor rolled back).
  returned: always
  type: dict
  sample: {}
last_rotated:
  description: Per secret, the time, the user and the new version of its last completed rotation.
  returned: always
  type: dict
  sample: {jram/dumphost/basis-reader: {time: "2026-05-01T01:00:00Z", by: ops, version: 5f1c0d9e-aaaa-bbbb-cccc-000000000002}}
never_rotated:
  description: The O(secret_ids) without a completed rotation.
  returned: always
  type: list
  elements: str
  sample: [jram/dumphost/basis-reader]
reminder:
  description: One line while O(secret_ids) holds a secret never rotated, else null.
  returned: always
  type: str
  sample: "the database password of secret(s) jram/dumphost/basis-reader has not been rotated since phase 1
    (the leaked legacy password still works): run playbooks/rotate_db_password.yml (docs/rotation.md)"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import secret_rotation as rot


def main():
    module = AnsibleModule(
        argument_spec=dict(secret_ids=dict(type="list", elements="str", no_log=False, default=[]),
                           path=dict(type="path", default=rot.LEDGER_PATH)),
        supports_check_mode=True,
    )
    try:
        doc = rot.load(module.params["path"])
    except rot.RotationError as exc:
        module.fail_json(msg=str(exc))
    found = rot.summary(doc, module.params["secret_ids"])
    found.pop("in_progress")
    opened = {}
    for entry in doc["rotations"]:
        if not entry.get("outcome"):
            opened[entry["secret_id"]] = entry
    module.exit_json(changed=False, open=opened, **found)


if __name__ == "__main__":
    main()
