# -*- coding: utf-8 -*-

# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: imds_access
short_description: Let only the users that need it reach the instance metadata service (nftables, per user)
version_added: 0.1.0
description:
  - Computes who may reach the instance metadata service - the users in O(users) always; the legacy user of
    each job of O(legacy_jobs) not retired in O(job_phases); a legacy user whose static key the
    key-retirement ledger (O(key_users)) does not record as retired yet, or records as written back by a
    rollback; the users in O(key_holders) - and resolves each to its uid on the host. An unknown user is
    refused, in one line, before any change.
  - Writes an nftables rule file (O(path)) for a table of its own (O(table), family C(inet)) that rejects,
    with a TCP reset, output traffic to O(addresses) on O(port) from a socket whose owner is not allowed
    (C(meta skuid)). The file declares the table, deletes it and defines it again, so loading it replaces the
    table in one transaction. It is validated with C(nft -c -f) before it is loaded.
  - Persists it with a systemd unit of its own (O(unit), oneshot, loads the file at boot, deletes the table
    when stopped) and leaves the distribution's C(nftables.service) and its configuration alone.
  - With O(state=absent), stops and removes the unit, deletes the table and removes the file.
  - Installs nothing; the nftables package must be there (role C(jram.dumphost.imds_access) installs it).
author:
  - JRAM infrastructure team (@jram)
options:
  state:
    description: C(present) installs or updates the rule set; C(absent) removes table, unit and file.
    type: str
    choices: [present, absent]
    default: present
  table:
    description: The nftables table (family C(inet)) the rule set owns.
    type: str
    default: jram_dumphost_imds
  addresses:
    description: The metadata service's addresses (IPv4 and, where enabled, IPv6 C(fd00:ec2::254)).
    type: list
    elements: str
    default: ["169.254.169.254"]
  port:
    description: The metadata service's TCP port.
    type: int
    default: 80
  users:
    description: Users always allowed (root, the dump program's user, extra users of the inventory).
    type: list
    elements: str
    default: [root]
  legacy_jobs:
    description:
      - The cutover settings per job (C(cutover_jobs)) - each job's C(legacy.user) runs its legacy cron line.
    type: dict
    default: {}
  job_phases:
    description:
      - Each job's phase as the cutover ledger records it (C(jram.dumphost.dumphost_ledgers_info)'s C(phases));
        a job missing here is in C(legacy).
    type: dict
    default: {}
  key_users:
    description:
      - The key-retirement ledger's users with their C(state) (C(dumphost_ledgers_info)'s C(keys.users)).
    type: dict
    default: {}
  key_holders:
    description: Users holding static key material now, that key retirement is about to prove the role as.
    type: list
    elements: str
    default: []
  only_if_installed:
    description:
      - With O(state=present), change nothing when neither the rule file, the unit nor the table is there
        (phase 3 did not install the rule set) - later steps only keep an installed rule set up to date.
    type: bool
    default: false
  path:
    description: The rule file.
    type: path
    default: /etc/jram-dumphost/imds-access.nft
  probe_url:
    description:
      - The metadata service's base URL (such as C(http://169.254.169.254)) to probe after a change, as each user
        of O(probe); empty probes nothing.
      - Each probe is an IMDSv2 token request made by a child process that runs as the user (its uid, gid and no
        supplementary groups), so the rule set sees the socket owned by that user; the token is never returned.
    type: str
    default: ""
  probe:
    description:
      - The users to probe after the rule set changed (not in check mode, and not when nothing changed) and what
        each must see - C(token) (a token comes back) or C(refused) (the connection is refused or reset at once).
      - A C(refused) probe of a user the allow-list allows is skipped (RV(probes[].outcome=skipped)).
      - A probe that does not see what it expects fails the module after the change (the rule set stays loaded;
        the message says how to roll back).
    type: list
    elements: dict
    default: []
    suboptions:
      user:
        description: The user to probe as.
        type: str
        required: true
      expect:
        description: What the user must see.
        type: str
        choices: [token, refused]
        required: true
  unit:
    description: The systemd unit that loads the rule file at boot.
    type: str
    default: jram-dumphost-imds.service
  unit_dir:
    description: Where the unit file goes.
    type: path
    default: /etc/systemd/system
notes:
  - Needs root (C(become=true)) and the C(CAP_NET_ADMIN) capability, also in check mode (C(nft -c) asks the
    kernel).
  - The rule matches the socket's owner, so a program run as an allowed user through C(sudo -u) or C(runuser)
    is allowed, and a process of an allowed user is allowed whatever it runs.
  - Check mode predicts exactly and changes nothing; diff mode shows the rule file and the unit file.
