
# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cron_cutover
short_description: Move one legacy cron job to the dumpjob program, phase by phase, with gates and rollback
version_added: 0.1.0
description:
  - Sets the phase of one cron job on the dump host, from the legacy script to the C(dumpjob)
    program, in four phases.
  - C(legacy) is the legacy cron line only. C(parallel) adds C(/etc/cron.d/dumpjob-<job>) running
    C(dumpjob run <job> --parallel) (the test prefix) next to the untouched legacy line.
    C(cutover) comments the legacy line out and the new entry runs C(dumpjob run <job>) (the
    production prefix). C(retired) removes the disabled legacy line and moves the legacy script
    into a root-only archive directory.
  - "The legacy line is found by its command (O(legacy.match)). It is disabled by prefixing it with
    C(#jram.dumphost[<job>] disabled <UTC time>: ), and a rollback removes exactly that prefix, so
    the crontab is restored byte for byte (comments, spacing, C(MAILTO) and other lines are never
    touched)."
  - "Forward moves go one phase at a time and are gated: C(parallel) to C(cutover) needs
    O(min_validated_days) days with an C(identical) or C(equivalent) compare verdict in the ledger,
    the most recent verdict neither C(different) nor C(incomplete), and no other job that entered
    C(cutover) less than O(soak_days) ago; C(cutover) to C(retired) needs successful production runs on
    O(min_validated_days) days. Rollbacks (C(cutover) to C(parallel) or C(legacy), C(parallel) to
    C(legacy)) are never gated. C(retired) is final."
  - "Only fresh evidence counts: verdicts recorded since the job last entered C(parallel), production
    runs recorded since it last entered C(cutover). After a rollback and a new move forward the count
    starts again. A refusal names the gate, where its count starts and the latest verdict or run."
  - "A move is made whole or not at all: every file it writes (the legacy crontab, the new entry, the
    ledger) is rendered and checked as its reader reads it before the first write (a user crontab the
    C(crontab) command would refuse to install, or could not install back, is refused with the reason),
    and a failure after a write puts back every file written, byte for byte, the ledger last and unchanged."
  - Every phase change is appended to the ledger O(ledger_path) (UTC time, from, to, forced gates,
    reason, controller user), written atomically, root 0600.
  - The schedule is given in the job's time zone and written in the host's zone (Debian's cron
    ignores C(CRON_TZ)); schedules that cannot be converted exactly all year round are refused.
    See C(docs/cutover.md) in the collection.
author:
  - JRAM infrastructure team (@jram)
