# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installed dumpjob program as modules run it, and what its `--json` answers mean.

Pure: builds argv lists and reads answers; the module runs the command. The program runs as its
unprivileged user with cron's environment, as its cron entries run it: `runuser` sets HOME, USER
and LOGNAME from the user's entry, a shell passes on only those (and a fixed PATH, SHELL and
LANG) through `env -i`, and the wrapper then reads /etc/dumpjob/environment. The `$HOME` and
`$USER` in the shell script are the user's, expanded by that shell: run the argv without variable
expansion (AnsibleModule.run_command(..., expand_user_and_vars=False))."""

from __future__ import annotations

import json

from ansible_collections.jram.dumphost.plugins.module_utils.errors import HostError

CRON_ENVIRONMENT = ('exec /usr/bin/env -i HOME="$HOME" USER="$USER" LOGNAME="$LOGNAME" SHELL=/bin/sh '
                    'PATH=/usr/bin:/bin LANG=C.UTF-8 "$0" "$@"')

# The doctor's check names (docs/dumpjob.md, "doctor --json"); bucket stands for every bucket:<prefix>.
CHECKS = ("instance_role", "aws_identity", "config", "secret", "database", "privileges", "flavour", "bucket")
# The doctor's flavour check (docs/dumpjob.md, "doctor --json"): what each job's dump will use.
FLAVOUR_FIELDS = ("client", "client_flavour", "server_flavour", "server_version", "mode")
NO_FLAVOUR_CHECK = ("no flavour check: a query job uses no mysqldump client, or this dumpjob's doctor predates the "
                    "check (install a newer dumpjob, phase 2)")
NO_CLIENT = "a query job: no mysqldump client involved"
# The checks whose failure keeps the doctor from reaching a job's server, in the order they run.
REACHING_SERVER = ("secret", "database")


def command(program, run_as="", runuser=None, cron_environment=True):
    """The argv prefix that runs `program` as `run_as` (through `runuser`; empty: the current user),
    with cron's environment or the caller's."""
    argv = [program]
    if cron_environment:
        argv = ["/bin/sh", "-c", CRON_ENVIRONMENT, program]
    if run_as:
        argv = [runuser, "-u", run_as, "--", *argv]
    return argv


def runuser(module, run_as):
    """The path of runuser on the host when the program runs as another user (`run_as`), else None;
    raises HostError when it is missing."""
    if not run_as:
        return None
    path = module.get_bin_path("runuser")
    if not path:
        raise HostError("runuser is not installed on the host: install util-linux, or set run_as: ''")
    return path


def answer(stdout):
    """The last JSON object line of the program's stdout, or None."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                return None
            return doc if isinstance(doc, dict) else None
    return None


def last_line(text):
    """The last non-empty line of `text`: for a dumpjob log line on stderr, its `msg`."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    try:
        doc = json.loads(lines[-1])
    except ValueError:
        return lines[-1]
    return doc.get("msg", lines[-1]) if isinstance(doc, dict) else lines[-1]


def failed_checks(report):
    """Every failing check of a doctor report as {job, name, reason} (job null for host checks)."""
    out = [{"job": None, "name": c.get("name"), "reason": c.get("reason")}
           for c in report.get("checks", []) if not c.get("ok")]
    for job in report.get("jobs", []):
        out += [{"job": job.get("job"), "name": c.get("name"), "reason": c.get("reason")}
                for c in job.get("checks", []) if not c.get("ok")]
    return out


def _named(checks, name):
    return next((c for c in checks or [] if c.get("name") == name), None)


def flavour(report):
    """Per job, the client and server flavours and the compatibility mode its dumps will use, from
    the doctor's `flavour` check (the job's, else the host's). A field the check does not carry is
    null: `mode` is null when the server could not be reached, every field when the program's doctor
    has no flavour check."""
    host_check = _named(report.get("checks"), "flavour")
    # A doctor that checks the flavour of some job leaves it out only for query jobs.
    supported = host_check is not None or any(_named(j.get("checks"), "flavour") for j in report.get("jobs", []))
    out = {}
    for job in report.get("jobs", []):
        name = job.get("job")
        check = _named(job.get("checks"), "flavour") or host_check
        entry = {field: (check or {}).get(field) for field in FLAVOUR_FIELDS}
        entry["ok"] = check.get("ok") if check else None
        entry["reason"] = check.get("reason") if check else (NO_CLIENT if supported else NO_FLAVOUR_CHECK)
        blocking = [c for c in (_named(job.get("checks"), n) for n in REACHING_SERVER) if c and not c.get("ok")]
        entry["summary"] = describe(name, entry, blocking[0] if blocking else None)
        out[name] = entry
    return out


def describe(job, entry, blocking=None):
    """One line for an operator: the client, the server and the mode, or why the mode is unknown
    (`blocking`: the failing check that kept the doctor from the server)."""
    if entry["ok"] is None and not entry["client"]:
        return f"{job}: {entry['reason']}"
    client = entry["client"] or "client unknown"
    if entry["client_flavour"]:
        client += f" ({entry['client_flavour']})"
    if entry["mode"]:
        server = " ".join(v for v in (entry["server_flavour"], entry["server_version"]) if v) or "unknown"
        line = f"{job}: client {client}, server {server}: mode {entry['mode']}"
        return line if entry["ok"] else f"{line}, refused: {entry['reason']}"
    why = f"{blocking.get('name')}: {blocking.get('reason')}" if blocking else entry["reason"] or "no reason given"
    return f"{job}: client {client}; server not reached, so the mode is not known yet ({why})"


def gates(name, gate_checks):
    """Whether a check gates: `gate_checks` None gates on every check; `bucket` stands for every
    `bucket:<prefix>`."""
    return gate_checks is None or name.split(":", 1)[0] in gate_checks


def findings(report, gate_checks=None, expected_role=None):
    """(findings, other) of a doctor report, each a list of one-line strings.

    findings: the failing host checks that gate (`name: reason`); when `expected_role` is given, a
    passing `instance_role` check that names another role and a passing `aws_identity` check whose
    credentials are not that role's from the instance role; the failing job checks that gate
    (`job: name: reason`). other: the failing checks that do not gate."""
    host, jobs, other = [], [], []
    for check in failed_checks(report):
        line = ": ".join(str(v) for v in (check["job"], check["name"], check["reason"]) if v is not None)
        if not gates(check["name"] or "", gate_checks):
            other.append(line)
        else:
            (host if check["job"] is None else jobs).append(line)
    return host + wrong_role(report, gate_checks, expected_role) + jobs, other


def wrong_role(report, gate_checks, expected_role):
    """Passing identity checks that show another role than `expected_role` (none without one)."""
    if not expected_role:
        return []
    host = {c.get("name"): c for c in report.get("checks", []) if c.get("ok")}
    out = []
    role = host.get("instance_role")
    if role and gates("instance_role", gate_checks) and role.get("role") != expected_role:
        out.append(f"instance_role: {role.get('reason')}, expected role {expected_role}")
    identity = host.get("aws_identity")
    if identity and gates("aws_identity", gate_checks) and (
            identity.get("role") != expected_role or identity.get("source") != "iam-role"):
        out.append(f"aws_identity: {identity.get('reason')}, expected the instance role {expected_role}")
    return out


def passed(report):
    """The reason of every passing host check, by check name."""
    return {c.get("name"): c.get("reason") for c in report.get("checks", []) if c.get("ok")}