seealso:
  - module: jram.dumphost.dumphost_ledgers_info
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
"""

EXAMPLES = r"""
- name: Read the host's ledgers
  jram.dumphost.dumphost_ledgers_info:
  become: true
  register: ledgers

- name: Only root, dumpjob and the users whose legacy jobs or keys still need it reach the metadata service
  jram.dumphost.imds_access:
    addresses: [169.254.169.254, "fd00:ec2::254"]
    port: 80
    users: [root, dumpjob]
    legacy_jobs: "{{ cutover_jobs }}"
    job_phases: "{{ ledgers.phases }}"
    key_users: "{{ ledgers['keys'].users }}"
  become: true

- name: Remove the rule set (rollback of phase 3)
  jram.dumphost.imds_access:
    state: absent
  become: true
"""

RETURN = r"""
allowed:
  description: Each allowed user with its uid and why it is allowed.
  returned: always
  type: dict
  sample:
    root: {uid: 0, reasons: [always allowed]}
    dumpjob: {uid: 998, reasons: [always allowed]}
    ec2-user: {uid: 1000, reasons: ["legacy job(s) not retired: basis (parallel)"]}
uids:
  description: The allowed uids, sorted.
  returned: always
  type: list
  elements: int
  sample: [0, 998, 1000]
rules:
  description: The rule file's content as this run wants it (empty with O(state=absent)).
  returned: always
  type: str
  sample: "table inet jram_dumphost_imds {}\ndelete table inet jram_dumphost_imds\n..."
installed:
  description: Whether the rule set is installed after the run (in check mode, would be).
  returned: always
  type: bool
  sample: true
probes:
  description:
    - "Each probe of O(probe), in order, with what it saw: C(token), C(refused), C(error) and its cause, or C(skipped)."
  returned: always
  type: list
  elements: dict
  sample:
    - {user: dumpjob, expect: token, outcome: token}
    - {user: nobody, expect: refused, outcome: refused}
  contains:
    user:
      description: The user probed as.
      type: str
    expect:
      description: What the user had to see.
      type: str
    outcome:
      description: What the user saw (C(skipped) for a refusal of an allowed user, which is not probed).
      type: str
actions:
  description: What the run did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample:
    - write /etc/jram-dumphost/imds-access.nft
    - load table inet jram_dumphost_imds
    - enable jram-dumphost-imds.service