options:
  job:
    description:
      - Name of the job, as in C(/etc/dumpjob/jobs.yml). Letters, digits, C(_) and C(-).
      - The new entry is C(<cron_dir>/dumpjob-<job>); the name is also the marker of the disabled legacy line.
    type: str
    required: true
  phase:
    description:
      - The phase the job must be in.
    type: str
    required: true
    choices: [legacy, parallel, cutover, retired]
  legacy:
    description:
      - Where the legacy cron line is and how to recognise it.
    type: dict
    required: true
    suboptions:
      user:
        description:
          - The user whose crontab holds the legacy line (read with C(crontab -l -u), written with C(crontab -u)).
          - Exactly one of O(legacy.user) and O(legacy.file) is required.
        type: str
      file:
        description:
          - A system crontab file (with a user field) holding the legacy line, such as
            C(/etc/cron.d/legacy-dumps). A relative name is taken under C(/etc/cron.d).
        type: path
      match:
        description:
          - A part of the legacy job's command, typically its script path. Every active job line
            whose command contains it belongs to the job (the same command scheduled twice is one
            job); matching lines with different commands are refused as ambiguous.
        type: str
        required: true
      regex:
        description:
          - Treat O(legacy.match) as a Python regular expression searched in the command.
        type: bool
        default: false
      script:
        description:
          - The legacy script to archive in C(retired). By default the first word of the command,
            when it is an absolute path outside system directories.
        type: path
      archive_script:
        description:
          - Whether C(retired) moves the legacy script to O(archive_dir).
        type: bool
        default: true
  schedule:
    description:
      - The new entry's schedule in O(timezone) - five cron fields or an C(@) shorthand such as C(@daily).
      - Required for every phase but C(legacy).
      - Converted to the host's zone; refused when no cron line can fire at the same instants all year
        (a zone pair whose offset changes with daylight saving time, a day of month or a month that would
        cross a month end, a step over days).
    type: str
  timezone:
    description:
      - The time zone O(schedule) is written in (a tz database name).
    type: str
    default: Asia/Tokyo
  host_timezone:
    description:
      - The zone the host's cron fires in. By default read from C(/etc/localtime), the file
        C(timedatectl set-timezone) manages. Set it only when that file does not say it.
    type: str
  min_validated_days:
    description:
      - Days with an C(identical) or C(equivalent) verdict needed before C(cutover), and days with a
        successful production run needed before C(retired).
    type: int
    default: 2
  soak_days:
    description:
      - A job may not enter C(cutover) while another job entered it less than this many days ago (and is
        still in C(cutover) or C(retired)). C(0) disables the check.
    type: int
    default: 2
  force:
    description:
      - Override the gates of a forward move. Requires O(reason). The ledger records which gates were
        overridden. Never allows skipping a phase or leaving C(retired).
    type: bool
    default: false
  reason:
    description:
      - Why the phase changes; recorded in the ledger. Required with O(force=true).
    type: str
  built_in_production:
    description:
      - Initialise the job directly in production on a new host (C(playbooks/site.yml), rebuilding a
        lost host). O(phase) must be C(cutover). The job's production entry is written and the ledger
        records one transition from nothing (C(from) null) to C(cutover), marked C(built), with O(reason)
        or a default saying so; no legacy or parallel history is made up, and no gate applies.
      - Refused when the legacy crontab has a line of the job (active or disabled) or the ledger holds
        any other history of it; such a job is migrated phase by phase. A O(legacy.user) that does not
        exist on the new host counts as an empty crontab.
      - A second run leaves a job built so in C(cutover) and converges its entry.
    type: bool
    default: false
  controller_user:
    description:
      - Who runs the change, recorded in the ledger.
      - Defaults to the remote user the module runs for (C(SUDO_USER), else C(USER) or C(LOGNAME) in the
        module's environment). Playbooks should pass the person at the controller, for example the
        controller's E(USER) read with the P(ansible.builtin.env#lookup) lookup (see EXAMPLES).
    type: str
  dumpjob_bin:
    description:
      - The dumpjob program the new entry runs.
    type: path
    default: /usr/local/bin/dumpjob
  cron_user:
    description:
      - The user the new entry runs as.
    type: str
    default: dumpjob
  cron_env:
    description:
      - Environment lines for the new entry's file, such as C(MAILTO) or, in the sandbox,
        C(AWS_EC2_METADATA_SERVICE_ENDPOINT). C(SHELL=/bin/sh) and a standard C(PATH) are set unless
        given here. Never secrets (the file is world-readable); static AWS keys and C(CRON_TZ) are refused.
    type: dict
    default: {}
  cron_dir:
    description:
      - The directory of system crontab files the new entry goes into.
    type: path
    default: /etc/cron.d
  ledger_path:
    description:
      - The cutover ledger.
    type: path
    default: /var/lib/dumpjob/cutover.json
  archive_dir:
    description:
      - Where C(retired) moves legacy scripts (C(<archive_dir>/<job>/<script name>), directory 0700, file 0600 root).
    type: path
    default: /var/lib/dumpjob/legacy-archive
notes:
  - Needs root (C(become=true)) to write crontabs of other users, C(/etc/cron.d) and the ledger.
  - Check mode changes nothing and reports the same C(changed) and diff as a real run; the marker of a
    line disabled in check mode carries the time of the check run.
  - The diff shows only the job's own lines of the legacy crontab, and the new entry's file; the ledger's
    change is returned in RV(transition). Password-shaped tokens (C(-pVALUE), C(--password=VALUE),
    C(MYSQL_PWD=VALUE), C(IDENTIFIED BY 'VALUE'), AWS keys) are masked as C(****) in diffs, errors and warnings.
  - "For tests only: with E(JRAM_DUMPHOST_CUTOVER_FAIL_AFTER_WRITES=N) in the module's environment a move
    stops with an error right after its Nth write and is put back, to prove that it is."
  - Production runs, needed for C(retired), are recorded in the ledger with C(record_run) of the
    collection's C(cutover_ledger) module utility; compare verdicts with C(record_verdict) (the
    M(jram.dumphost.dump_compare) module does so).
