# -*- coding: utf-8 -*-

# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dump_compare
short_description: Compare a job's legacy and new dump of one day and record the verdict in the cutover ledger
version_added: 0.1.0
description:
  - Runs C(dumpjob compare JOB --date DATE --json) on the dump host (as the unprivileged O(run_as) user)
    and records the verdict, with its per-table details, in the cutover ledger O(ledger_path) - the
    ledger whose verdicts gate the C(parallel) to C(cutover) move of M(jram.dumphost.cron_cutover).
  - "Verdicts: C(identical), C(equivalent), C(different), and C(incomplete) when one of the two objects
    of the day is missing or is not a complete compressed stream (the run of that day did not publish)."
  - With O(record_run=true) it records a production run instead, the evidence the C(cutover) to
    C(retired) gate needs; it checks the job's production object of O(date) against its manifest with
    C(dumpjob verify --json) and records C(ok) or C(failed) (object or manifest missing, or not matching).
  - Recording is idempotent - the same verdict (or run status) with the same details for a day is
    recorded once - so C(changed) is true only when a new ledger entry was written. Any other failure
    of the program (configuration, S3 unreachable, credentials) fails the task and records nothing.
  - The ledger is read, updated and replaced atomically under the same lock as M(jram.dumphost.cron_cutover) uses.
author:
  - JRAM infrastructure team (@jram)
options:
  job:
    description:
      - Name of the job, as in the job file.
    type: str
    required: true
  date:
    description:
      - The day of the runs to compare (or of the production run to record), C(YYYY-MM-DD) in the
        job's time zone - the day the key templates are filled with.
    type: str
    required: true
  record_run:
    description:
      - Record a production run of O(date) (verified against its manifest) instead of a compare verdict.
    type: bool
    default: false
  legacy_url:
    description:
      - The legacy object to compare, when not the job's C(legacy_key) of O(date).
    type: str
  new_url:
    description:
      - The new object to compare, when not the job's C(parallel_key) of O(date).
    type: str
  run_as:
    description:
      - The user C(dumpjob) runs as (through C(runuser)); the program never needs root. An empty
        string runs it as the user the module runs as.
    type: str
    default: dumpjob
  dumpjob_bin:
    description:
      - The dumpjob program (the wrapper that loads C(/etc/dumpjob/environment)).
    type: path
    default: /usr/local/bin/dumpjob
  config:
    description:
      - The job file, when not the program's default C(/etc/dumpjob/jobs.yml).
    type: path
  ledger_path:
    description:
      - The cutover ledger.
    type: path
    default: /var/lib/dumpjob/cutover.json
notes:
  - Needs root (C(become=true)) to write the root 0600 ledger.
  - Check mode runs the comparison (it only reads S3) and reports whether a new entry would be recorded, without writing it.
  - The diff (C(--diff)) shows the ledger entry that is (or would be) added.
seealso:
  - module: jram.dumphost.cron_cutover
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
"""

EXAMPLES = r"""
- name: Compare yesterday's legacy and parallel dumps of the main job and record the verdict
  jram.dumphost.dump_compare:
    job: basis
    date: "{{ '%Y-%m-%d' | ansible.builtin.strftime(ansible_date_time.epoch | int - 86400) }}"
  become: true

- name: Record a back-dated day from explicit objects
  jram.dumphost.dump_compare:
    job: contract_status
    date: "2026-11-24"
    legacy_url: s3://jram-gghouse/dumps/contract_status_20261124.csv.gz
    new_url: s3://jram-gghouse/dumps-test/contract_status_20261124.csv.gz
  become: true

- name: Record the production run of a day after cutover (needed before retiring the job)
  jram.dumphost.dump_compare:
    job: contract_status
    date: "2026-11-27"
    record_run: true
  become: true
"""

RETURN = r"""
job:
  description: The job name.
  returned: always
  type: str
  sample: contract_status
date:
  description: The day compared or recorded.
  returned: always
  type: str
  sample: "2026-11-24"
kind:
  description: C(verdict) for a compare, C(run) with O(record_run=true).
  returned: always
  type: str
  sample: verdict
verdict:
  description: The compare verdict, C(identical), C(equivalent), C(different) or C(incomplete) (null with O(record_run=true)).
  returned: always
  type: str
  sample: identical
status:
  description: The production run's status, C(ok) or C(failed) (null for a compare).
  returned: always
  type: str
  sample: null
reason:
  description: Why the verdict is C(incomplete) or the run C(failed) (null otherwise).
  returned: always
  type: str
  sample: null
