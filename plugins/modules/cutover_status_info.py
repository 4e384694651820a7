
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cutover_status_info
short_description: Per job, the cutover phase, the evidence and gate verdicts that count now, from the cutover ledger
version_added: 0.1.0
description:
  - Reads the cutover ledger O(ledger_path) on the dump host (as M(jram.dumphost.cron_cutover) reads it,
    with its version check) and returns, per job, its phase and the evidence its next gate counts - the
    validated days and latest verdict recorded since the job last entered C(parallel), the days with a
    successful production run recorded since it last entered C(cutover) - and how many older records
    no longer count, since a rollback and a new move forward start the count again.
  - Returns the same as a table of one line per job (RV(table)), the status the cutover playbooks print.
  - Per job, the verdict of the gate of its next forward move (C(gate) in RV(jobs)), counted as
    M(jram.dumphost.cron_cutover) counts it, and for the jobs in O(targets) the move each would be
    (C(target) in RV(jobs)) and the moves to make (RV(moves), RV(forward_moves)) - what the C(jram.dumphost.cutover)
    role decides on before it moves any job.
  - The ledger is read under its lock, with its version check, as M(jram.dumphost.cron_cutover) reads it.
  - Changes nothing. A missing ledger is an empty one.
author:
  - JRAM infrastructure team (@jram)
options:
  ledger_path:
    description:
      - The cutover ledger.
    type: path
    default: /var/lib/dumpjob/cutover.json
  jobs:
    description:
      - Jobs to report besides those the ledger knows (a job it does not know is in C(legacy)).
    type: list
    elements: str
    default: []
  predicted:
    description:
      - Phases a check-mode run would move jobs to (job name to phase); the table shows them with a C(*).
    type: dict
    default: {}
  targets:
    description:
      - Job name to the phase it should move to. Each such job gets a C(target) in RV(jobs), and RV(moves) and
        RV(forward_moves) list the moves.
    type: dict
    default: {}
  forward_only:
    description:
      - Leave out of RV(moves) every job the ledger has in a later phase than its target (re-running phase 2 never
        rolls a cut-over job back).
    type: bool
    default: false
  legacy:
    description:
      - Job name to where its legacy cron line is (the C(legacy) option of
        M(jram.dumphost.cron_cutover)). For a job the ledger has no record of, the phase is then read from the host
        (its legacy line and its C(<cron_dir>/dumpjob-<job>) entry), as M(jram.dumphost.cron_cutover) reads it;
        without an entry here such a job is in C(legacy).
    type: dict
    default: {}
  cron_dir:
    description:
      - The directory of the jobs' new entries.
    type: path
    default: /etc/cron.d
  min_validated_days:
    description:
      - As M(jram.dumphost.cron_cutover)'s option, for the C(gate) and C(target) of each job in RV(jobs).
    type: int
    default: 2
  soak_days:
    description:
      - As M(jram.dumphost.cron_cutover)'s option, for the C(gate) and C(target) of each job in RV(jobs).
    type: int
    default: 2
notes:
  - The ledger is root's (mode 0600); run with C(become=true).
  - Supports check mode fully - it only reads - and returns the same as outside it.
seealso:
  - module: jram.dumphost.cron_cutover
  - module: jram.dumphost.dump_compare
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Read the cutover status
  jram.dumphost.cutover_status_info:
    jobs: [basis, contract_status]
  become: true
  register: cutover_status

- name: Show it
  ansible.builtin.debug:
    msg: "{{ cutover_status.table }}"

- name: Where a job to roll back is, read from its legacy line when the ledger has no record of it
  jram.dumphost.cutover_status_info:
    targets: {basis: legacy}
    legacy:
      basis: {user: ec2-user, match: /home/ec2-user/scripts/ggh_datatransit.sh}
  become: true
  register: cutover_start

- name: Refuse a rollback that would move a job forward
  ansible.builtin.assert:
    that: cutover_start.forward_moves | length == 0
