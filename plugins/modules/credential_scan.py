# -*- coding: utf-8 -*-

# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential_scan
short_description: Find static AWS keys and hard-coded database passwords in files on the host, masked
version_added: 0.1.0
description:
  - Reads the files under O(paths) on the host and reports every hard-coded credential it
    recognises, with its file, line and kind. The secret itself is never returned; an access key
    id shows only its C(AKIA)/C(ASIA) prefix (C(AKIA****)), every other kind shows C(****).
  - "Recognised: AWS access key ids (C(AKIA…), C(ASIA…)); AWS secret access keys assigned to a
    key-ish name (C(aws_secret_access_key = …), C(AWS_SECRET_ACCESS_KEY=…), C(SecretAccessKey), or right
    after an access key id as in the IAM console's CSV); AWS session tokens (C(aws_session_token));
    C(-pVALUE) of the MySQL and MariaDB clients; C(--password=VALUE) (and C(--password VALUE) of
    other programs); C(MYSQL_PWD=VALUE); C(password=) in the sections of option files such as
    C(~/.my.cnf); literal values of names ending in C(PASS), C(PASSWD), C(PASSWORD), C(PWD), C(PW)
    or C(SECRET), also run together after what they are for (C(DB_PASS='…'), C(DB_PASSWORD=…),
    C(db_password: …), C(DBPW=…), C(SECRET=…), C(DB_SECRET=…)); C(aws_secret=) with a secret access key;
    the password of a database URL (C(mysql://user:password@host))."
  - "Not reported: references that hold no secret (C($DB_PASS), C(-p$DB_PASS), C(-p\"$DB_PASS\"), command
    substitutions, C({{ vault_db_password }}), C(!vault)), C(--password) or C(-p) with no attached value (the
    client prompts), C(password_file=), names such as C(secret_id), switches such as
    C(MARIADB_ALLOW_EMPTY_PASSWORD=yes), Secrets Manager names and ARNs (C(DB_SECRET=rds/nazca)),
    placeholders (empty, C(<password>), C(****), C(REDACTED), null, a boolean as a YAML value) and the
    example keys of the AWS documentation (ending in C(EXAMPLE)). A literal word is a password, however
    weak - C(-ppassword), C(-psecret), C(-pPASS), C(DB_PASS=on), C(changeme) are reported.
    C(docs/credential_scan.md) in the collection lists the forms in detail and what is not detected."
  - Directories are walked recursively without following symbolic links. A symbolic link to a file
    is read only when its target lies under one of O(paths); each file is read once however often
    it is reached. Binary files (a NUL byte in the first 8 KiB), files over O(max_file_size) and
    files that cannot be read are listed in RV(not_read), not scanned.
  - Findings under O(archives) (the root-only archive where M(jram.dumphost.cron_cutover) keeps a retired
    job's legacy script) are marked RV(findings[].archived), counted apart in RV(archived_counts), do not
    fail the task with O(fail_on_findings), and are shown in a warning - the archived scripts still hold
    the password they ran with, which stays valid until it is rotated.
  - Read-only; C(changed) is always false.
author:
  - JRAM infrastructure team (@jram)
options:
  paths:
    description:
      - Files and directories to scan. Shell-style wildcards are expanded (C(/etc/cron*)); a path or
        pattern that matches nothing is listed in RV(missing) and is not an error.
      - The default covers the places a legacy host keeps credentials - home directories, cron,
        profile and environment files, systemd units and MySQL option files. Add the legacy script
        directories when they live elsewhere.
    type: list
    elements: path
    default:
      - /home
      - /root
      - /etc/cron*
      - /var/spool/cron
      - /etc/environment
      - /etc/profile
      - /etc/profile.d
      - /etc/bash.bashrc
      - /etc/bashrc
      - /etc/default
      - /etc/sysconfig
      - /etc/systemd/system
      - /etc/mysql
      - /etc/my.cnf
      - /etc/my.cnf.d
      - /opt
      - /usr/local
      - /var/lib/dumpjob/legacy-archive
  archives:
    description:
      - Directories whose findings are reported as archived (RV(findings[].archived)) and never fail the
        task. They are read only when they lie under O(paths).
      - The default is where M(jram.dumphost.cron_cutover) archives a retired job's legacy script (its
        default C(archive_dir)).
    type: list
    elements: path
    default: [/var/lib/dumpjob/legacy-archive]
  exclude:
    description:
      - Shell-style patterns of files and directories not to read. A pattern with a C(/) is matched
        against the whole path (C(/home/*/work)), one without against the name (C(*.log), C(.git)).
        An excluded directory is not entered.
      - The default leaves out the packages that pip and npm install (under C(/opt) and C(/usr/local)) -
        third-party code whose documentation holds example credentials by the dozen. Giving O(exclude)
        replaces the default; add these names to it to keep them out.
    type: list
    elements: str
    default: [site-packages, dist-packages, node_modules]
  max_file_size:
    description:
      - Files larger than this are not read (listed in RV(not_read) as C(too_large)). Bytes, or a
        size with a unit such as C(512K) or C(2M).
    type: raw
    default: 1M
  fail_on_findings:
    description:
      - Fail the task when anything is found outside O(archives). The message lists C(path:line:kind)
        of every such finding, never a value.
    type: bool
    default: false
  fail_on_kinds:
    description:
      - Fail the task when a finding of one of these kinds is found outside O(archives); findings of other
        kinds are returned, not failed on. The message lists C(path:line:kind) of every such finding, never a
        value.
      - A kind (see RV(findings[].kind)) or a group of kinds - V(aws) (the access key id, secret access key
        and session token) or V(database) (every password kind); RV(kind_groups) lists them.
      - Unknown kinds are refused before anything is read.
    type: list
    elements: str
    default: []
    choices: [aws, database, aws_access_key_id, aws_secret_access_key, aws_session_token, password_option, mysql_pwd,
              option_file_password, password_assignment, url_password]
notes:
  - Run it with C(become=true) to read other users' home directories and C(/var/spool/cron);
    files it cannot read are listed in RV(not_read) with reason C(unreadable) and a warning, since
    what was not read was not proven clean.
  - Safe with C(-vvv) and in logs - no option carries a secret, and no return value holds any
    character of a secret key, session token or password. A finding carries the name the value was
    assigned to (C(DB_PASS), C(-p)), never the value or the line's text.
  - Recognition is by pattern, line by line (lines continued with a trailing backslash are joined).
    It finds the common forms, not every way a secret can be written; an empty result means none of
    the recognised forms was found in the files read.
seealso:
  - module: ansible.builtin.find
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Prove that key retirement left no static credential on the dump host
  jram.dumphost.credential_scan:
    paths:
      - /home
      - /root
      - /etc/cron*
      - /var/spool/cron
      - /etc/environment
      - /etc/profile
      - /etc/profile.d
      - /home/ec2-user/scripts
    exclude:
      - /home/*/work
      - "*.gz"
    fail_on_findings: true
  become: true

- name: Scan with the default paths and keep the result for a report
  jram.dumphost.credential_scan:
  become: true
  register: credential_scan

- name: Show where the credentials are (file, line, kind; values are masked)
  ansible.builtin.debug:
    msg: "{{ item.path }}:{{ item.line }} {{ item.kind }} {{ item.name }}={{ item.masked }}"
  loop: "{{ credential_scan.findings }}"

- name: Scan one legacy script directory, reading files up to 5 MB
  jram.dumphost.credential_scan:
    paths: /opt/legacy-scripts
    max_file_size: 5M
"""

RETURN = r"""
kind_groups:
  description: The kinds of each group O(fail_on_kinds) accepts.
  returned: always
  type: dict
  sample:
    aws: [aws_access_key_id, aws_secret_access_key, aws_session_token]
    database: [password_option, mysql_pwd, option_file_password, password_assignment, url_password]
findings:
  description:
    - Every credential found, ordered by path and line. Holds no part of any secret.
    - RV(findings[].kind) is one of C(aws_access_key_id), C(aws_secret_access_key), C(aws_session_token),
      C(password_option), C(mysql_pwd), C(option_file_password), C(password_assignment),
      C(url_password).
    - RV(findings[].name) is what the value was assigned to (C(DB_PASS), C(aws_secret_access_key)), the
      option (C(-p), C(--password)) or the URL scheme, or null.
    - Archived findings (under O(archives)) are included, with RV(findings[].archived) true.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file, as reached under O(paths).
      type: str
      sample: /home/ec2-user/.aws/credentials
    line:
      description: The 1-based line number (of the physical line, also within a continued command).
      type: int
      sample: 3
    kind:
      description: What was found.
      type: str
      sample: aws_secret_access_key
    name:
      description: What the value was assigned to, the option or the URL scheme, or null.
      type: str
      sample: aws_secret_access_key
    masked:
      description: C(AKIA****) or C(ASIA****) for an access key id, C(****) for every other kind.
      type: str
      sample: "****"
    archived:
      description: Whether the file lies under one of O(archives).
      type: bool
      sample: false
  sample:
    - path: /home/ec2-user/.aws/credentials
      line: 2
      kind: aws_access_key_id
      name: aws_access_key_id
      masked: AKIA****
      archived: false
    - path: /home/ec2-user/.aws/credentials
      line: 3
      kind: aws_secret_access_key
      name: aws_secret_access_key
      masked: "****"
      archived: false
    - path: /var/lib/dumpjob/legacy-archive/datatransit/ggh_datatransit.sh
      line: 9
      kind: password_assignment
      name: DB_PASS
      masked: "****"
      archived: true
counts:
  description: The number of findings outside O(archives) per kind (kinds without findings are left out).
  returned: always
  type: dict
  sample:
    aws_access_key_id: 1
    aws_secret_access_key: 1
archived_counts:
  description: The number of findings under O(archives) per kind (kinds without findings are left out).
  returned: always
  type: dict
  sample:
    password_assignment: 1
files_scanned:
  description: How many files were read.
  returned: always
  type: int
  sample: 27
not_read:
  description:
    - Files not scanned and why (named so, not C(skipped), which Ansible reads as the task
      having been skipped) - C(binary), C(too_large), C(unreadable) (permission denied or a
      read error) or C(symlink_outside) (a symbolic link whose target is not under O(paths)).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file or directory not read.
      type: str
      sample: /home/ec2-user/work/basis_20261125.sql.gz
    reason:
      description: C(binary), C(too_large), C(unreadable) or C(symlink_outside).
      type: str
      sample: binary
  sample:
    - path: /home/ec2-user/work/basis_20261125.sql.gz
      reason: binary
    - path: /home/ec2-user/scripts/current
      reason: symlink_outside
missing:
  description: Entries of O(paths) that matched nothing on the host.
  returned: always
  type: list
  elements: str
  sample: ["/etc/bashrc", "/etc/my.cnf.d"]
"""

import dataclasses
import fnmatch
import glob
import os
import stat
from collections import Counter

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes
from ansible_collections.jram.dumphost.plugins.module_utils import credential_patterns as patterns
from ansible_collections.jram.dumphost.plugins.module_utils.credential_patterns import (
    CredentialScanError,
    ScanOptionError,
)

ARCHIVE = "/var/lib/dumpjob/legacy-archive"
DEFAULT_PATHS = [
    "/home", "/root", "/etc/cron*", "/var/spool/cron", "/etc/environment", "/etc/profile", "/etc/profile.d",
    "/etc/bash.bashrc", "/etc/bashrc", "/etc/default", "/etc/sysconfig", "/etc/systemd/system", "/etc/mysql",
    "/etc/my.cnf", "/etc/my.cnf.d", "/opt", "/usr/local", ARCHIVE,
]
DEFAULT_EXCLUDE = ["site-packages", "dist-packages", "node_modules"]
HEAD = 8192


def parse_size(value):
    try:
        size = human_to_bytes(str(value).strip())
    except ValueError:
        raise ScanOptionError(f"max_file_size {value!r} is not a size: give bytes or a size such as 512K "
                              "or 2M") from None
    if size <= 0:
        raise ScanOptionError(f"max_file_size {value!r} must be more than 0")
    return size


def expand(paths):
    """(roots, missing): each entry of paths made absolute and its wildcards expanded."""
    roots, missing = [], []
    for entry in paths:
        if not os.path.isabs(entry):
            raise ScanOptionError(f"paths entry {entry!r} is not absolute: give the full path on the host")
        if any(c in entry for c in "*?["):
            matched = sorted(glob.glob(entry))
        else:
            matched = [entry] if os.path.lexists(entry) else []
        if not matched:
            missing.append(entry)
        roots.extend(os.path.normpath(p) for p in matched)
    return roots, missing


class Tree:
    """The files under the roots, each once, without leaving the roots through a symbolic link."""

    def __init__(self, roots, exclude, max_size):
        self.roots = roots
        self.real_roots = [os.path.realpath(r) for r in roots]
        self.exclude = exclude
        self.max_size = max_size
        self.seen = set()
        self.not_read = []

    def excluded(self, path):
        name = os.path.basename(path)
        return any(fnmatch.fnmatchcase(path if "/" in p else name, p) for p in self.exclude)

    def inside(self, real):
        return any(real == r or real.startswith(r.rstrip("/") + "/") for r in self.real_roots)

    def skip(self, path, reason):
        self.not_read.append({"path": path, "reason": reason})

    def files(self):
        for root in self.roots:
            if self.excluded(root):
                continue
            if os.path.isdir(root):  # a root given as a symbolic link to a directory is followed
                yield from self.walk(root)
            else:
                yield from self.entry(root, explicit=True)

    def walk(self, top):
        def unreadable(err):
            self.skip(err.filename or top, "unreadable")

        for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not self.excluded(os.path.join(dirpath, d)))
            for name in dirnames:  # os.walk does not enter links; a target inside is walked anyway
                path = os.path.join(dirpath, name)
                if os.path.islink(path) and not self.inside(os.path.realpath(path)):
                    self.skip(path, "symlink_outside")
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if not self.excluded(path):
                    yield from self.entry(path, explicit=False)

    def entry(self, path, explicit):
        """Yield ``path`` if it is a regular file to read (once); record why not otherwise."""
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                real = os.path.realpath(path)
                if not explicit and not self.inside(real):
                    self.skip(path, "symlink_outside")
                    return
                info = os.stat(path)
        except FileNotFoundError:
            return  # a dangling link, or removed while walking
        except OSError:
            self.skip(path, "unreadable")
            return
        if not stat.S_ISREG(info.st_mode):
            return  # FIFOs, sockets and devices are never opened
        key = (info.st_dev, info.st_ino)
        if key in self.seen:
            return
        self.seen.add(key)
        if info.st_size > self.max_size:
            self.skip(path, "too_large")
            return
        yield path


def read(path, tree):
    """The text of a regular file, or None when it is binary or unreadable (recorded in tree)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(tree.max_size + 1)
    except OSError:
        tree.skip(path, "unreadable")
        return None
    if patterns.is_binary(data[:HEAD]):
        tree.skip(path, "binary")
        return None
    if len(data) > tree.max_size:  # grew since it was measured
        tree.skip(path, "too_large")
        return None
    return data.decode("utf-8", "replace")


def under(path, dirs):
    """Whether ``path`` (as reached, or with its links resolved) lies in one of ``dirs``."""
    places = {os.path.normpath(path), os.path.realpath(path)}
    return any(p == d or p.startswith(d.rstrip("/") + "/") for d in dirs for p in places)


def scan(paths, exclude, max_size, archives=()):
    roots, missing = expand(paths)
    tree = Tree(roots, exclude, max_size)
    archive_dirs = {os.path.normpath(a) for a in archives} | {os.path.realpath(a) for a in archives}
    findings, scanned = [], 0
    for path in tree.files():
        text = read(path, tree)
        if text is None:
            continue
        scanned += 1
        found = patterns.scan_text(text, path)
        if found and under(path, archive_dirs):
            found = [dataclasses.replace(f, archived=True) for f in found]
        findings.extend(found)
    findings.sort(key=lambda f: (f.path, f.line))
    return findings, scanned, tree.not_read, missing


def run(module):
    p = module.params
    max_size = parse_size(p["max_file_size"])
    for entry in p["archives"]:
        if not os.path.isabs(entry):
            raise ScanOptionError(f"archives entry {entry!r} is not absolute: give the full path on the host")
    findings, scanned, not_read, missing = scan(p["paths"], p["exclude"], max_size, p["archives"])
    unreadable = [s["path"] for s in not_read if s["reason"] == "unreadable"]
    if unreadable:
        module.warn(f"{len(unreadable)} path(s) could not be read and were not scanned (first: {unreadable[0]}): "
                    "run the task with become: true")
    archived = [f for f in findings if f.archived]
    if archived:
        module.warn(f"{len(archived)} hard-coded credential(s) in archived legacy files, values masked, not failed "
                    f"on: {patterns.summary(archived)}; they stay valid until rotated "
                    "(playbooks/rotate_db_password.yml for the DB password)")
    return {
        "changed": False,
        "findings": [f.as_dict() for f in findings],
        "counts": dict(Counter(f.kind for f in findings if not f.archived)),
        "archived_counts": dict(Counter(f.kind for f in archived)),
        "files_scanned": scanned,
        "not_read": not_read,
        "missing": missing,
    }


def main():
    argument_spec = dict(
        paths=dict(type="list", elements="path", default=DEFAULT_PATHS),
        archives=dict(type="list", elements="path", default=[ARCHIVE]),
        exclude=dict(type="list", elements="str", default=DEFAULT_EXCLUDE),
        max_file_size=dict(type="raw", default="1M"),
        fail_on_findings=dict(type="bool", default=False),
        fail_on_kinds=dict(type="list", elements="str", default=[],
                           choices=[*patterns.KIND_GROUPS, *patterns.KINDS]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = run(module)
    except CredentialScanError as exc:
        module.fail_json(msg=str(exc), changed=False)
    result["kind_groups"] = {group: list(kinds) for group, kinds in patterns.KIND_GROUPS.items()}
    live = [patterns.Finding(**f) for f in result["findings"] if not f["archived"]]
    failing_kinds = {kind for name in module.params["fail_on_kinds"] for kind in patterns.KIND_GROUPS.get(name, (name,))}
    failing = live if module.params["fail_on_findings"] else [f for f in live if f.kind in failing_kinds]
    if failing:
        module.fail_json(msg=f"found {len(failing)} hard-coded credential(s), values masked: "
                             f"{patterns.summary(failing)}; move them to the instance role or Secrets Manager "
                             "and remove them from the files", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