tables:
  description: Per section of the dump (table, view, routines, the query), its verdict and the reasons when it differs.
  returned: always
  type: list
  elements: dict
  sample:
    - name: "(query)"
      kind: query
      verdict: identical
      reasons: []
      legacy: {rows: 1200}
      new: {rows: 1200}
legacy:
  description: The legacy object compared (url, compressed_bytes, sha256, raw_bytes); empty with O(record_run=true).
  returned: always
  type: dict
  sample: {url: "s3://jram-gghouse/dumps/contract_status_20261124.csv.gz", sha256: "9f2c…", compressed_bytes: 41234}
new:
  description: The new object compared, or with O(record_run=true) the production object verified.
  returned: always
  type: dict
  sample: {url: "s3://jram-gghouse/dumps-test/contract_status_20261124.csv.gz", sha256: "9f2c…", compressed_bytes: 41230}
entry:
  description: The ledger entry recorded (or, in check mode, that would be), null when the ledger already had it.
  returned: always
  type: dict
  sample: {date: "2026-11-24", verdict: identical, details: {tables: {"(query)": {verdict: identical, reasons: []}}}}
validated_days:
  description:
    - The days whose latest verdict is C(identical) or C(equivalent), after this run, of the verdicts
      recorded since the job last entered C(parallel) - the ones the cutover gate counts.
  returned: always
  type: list
  elements: str
  sample: ["2026-11-24", "2026-11-25"]
production_run_days:
  description:
    - The days whose latest production run is C(ok), after this run, of the runs recorded since the job
      last entered C(cutover) - the ones the retirement gate counts.
  returned: always
  type: list
  elements: str
  sample: []
ledger_path:
  description: The ledger file.
  returned: always
  type: str
  sample: /var/lib/dumpjob/cutover.json
"""

import datetime as dt
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit as edit
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils import dumpjob_program
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError, HostError, InvalidOptionError

# dumpjob exit codes (docs/dumpjob.md) that mean "the day's object is not there or not whole",
# which is a verdict about that day, not a failure of the task.
EXIT_OK = 0
EXIT_STORAGE = 7
EXIT_VERIFY_FAILED = 10
EXIT_DIFFERENT = 11
MISSING_OBJECT = "no object at"


class Dumpjob:
    """The dumpjob program on the host, run as its unprivileged user, answering in JSON."""

    def __init__(self, module, program, run_as, config):
        self.module = module
        if not os.access(program, os.X_OK):
            raise HostError(f"{program} (dumpjob_bin) is not an executable on the host: install the dump program "
                            "first (role jram.dumphost.dumpjob, phase 2)")
        self.prefix = dumpjob_program.command(program, run_as, dumpjob_program.runuser(module, run_as),
                                              cron_environment=False)
        self.config = ["--config", config] if config else []

    def call(self, *argv):
        """(exit code, parsed JSON answer) of one command."""
        rc, out, err = self.module.run_command([*self.prefix, *argv, *self.config, "--json"])
        lines = [line for line in out.splitlines() if line.startswith("{")]
        try:
            answer = json.loads(lines[-1]) if lines else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            last = (err.strip().splitlines() or ["no output"])[-1]
            raise HostError(f"dumpjob {argv[0]} gave no JSON answer (exit {rc}): {last}")
        return rc, answer


def day_date(text):
    """The day of the runs; refused unless YYYY-MM-DD and a calendar date."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidOptionError(f"date {text!r} is not a YYYY-MM-DD calendar date: give the day of the runs in the "
                                 "job's time zone, e.g. 2026-11-24") from None


def compare(program, job, date, legacy_url, new_url):
    """The verdict of one day and the details the ledger keeps (stable when the objects are)."""
    argv = ["compare", job, "--date", date]
    if legacy_url:
        argv += ["--legacy-url", legacy_url]
    if new_url:
        argv += ["--new-url", new_url]
    rc, answer = program.call(*argv)
    if rc in (EXIT_OK, EXIT_DIFFERENT) and "verdict" in answer:
        tables = answer.get("tables", [])
        details = {
            "tables": {t["name"]: {"verdict": t["verdict"], "reasons": t.get("reasons", [])} for t in tables},
            "legacy": {k: answer.get("legacy", {}).get(k) for k in ("url", "sha256")},
            "new": {k: answer.get("new", {}).get(k) for k in ("url", "sha256")},
        }
        return {"verdict": answer["verdict"], "reason": None, "tables": tables, "legacy": answer.get("legacy", {}),
                "new": answer.get("new", {}), "details": details}
    error = answer.get("error", "")
    if rc == EXIT_VERIFY_FAILED or (rc == EXIT_STORAGE and MISSING_OBJECT in error):
        return {"verdict": "incomplete", "reason": error, "tables": [], "legacy": {}, "new": {},
                "details": {"reason": error}}
    raise HostError(f"dumpjob compare {job} --date {date} failed (exit {rc}, {answer.get('kind', 'error')}): {error}; "
                    "nothing was recorded")