"""

import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.jram.dumphost.plugins.module_utils import imds_access as rules
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError, InvalidOptionError

NFT_DIRS = ["/usr/sbin", "/sbin"]
NOT_INSTALLED = "nothing: the rule set is not installed here (phase 3 installs it)"
PROBE_TIMEOUT = 5
# The child's exit status: what the probe saw.
SAW_TOKEN = 0
SAW_REFUSED = 3
SAW_ERROR = 4


def _token_request(url: str) -> tuple[int, str]:
    """One IMDSv2 token request; (exit status, what was seen). The token is not kept."""
    try:
        with open_url(url.rstrip("/") + "/latest/api/token", method="PUT", timeout=PROBE_TIMEOUT,
                      headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}, use_proxy=False,
                      follow_redirects="none") as answer:
            token = answer.read()
    except Exception as exc:  # any failure is an outcome to report
        cause = getattr(exc, "reason", exc)
        refused = isinstance(cause, (ConnectionRefusedError, ConnectionResetError))
        return (SAW_REFUSED, "refused") if refused else (SAW_ERROR, f"error: {type(cause).__name__} {cause}"[:200])
    return (SAW_TOKEN, "token") if token else (SAW_ERROR, "error: an empty answer")


def probe_as(user: str, url: str) -> str:
    """The token request made by a child process running as user: what it saw."""
    entry = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the user, ask, report through the pipe and the exit status
        status, seen = SAW_ERROR, "error: the probe did not run"
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            status, seen = _token_request(url)
        except BaseException as exc:  # the child must always exit here
            seen = f"error: {type(exc).__name__} {exc}"[:200]
        finally:
            os.write(write_end, seen.encode("utf-8", "replace"))
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        seen = pipe.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    return seen


def run_probes(url: str, probes: list, allowed: dict) -> tuple[list, list]:
    """(each probe with its outcome, the probes that did not see what they expect)."""
    results, failed = [], []
    for probe in probes:
        if probe["expect"] == "refused" and probe["user"] in allowed:
            outcome = "skipped"
        else:
            outcome = probe_as(probe["user"], url)
        result = {"user": probe["user"], "expect": probe["expect"], "outcome": outcome}
        results.append(result)
        if outcome not in ("skipped", probe["expect"]):
            failed.append(result)
    return results, failed


def check_probes(url: str, probes: list) -> None:
    if probes and not url:
        raise InvalidOptionError("probe names users but probe_url is empty: set probe_url to the metadata "
                                 "service's base URL, such as http://169.254.169.254")
    if url and not url.startswith(("http://", "https://")):
        raise InvalidOptionError(f"probe_url must be the metadata service's base URL, such as "
                                 f"http://169.254.169.254 (got '{url}')")
    for probe in probes:
        try:
            pwd.getpwnam(probe["user"])
        except KeyError:
            raise InvalidOptionError(f"probe user {probe['user']} does not exist on this host: create it or probe "
                                     "another user; nothing was changed") from None


def resolve(allowed: dict) -> dict:
    """{user: {uid, reasons}}; an unknown user is refused before anything changes."""
    out = {}
    for user, reasons in allowed.items():
        try:
            uid = pwd.getpwnam(user).pw_uid
        except KeyError:
            raise InvalidOptionError(f"user {user} ({'; '.join(reasons)}) does not exist on this host: create it, or "
                                     "remove it from imds_access_extra_users / cutover_jobs; nothing was changed") \
                from None
        out[user] = {"uid": uid, "reasons": reasons}
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class Host:
    """What the module reads and runs on the host."""

    def __init__(self, module: AnsibleModule):
        self.module = module
        self.nft = module.get_bin_path("nft", opt_dirs=NFT_DIRS)
        self.systemctl = module.get_bin_path("systemctl", required=True)

    def run(self, *argv: str, check_rc: bool = True) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command(list(argv))
        if check_rc and rc != 0:
            raise CutoverError(f"{' '.join(argv)} failed (exit {rc}): {(err or out).strip().splitlines()[-1:]}")
        return rc, out, err

    def table_loaded(self, table: str) -> bool:
        if not self.nft:
            return False
        rc, _out, err = self.run(self.nft, "list", "table", "inet", table, check_rc=False)
        if rc != 0 and "Operation not permitted" in err:
            raise CutoverError("nft may not read the rule set here (Operation not permitted): run as root with "
                               "CAP_NET_ADMIN (become: true; a container needs --cap-add NET_ADMIN)")
        return rc == 0

    def unit_state(self, unit: str) -> tuple[bool, bool]:
        enabled = self.run(self.systemctl, "is-enabled", unit, check_rc=False)[1].strip() == "enabled"
        active = self.run(self.systemctl, "is-active", unit, check_rc=False)[1].strip() == "active"
        return enabled, active

    def validate(self, text: str) -> None:
        """nft -c -f on a temporary copy: the kernel checks the rule set without loading it."""
        fd, tmp = tempfile.mkstemp(prefix="imds-access-", suffix=".nft")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            rc, out, err = self.run(self.nft, "-c", "-f", tmp, check_rc=False)
        finally:
            os.unlink(tmp)
        if rc != 0:
            detail = " ".join((err or out).strip().split())
            raise CutoverError(f"nft refuses the rule set ({detail[:400]}): check imds_access_addresses, "
                               "imds_access_port and imds_access_table; nothing was changed")

    def write(self, path: str, text: str, mode: int) -> None:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".imds-access-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        self.module.atomic_move(tmp, path)


def ensure_present(module: AnsibleModule, host: Host, params: dict, want_rules: str) -> tuple[bool, list, list]:
    path, unit, table = params["path"], params["unit"], params["table"]
    unit_path = os.path.join(params["unit_dir"], unit)
    nft = host.nft or "/usr/sbin/nft"
    want_unit = rules.render_unit(table, path, nft)
    have_rules, have_unit = _read(path), _read(unit_path)
    loaded = host.table_loaded(table)
    enabled, active = host.unit_state(unit)
    if params["only_if_installed"] and have_rules is None and have_unit is None and not loaded:
        return False, [NOT_INSTALLED], []
    actions, diffs = [], []
    if have_rules != want_rules:
        actions.append(f"write {path}")
        diffs.append({"before": have_rules or "", "after": want_rules, "before_header": path, "after_header": path})
    if have_unit != want_unit:
        actions.append(f"write {unit_path}")
        diffs.append({"before": have_unit or "", "after": want_unit, "before_header": unit_path,
                      "after_header": unit_path})
    if have_rules != want_rules or not loaded:
        actions.append(f"load table inet {table}")
    if not enabled:
        actions.append(f"enable {unit}")
    if not active:
        actions.append(f"start {unit}")
    if not actions:
        return False, [], []
    if not host.nft:
        if module.check_mode:
            return True, [*actions, "(nft is not installed yet: the rule set is validated when it is)"], diffs
        raise CutoverError("nft is not installed on this host: install the nftables package first "
                           "(role jram.dumphost.imds_access does)")
    host.validate(want_rules)
    if module.check_mode:
        return True, actions, diffs
    if have_rules != want_rules:
        host.write(path, want_rules, 0o644)
    if have_unit != want_unit:
        host.write(unit_path, want_unit, 0o644)
        host.run(host.systemctl, "daemon-reload")
    if have_rules != want_rules or not loaded:
        host.run(host.nft, "-f", path)
    if not enabled:
        host.run(host.systemctl, "enable", unit)
    if not active:
        host.run(host.systemctl, "start", unit)
    return True, actions, diffs


def ensure_absent(module: AnsibleModule, host: Host, params: dict) -> tuple[bool, list, list]:
    path, unit, table = params["path"], params["unit"], params["table"]
    unit_path = os.path.join(params["unit_dir"], unit)
    have_rules, have_unit = _read(path), _read(unit_path)
    loaded = host.table_loaded(table)
    enabled, active = host.unit_state(unit)
    actions, diffs = [], []
    if active:
        actions.append(f"stop {unit}")
    if loaded:
        actions.append(f"delete table inet {table}")
    if enabled:
        actions.append(f"disable {unit}")
    if have_unit is not None:
        actions.append(f"remove {unit_path}")
        diffs.append({"before": have_unit, "after": "", "before_header": unit_path, "after_header": unit_path})
    if have_rules is not None:
        actions.append(f"remove {path}")
        diffs.append({"before": have_rules, "after": "", "before_header": path, "after_header": path})
    if not actions or module.check_mode:
        return bool(actions), actions, diffs
    if active:
        host.run(host.systemctl, "stop", unit)
    if host.table_loaded(table):
        host.run(host.nft, "delete", "table", "inet", table)
    if enabled:
        host.run(host.systemctl, "disable", unit)
    if have_unit is not None:
        os.unlink(unit_path)
        host.run(host.systemctl, "daemon-reload")
    if have_rules is not None:
        os.unlink(path)
    return True, actions, diffs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            table=dict(type="str", default="jram_dumphost_imds"),
            addresses=dict(type="list", elements="str", default=["169.254.169.254"]),
            port=dict(type="int", default=80),
            users=dict(type="list", elements="str", default=["root"]),
            legacy_jobs=dict(type="dict", default={}),
            job_phases=dict(type="dict", default={}),
            key_users=dict(type="dict", default={}, no_log=False),
            key_holders=dict(type="list", elements="str", default=[], no_log=False),
            only_if_installed=dict(type="bool", default=False),
            path=dict(type="path", default="/etc/jram-dumphost/imds-access.nft"),
            unit=dict(type="str", default="jram-dumphost-imds.service"),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
            probe_url=dict(type="str", default=""),
            probe=dict(type="list", elements="dict", default=[], options=dict(
                user=dict(type="str", required=True),
                expect=dict(type="str", choices=["token", "refused"], required=True),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    allowed, want_rules, probes = {}, "", []
    try:
        check_probes(params["probe_url"], params["probe"])
        rules.check_table(params["table"])
        rules.check_unit(params["unit"])
        if params["state"] == "present":
            address_list = rules.addresses(params["addresses"])
            port = rules.check_port(params["port"])
            rules.check_users(params["users"], "users")
            rules.check_users(params["key_holders"], "key_holders")
            allowed = resolve(rules.allow_list(params["users"], params["legacy_jobs"], params["job_phases"],
                                               params["key_users"], params["key_holders"]))
            if not allowed:
                raise InvalidOptionError("no user is allowed: users must name at least root")
            want_rules = rules.render_rules(params["table"], address_list, port,
                                            {user: entry["uid"] for user, entry in allowed.items()})
        host = Host(module)
        if params["state"] == "present":
            changed, actions, diffs = ensure_present(module, host, params, want_rules)
            installed = actions != [NOT_INSTALLED]
        else:
            changed, actions, diffs = ensure_absent(module, host, params)
            installed = False
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": changed, "allowed": allowed, "uids": sorted({e["uid"] for e in allowed.values()}),
              "rules": want_rules, "installed": installed, "actions": actions, "probes": probes}
    if module._diff and diffs:
        result["diff"] = diffs
    if changed and installed and not module.check_mode and params["probe_url"]:
        result["probes"], failed = run_probes(params["probe_url"], params["probe"], allowed)
        if failed:
            module.fail_json(msg="; ".join(f"as {p['user']} the metadata service at {params['probe_url']} gave "
                                           f"'{p['outcome']}', expected {p['expect']}" for p in failed)
                             + ": the rule set is loaded: check imds_access_url and the users, or roll back with "
                               "playbooks/rollback.yml -e phase=3", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
