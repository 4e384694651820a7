# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_keys_ledger_info
short_description: Read the host's key-retirement ledger
version_added: 0.3.0
description:
  - Reads the key-retirement ledger under its lock, after its version check, and returns it as data with the
    users per state and the retired keys whose grace period is over at O(now).
  - A missing file is an empty ledger (no key retired). Changes nothing.
author:
  - JRAM infrastructure team (@jram)
options:
  now:
    description: The time the grace periods are measured at, C(YYYY-MM-DDTHH:MM:SSZ) (UTC); the host's clock when empty.
    type: str
    default: ""
  path:
    description: The ledger.
    type: path
    default: /var/lib/dumpjob/static_keys.json
notes:
  - The ledger is root's (mode 0600); run with C(become=true).
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
seealso:
  - module: jram.dumphost.static_keys_ledger
  - module: jram.dumphost.dumphost_ledgers_info
"""

EXAMPLES = r"""
- name: Read the key-retirement ledger
  jram.dumphost.static_keys_ledger_info:
  become: true
  register: keys_ledger
"""

RETURN = r"""
ledger:
  description: The ledger (C(version), C(users) by OS user, C(events)).
  returned: always
  type: dict
  sample: {version: 1, users: {ec2-user: {state: retired, key_ids: [AKIA0000EXAMPLEKEY]}}, events: []}
retired:
  description: The users whose key is retired and not deleted yet, as C(key) (the user) and C(value) (the entry).
  returned: always
  type: list
  elements: dict
  sample: [{key: ec2-user, value: {state: retired, delete_after: "2026-12-10T03:00:00Z"}}]
deleted:
  description: The users whose key was deleted after its grace period, as C(key) and C(value).
  returned: always
  type: list
  elements: dict
  sample: []
due:
  description: The retired keys whose grace period is over at O(now), as C(key) and C(value).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import static_keys_ledger as lg
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            now=dict(type="str", default=""),
            path=dict(type="path", default=lg.DEFAULT_PATH),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        at = lg.parse_now(p["now"])
        with lg.locked(p["path"]):
            ledger = lg.load(p["path"])
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ledger=ledger, retired=lg.items(ledger, "retired"),
                     deleted=lg.items(ledger, "deleted"), due=lg.due(ledger, at))


if __name__ == "__main__":
    main()