seealso:
  - module: ansible.builtin.cron
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.diff
"""

EXAMPLES = r"""
- name: On a new host (a rebuild), put the main dump straight into production
  jram.dumphost.cron_cutover:
    job: datatransit
    phase: cutover
    built_in_production: true
    legacy:
      user: ec2-user
      match: /home/ec2-user/scripts/ggh_datatransit.sh
    schedule: "30 5 * * *"
    timezone: Asia/Tokyo

- name: Run the main dump in parallel to the test prefix, next to the legacy job
  jram.dumphost.cron_cutover:
    job: datatransit
    phase: parallel
    legacy:
      user: ec2-user
      match: /home/ec2-user/scripts/ggh_datatransit.sh
    schedule: "30 5 * * *"
    timezone: Asia/Tokyo
    controller_user: "{{ lookup('ansible.builtin.env', 'USER') }}"

- name: Cut the main dump over to production once it was validated (gated)
  jram.dumphost.cron_cutover:
    job: datatransit
    phase: cutover
    legacy:
      user: ec2-user
      match: ggh_datatransit.sh
    schedule: "30 5 * * *"

- name: Cut over before the second validated day, on purpose
  jram.dumphost.cron_cutover:
    job: contract_status
    phase: cutover
    legacy:
      user: ec2-user
      match: ggh_contract_status.sh
    schedule: "0 6 * * *"
    force: true
    reason: "CS team needs the new columns today; compares of 11-24 identical"

- name: Roll the main dump back to the legacy script, byte for byte
  jram.dumphost.cron_cutover:
    job: datatransit
    phase: legacy
    legacy:
      user: ec2-user
      match: ggh_datatransit.sh

- name: Retire a job whose legacy line lives in a system crontab file
  jram.dumphost.cron_cutover:
    job: schema_snapshot
    phase: retired
    legacy:
      file: /etc/cron.d/legacy-dumps
      match: 'ggh_schema_snapshot\.sh\b'
      regex: true
    schedule: "0 4 * * sun"
"""

RETURN = r"""
job:
  description: The job name.
  returned: always
  type: str
  sample: datatransit
phase:
  description: The phase the job is in after the run (in check mode, would be in).
  returned: always
  type: str
  sample: parallel
previous_phase:
  description: The phase before the run, from the ledger, or inferred from the host when the ledger has no record.
  returned: always
  type: str
  sample: legacy
move:
  description: C(stay), C(forward), C(rollback), or C(built) (initialised in production, O(built_in_production)).
  returned: always
  type: str
  sample: forward
transition:
  description: The ledger entry appended for this run, or null when the phase did not change.
  returned: always
  type: dict
  sample:
    time: "2026-11-25T23:26:04Z"
    job: datatransit
    from: legacy
    to: parallel
    forced: false
    overridden: []
    reason: null
    controller_user: alice
cron_file:
  description: The new entry's file (absent in phase C(legacy)).
  returned: always
  type: str
  sample: /etc/cron.d/dumpjob-datatransit
host_schedule:
  description: The time specs of the new entry in the host's zone, one per cron line (empty in C(legacy)).
  returned: always
  type: list
  elements: str
  sample: ["30 20 * * *"]
host_timezone:
  description: The zone the host's cron fires in.
  returned: always
  type: str
  sample: Etc/UTC
legacy_state:
  description: The legacy line after the run, C(active), C(disabled) or C(absent).
  returned: always
  type: str
  sample: disabled
legacy_lines:
  description: The 1-based numbers of the job's legacy lines (active or disabled) in the crontab after the run.
  returned: always
  type: list
  elements: int
  sample: [7]
