# -*- coding: utf-8 -*-
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: static_key_files
short_description: Find, move aside, restore or remove the AWS key files of the dump host's users
version_added: 0.3.0
description:
  - Key retirement's file work on the dump host, as root. V(discover) lists every OS user whose C(~/.aws/credentials)
    or C(~/.aws/config) holds AWS key material, with owner, group, mode and access key ids (never a secret), plus
    files left in O(aside_dir) by an interrupted run and links found where a key file is expected.
  - V(aside) moves the key files of O(user) into the root-only O(aside_dir)/USER for the proof; a config file goes
    aside whole and in its place the same file without its key lines is written (endpoint and region stay).
  - V(restore) puts what O(aside_dir)/USER holds back into the user's C(~/.aws); V(purge) removes it for good.
  - C(~/.aws) belongs to its user, who may swap any name in it for a link at any moment. Nothing in it is reached by a
    path - C(~/.aws) is opened once with C(O_NOFOLLOW) and every file through that descriptor, a new file is created
    C(O_EXCL), owner and mode are set on the open descriptor (C(fchown), C(fchmod)), and each rename is checked to
    have moved the file that was read. A symbolic link or a second hard link where a key file is expected is
    refused, never followed or read.
author:
  - JRAM infrastructure team (@jram)
options:
  operation:
    description: What to do.
    type: str
    required: true
    choices: [discover, aside, restore, purge]
  user:
    description: The OS user whose key files are moved; required unless O(operation=discover).
    type: str
  aside_dir:
    description: The root-only directory the key files are moved into (one subdirectory per user).
    type: path
    default: /var/lib/jram-static-keys
notes:
  - Run with C(become=true).
  - In check mode nothing is moved; the result and the diff list the files that would be.
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
seealso:
  - module: jram.dumphost.static_key_owner_info
"""

EXAMPLES = r"""
- name: Find the users with AWS key material
  jram.dumphost.static_key_files:
    operation: discover
  become: true
  register: found

- name: Move ec2-user's key files aside for the proof
  jram.dumphost.static_key_files:
    operation: aside
    user: ec2-user
  become: true

- name: Remove them for good
  jram.dumphost.static_key_files:
    operation: purge
    user: ec2-user
  become: true
"""

RETURN = r"""
users:
  description:
    - With O(operation=discover), each user holding key material, leftovers or links (C(user), C(uid), C(home),
      C(files) by name with C(path), C(owner), C(group), C(mode), C(key_ids) and the directory's C(dir_owner),
      C(dir_group), C(dir_mode); C(key_ids), C(leftovers), C(not_regular)).
  returned: when O(operation=discover)
  type: list
  elements: dict
  sample:
    - user: ec2-user
      uid: 1000
      home: /home/ec2-user
      files: {credentials: {path: /home/ec2-user/.aws/credentials, regular: true, owner: ec2-user, group: ec2-user,
                            mode: "0600", size: 116, key_material: true, key_ids: [AKIA0000EXAMPLEKEY],
                            dir_owner: ec2-user, dir_group: ec2-user, dir_mode: "0700"}}
      key_ids: [AKIA0000EXAMPLEKEY]
      leftovers: []
      not_regular: []
moved:
  description: The key files moved aside (or that would be, in check mode).
  returned: when O(operation=aside)
  type: list
  elements: str
  sample: [/home/ec2-user/.aws/credentials, /home/ec2-user/.aws/config]
to:
  description: Where they were moved.
  returned: when O(operation=aside)
  type: str
  sample: /var/lib/jram-static-keys/ec2-user
restored:
  description: The key files put back (or that would be).
  returned: when O(operation=restore)
  type: list
  elements: str
  sample: [/home/ec2-user/.aws/credentials]
removed:
  description: The files removed from O(aside_dir) (or that would be).
  returned: when O(operation=purge)
  type: list
  elements: str
  sample: [/var/lib/jram-static-keys/ec2-user/credentials]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import static_key_files as kf


def diff_of(operation: str, result: dict, aside_dir: str, user: str | None) -> dict:
    """Which files the operation changes, before and after, as file lists (no content: it is a secret)."""
    if operation == "aside":
        before = [f"{path} (key material)" for path in result["moved"]]
        after = [f"{os.path.join(result['to'], os.path.basename(path))} (root only)" for path in result["moved"]]
        after += [f"{path} (without its key lines)" for path in result["moved"] if path.endswith("/config")]
    elif operation == "restore":
        before = [f"{os.path.join(aside_dir, user, os.path.basename(path))} (root only)" for path in result["restored"]]
        after = [f"{path} (key material)" for path in result["restored"]]
    else:
        before, after = list(result["removed"]), []
    header = f"key files of {user}"
    return {"before": "".join(line + "\n" for line in before), "after": "".join(line + "\n" for line in after),
            "before_header": header, "after_header": header}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            operation=dict(type="str", required=True, choices=["discover", "aside", "restore", "purge"]),
            user=dict(type="str"),
            aside_dir=dict(type="path", default="/var/lib/jram-static-keys"),
        ),
        required_if=[("operation", "aside", ["user"]), ("operation", "restore", ["user"]),
                     ("operation", "purge", ["user"])],
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.isabs(p["aside_dir"]):
        module.fail_json(msg=f"aside_dir must be an absolute path, got {p['aside_dir']!r}")
    operation = "back" if p["operation"] == "restore" else p["operation"]
    os.umask(0o077)
    try:
        result = kf.run(operation, p["user"], p["aside_dir"], module.check_mode)
    except (kf.KeyFilesError, kf.NotRegularError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{p['operation']} of the key files of {p['user'] or 'the users'} failed: {exc}; "
                             "run with become: true and check the files named")
    if result["changed"] and p["operation"] != "discover" and module._diff:
        result["diff"] = diff_of(p["operation"], result, p["aside_dir"], p["user"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