"""

RETURN = r"""
jobs:
  description:
    - Per job, C(phase), C(phase_since), C(counting_from) (the latest entry into the phase whose evidence counts
      - C(parallel) for a job in C(parallel), C(cutover) for one in C(cutover) or C(retired); null when the ledger
      records none), C(validated_days), C(latest_verdict) (C(date), C(verdict)), C(production_days),
      C(latest_production_run) (C(date), C(status)), C(stale_verdicts) and C(stale_runs) (records from before
      C(counting_from), which no longer count).
    - C(recorded_phase), the phase the ledger records (null when it has no record of the job); C(current_phase),
      where the job is as M(jram.dumphost.cron_cutover) decides it - the ledger's phase or, for a job it has no
      record of and with an O(legacy) entry, what the host shows, C(legacy) otherwise, null when the host could not
      be read; C(phase_source) (C(ledger), C(host) or C(default)); C(host_problem), why the host could not be read.
    - C(gate), the gate of the next forward move from C(current_phase) - C(to) (null for a retired job or one whose
      phase is unknown), C(open) and C(problems) (each missing piece of evidence, in the words of
      M(jram.dumphost.cron_cutover)'s refusal).
    - For a job in O(targets), C(target) - C(phase), C(move) (C(stay), C(forward), C(rollback), C(refused); null when
      the current phase is unknown), C(refusal) (why a C(refused) move is) and C(problems) (the gates a C(forward)
      move would fail without M(jram.dumphost.cron_cutover)'s C(force)).
  returned: always
  type: dict
  sample:
    basis:
      job: basis
      phase: parallel
      phase_since: "2026-12-03T01:00:00Z"
      counting_from: "2026-12-03T01:00:00Z"
      validated_days: ["2026-12-03"]
      latest_verdict: {date: "2026-12-04", verdict: incomplete}
      production_days: []
      latest_production_run: null
      stale_verdicts: 2
      stale_runs: 1
      recorded_phase: parallel
      current_phase: parallel
      phase_source: ledger
      host_problem: null
      gate:
        to: cutover
        open: false
        problems:
          - "validated-days gate: job basis has 1 validated day(s) (2026-12-03) ... of the 2 needed ..."
      target:
        phase: cutover
        move: forward
        refusal: null
        problems:
          - "validated-days gate: job basis has 1 validated day(s) (2026-12-03) ... of the 2 needed ..."
table:
  description: The status table, a header line and one line per job, columns two spaces apart.
  returned: always
  type: list
  elements: str
  sample:
    - "job               phase      since                 counting_from         validated  last_validated  ..."
moves:
  description:
    - The moves to make, job name to phase - O(targets) without, under O(forward_only), the jobs the ledger has
      further along.
  returned: always
  type: dict
  sample: {basis: parallel}
forward_moves:
  description:
    - The moves of O(targets) that go forward from the job's current phase, as C(job), C(phase), C(previous_phase).
  returned: always
  type: list
  elements: dict
  sample: [{job: basis, phase: parallel, previous_phase: legacy}]
by_phase:
  description: Per phase, the jobs reported that the ledger has in it (C(legacy) for those it has no record of).
  returned: always
  type: dict
  sample: {legacy: [contract_status], parallel: [basis], cutover: [], retired: []}
ledger_path:
  description: The ledger read.
  returned: always
  type: str
  sample: /var/lib/dumpjob/cutover.json
"""

import datetime as dt

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_phases as phases
from ansible_collections.jram.dumphost.plugins.module_utils import legacy_crontab
from ansible_collections.jram.dumphost.plugins.module_utils.errors import CutoverError, TransitionRefusedError


def where_now(module, ledger, job, legacy):
    """(current phase, its source, why the host could not say) of the job, as cron_cutover decides it."""
    recorded = ledger_mod.current_phase(ledger, job)
    if recorded:
        return recorded, "ledger", None
    if job not in legacy:
        return "legacy", "default", None
    try:
        return legacy_crontab.host_phase(module, job, legacy[job], module.params["cron_dir"]), "host", None
    except CutoverError as exc:
        return None, "host", " ".join(str(exc).split())
    except OSError as exc:
        return None, "host", f"{exc.filename or 'the host'}: {exc.strerror or exc}"


def gate(ledger, job, current, target, now, params):
    """The move from ``current`` to ``target``: its kind, why it is refused, the gates it fails."""
    try:
        move = phases.classify(current, target)
    except TransitionRefusedError as exc:
        return "refused", str(exc), []
    if move != "forward":
        return move, None, []
    return move, None, phases.gate_problems(ledger, job, current, target, now, params["min_validated_days"],
                                            params["soak_days"])


def job_state(module, ledger, job, legacy, now):
    p = module.params
    found = phases.evidence(ledger, job)
    current, source, problem = where_now(module, ledger, job, legacy)
    found.update(recorded_phase=ledger_mod.current_phase(ledger, job), current_phase=current, phase_source=source,
                 host_problem=problem, gate={"to": None, "open": False, "problems": []})
    if current is not None and current != phases.PHASES[-1]:
        nxt = phases.PHASES[phases.PHASES.index(current) + 1]
        problems = gate(ledger, job, current, nxt, now, p)[2]
        found["gate"] = {"to": nxt, "open": not problems, "problems": problems}
    if job in p["targets"]:
        target = str(p["targets"][job])
        move, refusal, problems = gate(ledger, job, current, target, now, p) if current else (None, None, [])
        found["target"] = {"phase": target, "move": move, "refusal": refusal, "problems": problems}
    return found


def read(module):
    p = module.params
    for job, phase in p["targets"].items():
        if phase not in phases.PHASES:
            raise CutoverError(f"targets: job {job}: phase {phase!r} is not one of {', '.join(phases.PHASES)}")
    if p["min_validated_days"] < 1 or p["soak_days"] < 0:
        raise CutoverError("min_validated_days must be 1 or more and soak_days 0 or more")
    legacy = {job: legacy_crontab.check_spec(job, spec) for job, spec in p["legacy"].items()}
    with ledger_mod.locked(p["ledger_path"]):
        ledger = ledger_mod.load(p["ledger_path"])
    now = dt.datetime.now(dt.timezone.utc)
    names = sorted(set(p["jobs"]) | set(ledger["jobs"]) | set(p["targets"]))
    jobs = {job: job_state(module, ledger, job, legacy, now) for job in names}
    order = phases.PHASES.index
    moves = {job: str(phase) for job, phase in p["targets"].items()
             if not (p["forward_only"] and order(jobs[job]["phase"]) > order(phase))}
    return {
        "changed": False,
        "jobs": jobs,
        "table": phases.status_table(ledger, names, {job: str(phase) for job, phase in p["predicted"].items()}),
        "moves": moves,
        "forward_moves": [{"job": job, "phase": jobs[job]["target"]["phase"],
                           "previous_phase": jobs[job]["current_phase"]}
                          for job in sorted(p["targets"]) if jobs[job]["target"]["move"] == "forward"],
        "by_phase": {phase: sorted(job for job in names if jobs[job]["phase"] == phase) for phase in phases.PHASES},
        "ledger_path": p["ledger_path"],
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ledger_path=dict(type="path", default=ledger_mod.DEFAULT_PATH),
            jobs=dict(type="list", elements="str", default=[]),
            predicted=dict(type="dict", default={}),
            targets=dict(type="dict", default={}),
            forward_only=dict(type="bool", default=False),
            legacy=dict(type="dict", default={}),
            cron_dir=dict(type="path", default=legacy_crontab.CRON_DIR),
            min_validated_days=dict(type="int", default=2),
            soak_days=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    try:
        result = read(module)
    except CutoverError as exc:
        module.fail_json(msg=" ".join(str(exc).split()))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
