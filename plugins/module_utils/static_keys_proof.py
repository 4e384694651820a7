# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key retirement's proof: as an OS user, with its key files moved aside and cron's environment,
the AWS CLI and boto3 must each get the instance role's identity and write under every prefix the
user's legacy jobs write.

Pure: builds the argv lists (run as the user through ``runuser`` with cron's environment, as
:mod:`dumpjob_program` runs the dump program, with the proof's PATH) and turns what the programs
answered into one-line findings; the module runs the commands."""

from __future__ import annotations

import json
import re
import shlex

from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program

PROBE_BODY = "jram.dumphost static_keys probe"

# Run as the user with boto3: the caller identity, then one object written per argument
# (s3://bucket/key). Prints one JSON line; errors are reported per object, never raised.
BOTO3_PROBE = """\
import json, sys
import boto3
out = {"arn": None, "written": [], "errors": []}
try:
    session = boto3.session.Session()
    creds = session.get_credentials()
    out["method"] = creds.method if creds else None
    out["arn"] = session.client("sts").get_caller_identity()["Arn"]
    s3 = session.client("s3")
except Exception as exc:
    out["errors"].append("identity: " + str(exc).splitlines()[0])
    print(json.dumps(out)); sys.exit(0)
for url in sys.argv[1:]:
    bucket, _, key = url[len("s3://"):].partition("/")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"jram.dumphost static_keys probe\\n")
        out["written"].append(url)
    except Exception as exc:
        out["errors"].append(url + ": " + str(exc).splitlines()[0])
print(json.dumps(out))
"""


def as_user(runuser: str, user: str, path: str, argv: list) -> list:
    """``argv`` run as ``user`` with cron's environment and PATH ``path``."""
    shell = dumpjob_program.CRON_ENVIRONMENT.replace("PATH=/usr/bin:/bin", "PATH=" + shlex.quote(path))
    return [runuser, "-u", user, "--", "/bin/sh", "-c", shell, *argv]


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def cli_arn(stdout: str) -> str:
    """The Arn the AWS CLI's ``sts get-caller-identity --output json`` answered, or ''."""
    try:
        doc = json.loads(stdout or "")
    except ValueError:
        return ""
    return str(doc.get("Arn") or "") if isinstance(doc, dict) else ""


def findings(role: str, cli: dict, writes: list, boto3: dict) -> list:
    """One line per way the proof failed (empty: the instance role serves the user).

    ``cli`` and ``boto3`` are ``{rc, stdout, stderr}`` of the identity call and of the boto3 probe,
    ``writes`` the ``(url, rc, stderr)`` of each AWS CLI write."""
    wanted = re.compile(r":assumed-role/" + re.escape(role) + "/")
    found = []
    arn = cli_arn(cli["stdout"])
    if not wanted.search(arn):
        found.append(f"AWS CLI: identity {arn or 'none (' + last_line(cli['stderr']) + ')'}, expected role {role}")
    found += [f"AWS CLI cannot write {url}: {last_line(stderr)}" for url, rc, stderr in writes if rc != 0]
    report = dumpjob_program.answer(boto3["stdout"])
    if report is None:
        found.append(f"boto3: no report (exit {boto3['rc']}): {last_line(boto3['stderr'])}")
    else:
        if not wanted.search(report.get("arn") or ""):
            found.append(f"boto3: identity {report.get('arn') or 'none'}, expected role {role}")
        found += ["boto3: " + str(error) for error in report.get("errors") or []]
    return found


def boto3_report(stdout: str) -> dict:
    return dumpjob_program.answer(stdout) or {}
