# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_keys_ledger
short_description: Record a key retirement, rollback or deletion in the host's key-retirement ledger
version_added: 0.3.0
description:
  - Records, under the ledger's lock and after its version check, that the static key of O(user) was V(retired)
    (with the key ids, IAM users, escrow, files and proven prefixes of O(details), and the end of the grace period
    O(grace_days) from O(now)), V(rolled_back) or V(deleted), and appends the event.
  - A ledger of an earlier release without a version is read as version 1 and written with it.
  - The ledger holds names, key ids and times, never a secret.
author:
  - JRAM infrastructure team (@jram)
options:
  user:
    description: The OS user whose key it is.
    type: str
    required: true
  action:
    description: What happened to the key. V(rolled_back) and V(deleted) need the key V(retired) in the ledger.
    type: str
    required: true
    choices: [retired, rolled_back, deleted]
  by:
    description: Who ran it (the controller's user).
    type: str
    required: true
  now:
    description: The time recorded, C(YYYY-MM-DDTHH:MM:SSZ) (UTC); the host's clock when empty.
    type: str
    default: ""
  details:
    description:
      - With O(action=retired), the entry - C(key_ids), C(iam_users), C(escrow_secret), C(files) (C(path),
        C(owner), C(group), C(mode)) and C(proven_prefixes).
    type: dict
    default: {}
  grace_days:
    description: With O(action=retired), the days until the key and its escrow may be deleted.
    type: int
  path:
    description: The ledger.
    type: path
    default: /var/lib/dumpjob/static_keys.json
notes:
  - Run with C(become=true).
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
seealso:
  - module: jram.dumphost.static_keys_ledger_info
"""

EXAMPLES = r"""
- name: Record the rollback of ec2-user's key
  jram.dumphost.static_keys_ledger:
    user: ec2-user
    action: rolled_back
    by: "{{ lookup('ansible.builtin.env', 'USER') }}"
  become: true
"""

RETURN = r"""
entry:
  description: The user's entry after the change.
  returned: success
  type: dict
  sample:
    state: retired
    key_ids: [AKIA0000EXAMPLEKEY]
    iam_users: {AKIA0000EXAMPLEKEY: legacy-dump}
    escrow_secret: jram-dumphost/escrow/ec2-user/AKIA0000EXAMPLEKEY
    retired_at: "2026-11-26T03:00:00Z"
    retired_by: alice
    grace_days: 14
    delete_after: "2026-12-10T03:00:00Z"
event:
  description: The event appended.
  returned: success
  type: dict
  sample:
    at: "2026-11-26T03:00:00Z"
    by: alice
    action: retired
    user: ec2-user
    key_ids: [AKIA0000EXAMPLEKEY]
    escrow_secret: jram-dumphost/escrow/ec2-user/AKIA0000EXAMPLEKEY
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import static_keys_ledger as lg
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type="str", required=True),
            action=dict(type="str", required=True, choices=list(lg.ACTIONS)),
            by=dict(type="str", required=True),
            now=dict(type="str", default=""),
            details=dict(type="dict", default={}),
            grace_days=dict(type="int"),
            path=dict(type="path", default=lg.DEFAULT_PATH),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        at = lg.parse_now(p["now"])
        with lg.locked(p["path"]):
            before = lg.load(p["path"])
            after = copy.deepcopy(before)
            event = lg.record(after, p["user"], p["action"], at, p["by"], p["details"], p["grace_days"])
            if not module.check_mode:
                lg.write(p["path"], after)
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": True, "entry": after["users"][p["user"]], "event": event}
    if module._diff:
        result["diff"] = {"before": lg.dumps(before), "after": lg.dumps(after),
                          "before_header": p["path"], "after_header": p["path"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