archived:
  description:
    - The legacy script moved to the archive by this run (null when none).
    - In check mode only RV(archived.source) and RV(archived.archive), the move that would happen.
  returned: always
  type: dict
  contains:
    source:
      description: Where the legacy script was.
      type: str
    archive:
      description: Where it is kept now (root-only).
      type: str
    sha256:
      description: The script's SHA-256, the same before and after the move.
      type: str
    mode:
      description: The script's mode, kept.
      type: str
    uid:
      description: The script's owner, kept.
      type: int
    gid:
      description: The script's group, kept.
      type: int
  sample:
    source: /home/ec2-user/scripts/ggh_datatransit.sh
    archive: /var/lib/dumpjob/legacy-archive/datatransit/ggh_datatransit.sh
    sha256: 9f2c5e0d3b1c4a7e8f6a0b2d4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e
    mode: "0755"
    uid: 1000
    gid: 1000
ledger_path:
  description: The ledger file.
  returned: always
  type: str
  sample: /var/lib/dumpjob/cutover.json
"""

import contextlib
import dataclasses
import datetime as dt
import json
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import (
    cron_schedule,
    host_files,
    legacy_crontab,
    output_mask,
)
from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit as edit
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils.cutover_plan import Request, plan
from ansible_collections.jram.dumphost.plugins.module_utils.errors import (
    CutoverError,
    HostError,
    InvalidOptionError,
)


def controller_user_default():
    for name in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    return pwd.getpwuid(os.getuid()).pw_name


def build_request(module, now):
    """Validate every option and convert the schedule; raises InvalidOptionError before any read."""
    p = module.params
    job = edit.validate_job_name(p["job"])
    legacy = p["legacy"]
    if bool(legacy.get("user")) == bool(legacy.get("file")):
        raise InvalidOptionError("legacy needs exactly one of user (a user's crontab) or file (a file under "
                                 "/etc/cron.d)")
    if p["force"] and not (p["reason"] or "").strip():
        raise InvalidOptionError("force: true needs a reason: say why the gate is overridden (it is recorded)")
    if p["min_validated_days"] < 1:
        raise InvalidOptionError(f"min_validated_days is {p['min_validated_days']}: it must be 1 or more")
    if p["soak_days"] < 0:
        raise InvalidOptionError(f"soak_days is {p['soak_days']}: it must be 0 or more")
    edit.compile_match(legacy["match"], legacy["regex"])
    cron_user = edit.validate_cron_user(p["cron_user"])
    program = edit.validate_program(p["dumpjob_bin"])
    env_lines = edit.validate_env(p["cron_env"])
    job_zone = host_files.zone(p["timezone"])
    if p["host_timezone"]:
        host_zone, host_zone_name = host_files.zone(p["host_timezone"]), p["host_timezone"]
    else:
        host_zone, host_zone_name = host_files.host_zone()
    specs = ()
    schedule_text = None
    if p["schedule"] is not None:
        schedule = cron_schedule.parse_schedule(p["schedule"])
        schedule_text = schedule.text
        specs = tuple(cron_schedule.convert(schedule, job_zone, p["timezone"], host_zone, host_zone_name, now))
    if p["phase"] == "legacy":
        specs = ()
    script = legacy.get("script")
    if script is not None and not script.startswith("/"):
        raise InvalidOptionError(f"legacy.script {script!r} must be an absolute path")
    return Request(
        job=job, phase=p["phase"], where="", system=bool(legacy.get("file")), match=legacy["match"],
        regex=legacy["regex"], script=script, archive_script=legacy["archive_script"], specs=specs,
        schedule=schedule_text, timezone=p["timezone"], host_zone=host_zone_name, cron_user=cron_user,
        program=program, env_lines=tuple(env_lines), min_validated_days=p["min_validated_days"],
        soak_days=p["soak_days"], force=p["force"], reason=p["reason"],
        controller_user=p["controller_user"] or controller_user_default(), built=p["built_in_production"],
    )


def check_runtime(module, request):
    """The new entry's user and program must exist for cron to run it; in check mode a task before
    may be about to create them, so this only warns there."""
    if request.phase == "legacy":
        return
    problems = []
    try:
        pwd.getpwnam(request.cron_user)
    except KeyError:
        problems.append(f"user {request.cron_user} (cron_user) does not exist on the host: create it first "
                        "(a system user without login)")
    if not os.access(request.program, os.X_OK):
        problems.append(f"{request.program} (dumpjob_bin) is not an executable on the host: install the dump "
                        "program first")
    for problem in problems:
        if module.check_mode:
            module.warn(problem)
        else:
            raise HostError(problem)


def file_diff(before, after, header):
    return {
        "before": before or "",
        "after": after or "",
        "before_header": header if before is not None else "/dev/null",
        "after_header": header if after is not None else "/dev/null",
    }


# Where the crontab command keeps users' crontabs (Debian, then cronie on Amazon Linux / RHEL).
CRONTAB_SPOOLS = ("/var/spool/cron/crontabs", "/var/spool/cron")


class NewHostCrontab:
    """The legacy user's crontab on a new host (built_in_production), read only: empty when the
    user does not exist, read from the spool when the hardened host does not let the user use
    crontab (cron.allow), as the crontab command would have listed it."""

    system = False

    def __init__(self, module, user, exists):
        self.module, self.user, self.exists = module, user, exists
        self.where = f"crontab of user {user}" + ("" if exists else " (no such user on this host)")
        self.header = f'crontab for user "{user}"'

    def read(self):
        if not self.exists:
            return ""
        try:
            return legacy_crontab.UserCrontab(self.module, self.user).read()
        except HostError:
            for spool in CRONTAB_SPOOLS:
                text = host_files.read_text(os.path.join(spool, self.user))
                if text is not None:
                    return text
            return ""


def open_legacy(module, params):
    user = params["legacy"].get("user")
    if params["built_in_production"] and user:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return NewHostCrontab(module, user, exists=False)
        return NewHostCrontab(module, user, exists=True)
    return legacy_crontab.open_legacy(module, params["legacy"])


def run(module):
    p = module.params
    now = dt.datetime.now(dt.timezone.utc)
    request = build_request(module, now)
    legacy = open_legacy(module, p)
    cron_file = os.path.join(p["cron_dir"], f"dumpjob-{request.job}")
    if getattr(legacy, "path", None) == cron_file:
        raise InvalidOptionError(f"legacy.file is {cron_file}, the file this module writes for the new entry: "
                                 "point legacy.file at the legacy crontab file")
    request = dataclasses.replace(request, where=legacy.where)
    check_runtime(module, request)
    fail_after_writes()  # a malformed test hook is refused before anything is read

    ledger_path = p["ledger_path"]
    with ledger_mod.locked(ledger_path):
        ledger = ledger_mod.load(ledger_path)
        crontab_text = legacy.read()
        cron_d_text = host_files.read_text(cron_file)
        result_plan = plan(request, crontab_text, cron_d_text, ledger, now)
        check_ledger(result_plan.ledger, ledger_path)

        script = result_plan.script if result_plan.script and os.path.exists(result_plan.script) else None
        archived = None
        if script:
            archived = {"source": script, "archive": host_files.archive_path(p["archive_dir"], request.job, script)}
        elif result_plan.script and result_plan.move != "stay":
            dest = host_files.archive_path(p["archive_dir"], request.job, result_plan.script)
            if not os.path.exists(dest):
                module.warn(f"legacy script {result_plan.script} does not exist: nothing to archive")
        changed = bool(result_plan.crontab_changed or result_plan.cron_d_changed or result_plan.transition or archived)

        if changed and not module.check_mode:
            archived = apply(module, request, result_plan, legacy, cron_file, script, ledger, ledger_path) or archived

    result = {
        "changed": changed,
        "job": request.job,
        "phase": request.phase,
        "previous_phase": result_plan.current,
        "move": result_plan.move,
        "transition": result_plan.transition,
        "cron_file": cron_file,
        "host_schedule": list(request.specs),
        "host_timezone": request.host_zone,
        "legacy_state": result_plan.legacy_after,
        "legacy_lines": result_plan.legacy_lines,
        "archived": archived,
        "ledger_path": ledger_path,
    }
    if module._diff and changed:
        # Only the job's own lines of the legacy crontab, masked: the rest of it is none of this
        # module's business and may hold other jobs' passwords.
        diffs = []
        if result_plan.crontab_changed:
            header = f"{legacy.header}, lines of job {request.job}"
            diffs.append(file_diff(result_plan.job_before, result_plan.job_after, header))
        if result_plan.cron_d_changed:
            diffs.append(file_diff(result_plan.cron_d_before, result_plan.cron_d_after, cron_file))
        if diffs:
            result["diff"] = output_mask.mask_value(diffs)
    return result


def check_ledger(ledger, ledger_path):
    """The ledger this run would write, read back as the next run will read it."""
    try:
        ledger_mod.validate(json.loads(ledger_mod.dumps(ledger)), ledger_path)
    except (TypeError, ValueError) as exc:
        raise HostError(f"the ledger this move would write cannot be read back ({exc}); nothing was changed") \
            from None


FAIL_AFTER_WRITES = "JRAM_DUMPHOST_CUTOVER_FAIL_AFTER_WRITES"


def fail_after_writes():
    """The test hook: with FAIL_AFTER_WRITES=N in the module's environment, a move stops with an
    error right after its Nth write, so that tests can show it is put back whole. For tests only."""
    value = os.environ.get(FAIL_AFTER_WRITES, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidOptionError(f"{FAIL_AFTER_WRITES}={value!r} is not a number of writes (1 or more): unset it "
                                 "(it is a test hook)")
    return int(value)


class Move:
    """The writes of one move, each with what puts it back, in order."""

    def __init__(self, fail_after):
        self.fail_after = fail_after
        self.written = []  # (what, put_back)

    def wrote(self, what, put_back):
        self.written.append((what, put_back))
        if self.fail_after == len(self.written):
            raise HostError(f"stopped after write {self.fail_after} ({what}) by the test hook "
                            f"{FAIL_AFTER_WRITES}={self.fail_after}")

    def put_back(self):
        """Undo every write, latest first; the ones that could not be undone, with why."""
        failed = []
        for what, put_back in reversed(self.written):
            try:
                put_back()
            except (CutoverError, OSError) as exc:
                failed.append(f"{what} ({exc})")
        return failed


def _saved(path):
    """(text, mode, uid, gid) of a file as it is now, or None when absent."""
    text = host_files.read_text(path)
    if text is None:
        return None
    info = os.stat(path)
    return text, info.st_mode & 0o7777, info.st_uid, info.st_gid


def _restore(path, saved):
    if saved is None:
        host_files.remove_file(path)
    else:
        text, mode, uid, gid = saved
        host_files.write_file(path, text, mode, uid, gid)


def _remove_dirs(created):
    for directory in reversed(created):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise HostError(f"cannot remove {directory}: {exc.strerror}") from None


def apply(module, request, result_plan, legacy, cron_file, script, ledger, ledger_path):
    """Write what the plan changes, whole or not at all.

    Everything written was rendered and checked before (the plan; the ledger read back). What
    turns something on is written before what turns something off: going forward the new entry
    first, going back the legacy line first, so that even a move killed in between leaves the
    job running twice rather than not at all. Any failure after a write puts back every file
    written so far, byte for byte with its mode and owner, and the ledger is written last, so it
    is unchanged; the error says what failed and that the host is as before."""
    move = Move(fail_after_writes())
    archived = []

    def write_cron_d():
        if not result_plan.cron_d_changed:
            return
        saved = _saved(cron_file)
        if result_plan.cron_d_after is None:
            host_files.remove_file(cron_file)
        else:
            uid, gid = (0, 0) if os.geteuid() == 0 else (None, None)
            host_files.write_file(cron_file, result_plan.cron_d_after, 0o644, uid, gid)
            if module.selinux_enabled():
                module.set_default_selinux_context(cron_file, False)
        move.wrote(cron_file, lambda: _restore(cron_file, saved))

    def write_crontab():
        if not result_plan.crontab_changed:
            return
        try:
            legacy.write(result_plan.crontab_after)
        except HostError as exc:
            if getattr(exc, "installed", False):
                move.written.append((legacy.where, lambda: legacy.write(result_plan.crontab_before)))
            raise
        move.wrote(legacy.where, lambda: legacy.write(result_plan.crontab_before))

    def archive():
        if not script:
            return
        archive_dir = module.params["archive_dir"]
        dest = host_files.archive_path(archive_dir, request.job, script)
        created = [d for d in (archive_dir, os.path.dirname(dest)) if not os.path.isdir(d)]
        existed = os.path.exists(dest)

        def put_back():
            with open(dest, "rb") as handle:
                data = handle.read()
            host_files.atomic_write(script, data, int(record["mode"], 8), record["uid"], record["gid"])
            if not existed:
                os.unlink(dest)
            _remove_dirs(created)

        try:
            record = host_files.archive_script(script, archive_dir, request.job)
        except HostError:
            if not existed and os.path.exists(dest) and os.path.exists(script):
                os.unlink(dest)  # copied, but the original is still in place
            # Not empty: something of the archive is left, the error below says what failed.
            with contextlib.suppress(HostError):
                _remove_dirs(created)
            raise
        archived.append(record)
        ledger_mod.record_archive(result_plan.ledger, request.job, record)
        move.wrote(f"{dest} (archive of {script})", put_back)

    def write_ledger():
        if not (result_plan.transition or archived):
            return
        directory = os.path.dirname(ledger_path) or "."
        created = [] if os.path.isdir(directory) else [directory]
        saved = _saved(ledger_path)
        ledger_mod.write(ledger_path, result_plan.ledger)

        def put_back():
            _restore(ledger_path, saved)
            _remove_dirs(created)
        move.wrote(ledger_path, put_back)

    if request.phase in ("cutover", "retired"):
        steps = [write_cron_d, archive, write_crontab, write_ledger]
    else:
        steps = [write_crontab, write_cron_d, write_ledger]
    try:
        for step in steps:
            step()
    except (CutoverError, OSError) as exc:
        cause = exc if isinstance(exc, CutoverError) else f"{exc.filename or 'the host'}: {exc.strerror or exc}"
        if not move.written:
            raise
        what = f"{result_plan.current} -> {request.phase} of job {request.job}" if result_plan.transition \
            else f"the change of job {request.job}'s files"
        done = ", ".join(written[0] for written in move.written)
        failed = move.put_back()
        if failed:
            error = HostError(f"{what} failed: {cause}; putting back what it had written failed for "
                              f"{'; '.join(failed)}: restore those by hand (the ledger was not changed unless listed)")
            error.changed = True
            raise error from None
        raise HostError(f"{what} not made: {cause}; what it had written was put back ({done}), the host and the "
                        "ledger are as before") from None
    return archived[0] if archived else None


def one_line(message):
    """An error as the task shows it: one line, password-shaped tokens masked."""
    return " ".join(output_mask.mask_text(str(message)).split())


def main():
    argument_spec = dict(
        job=dict(type="str", required=True),
        phase=dict(type="str", required=True, choices=["legacy", "parallel", "cutover", "retired"]),
        legacy=dict(type="dict", required=True, options=dict(
            user=dict(type="str"),
            file=dict(type="path"),
            match=dict(type="str", required=True),
            regex=dict(type="bool", default=False),
            script=dict(type="path"),
            archive_script=dict(type="bool", default=True),
        ), mutually_exclusive=[("user", "file")], required_one_of=[("user", "file")]),
        schedule=dict(type="str"),
        timezone=dict(type="str", default="Asia/Tokyo"),
        host_timezone=dict(type="str"),
        min_validated_days=dict(type="int", default=2),
        soak_days=dict(type="int", default=2),
        force=dict(type="bool", default=False),
        reason=dict(type="str"),
        built_in_production=dict(type="bool", default=False),
        controller_user=dict(type="str"),
        dumpjob_bin=dict(type="path", default="/usr/local/bin/dumpjob"),
        cron_user=dict(type="str", default="dumpjob"),
        cron_env=dict(type="dict", default={}),
        cron_dir=dict(type="path", default="/etc/cron.d"),
        ledger_path=dict(type="path", default=ledger_mod.DEFAULT_PATH),
        archive_dir=dict(type="path", default="/var/lib/dumpjob/legacy-archive"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("phase", phase, ("schedule",)) for phase in ("parallel", "cutover", "retired")],
    )
    try:
        result = run(module)
    except CutoverError as exc:
        module.fail_json(msg=one_line(exc), changed=getattr(exc, "changed", False))
    except OSError as exc:
        module.fail_json(msg=one_line(f"{exc.filename or 'the host'}: {exc.strerror or exc}; run the task with become: "
                                      "true if this is a permission problem"))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