def production_url(program, job, day):
    rc, answer = program.call("check-config")
    if rc != EXIT_OK:
        raise HostError(f"dumpjob check-config failed (exit {rc}): {answer.get('error', '')}")
    spec = answer.get("jobs", {}).get(job)
    if spec is None:
        raise InvalidOptionError(f"job {job} is not in the host's job file ({', '.join(sorted(answer.get('jobs', {})))}): "
                                 "check job, or run phase 2 to install the job file")
    key = spec["key"].format(date=day, job=job)
    return f"s3://{spec['bucket']}/{key}"


def verify_run(program, job, day):
    """The status of the production run of one day, from its object and manifest."""
    url = production_url(program, job, day)
    rc, answer = program.call("verify", url)
    if rc == EXIT_OK and answer.get("ok"):
        if answer.get("job") not in (None, job):
            return {"status": "failed", "reason": f"{url} was published by job {answer.get('job')}", "new": {"url": url},
                    "details": {"url": url, "reason": "published by another job"}}
        new = {k: answer.get(k) for k in ("url", "sha256", "compressed_bytes", "raw_bytes")}
        return {"status": "ok", "reason": None, "new": new, "details": dict(new)}
    if rc == EXIT_VERIFY_FAILED or (rc == EXIT_STORAGE and MISSING_OBJECT in answer.get("error", "")):
        failed = [c for c in answer.get("checks", []) if not c.get("ok")]
        reason = answer.get("error") or "; ".join(f"{c['name']}: {c['reason']}" for c in failed) or "verify failed"
        return {"status": "failed", "reason": reason, "new": {"url": url}, "details": {"url": url, "reason": reason}}
    raise HostError(f"dumpjob verify {url} failed (exit {rc}, {answer.get('kind', 'error')}): "
                    f"{answer.get('error', '')}; nothing was recorded")


def run(module):
    p = module.params
    job = edit.validate_job_name(p["job"])
    day = day_date(p["date"])
    if p["record_run"] and (p["legacy_url"] or p["new_url"]):
        raise InvalidOptionError("legacy_url and new_url are for compares: drop them with record_run: true")
    program = Dumpjob(module, p["dumpjob_bin"], p["run_as"], p["config"])
    if p["record_run"]:
        outcome = verify_run(program, job, day)
    else:
        outcome = compare(program, job, p["date"], p["legacy_url"], p["new_url"])

    path = p["ledger_path"]
    with ledger_mod.locked(path):
        ledger = ledger_mod.load(path)
        if p["record_run"]:
            changed = ledger_mod.record_run(ledger, job, p["date"], outcome["status"], "production", outcome["details"])
            entry = ledger["jobs"][job]["runs"][-1] if changed else None
        else:
            changed = ledger_mod.record_verdict(ledger, job, p["date"], outcome["verdict"], outcome["details"])
            entry = ledger["jobs"][job]["verdicts"][-1] if changed else None
        if changed and not module.check_mode:
            ledger_mod.write(path, ledger)

    result = {
        "changed": changed,
        "job": job,
        "date": p["date"],
        "kind": "run" if p["record_run"] else "verdict",
        "verdict": outcome.get("verdict"),
        "status": outcome.get("status"),
        "reason": outcome.get("reason"),
        "tables": outcome.get("tables", []),
        "legacy": outcome.get("legacy", {}),
        "new": outcome.get("new", {}),
        "entry": entry,
        "validated_days": ledger_mod.validated_days(ledger, job, ledger_mod.entered(ledger, job, "parallel")),
        "production_run_days": ledger_mod.production_run_days(ledger, job, ledger_mod.entered(ledger, job, "cutover")),
        "ledger_path": path,
    }
    if module._diff and changed:
        result["diff"] = {"before": "", "after": json.dumps(entry, indent=2, sort_keys=True) + "\n",
                          "before_header": f"{path} ({job})", "after_header": f"{path} ({job})"}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            job=dict(type="str", required=True),
            date=dict(type="str", required=True),
            record_run=dict(type="bool", default=False),
            legacy_url=dict(type="str"),
            new_url=dict(type="str"),
            run_as=dict(type="str", default="dumpjob"),
            dumpjob_bin=dict(type="path", default="/usr/local/bin/dumpjob"),
            config=dict(type="path"),
            ledger_path=dict(type="path", default=ledger_mod.DEFAULT_PATH),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except CutoverError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or 'the host'}: {exc.strerror or exc}; run the task with become: true "
                             "if this is a permission problem")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
