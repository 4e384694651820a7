# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one run of cron_cutover has to change: from the texts of the legacy crontab and of the
job's cron.d file, the ledger and the request, the texts they must have and the transition to
record. Pure: the module reads the host, calls :func:`plan`, and writes what differs."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field

from ansible_collections.jram.dumphost.plugins.module_utils import crontab_edit as edit
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_ledger as ledger_mod
from ansible_collections.jram.dumphost.plugins.module_utils import cutover_phases as phases
from ansible_collections.jram.dumphost.plugins.module_utils.errors import (
    InvalidOptionError,
    LegacyLineError,
    TransitionRefusedError,
)
from ansible_collections.jram.dumphost.plugins.module_utils.host_files import SYSTEM_DIRS


@dataclass(frozen=True)
class Request:
    """A validated request (see the module's options)."""

    job: str
    phase: str
    where: str  # the legacy crontab, for messages: 'crontab of user ec2-user' or a file path
    system: bool  # True for /etc/cron.d-style files (with a user field)
    match: str
    regex: bool
    script: str | None
    archive_script: bool
    specs: tuple  # the new entry's time specs in the host zone (empty for phase legacy)
    schedule: str | None
    timezone: str
    host_zone: str
    cron_user: str
    program: str
    env_lines: tuple
    min_validated_days: int = 2
    soak_days: int = 2
    force: bool = False
    reason: str | None = None
    controller_user: str | None = None
    built: bool = False  # built in production on a new host: no legacy line, no ledger history


@dataclass
class Plan:
    current: str
    recorded: str | None
    move: str
    crontab_before: str
    crontab_after: str
    cron_d_before: str | None
    cron_d_after: str | None
    ledger: dict
    transition: dict | None = None
    overridden: list = field(default_factory=list)
    script: str | None = None  # legacy script to archive (when it still exists)
    legacy_before: str = "absent"
    legacy_after: str = "absent"
    legacy_lines: list = field(default_factory=list)  # 1-based line numbers of the job's lines after
    job_before: str = ""  # the job's own lines of the legacy crontab, before and after: all a diff shows
    job_after: str = ""

    @property
    def crontab_changed(self) -> bool:
        return self.crontab_before != self.crontab_after

    @property
    def cron_d_changed(self) -> bool:
        return self.cron_d_before != self.cron_d_after


def infer_phase(state: edit.LegacyState, cron_d_text: str | None) -> str:
    """The phase the host looks like it is in, for a job the ledger has no record of: a disabled
    line is cutover, no line but a new entry is retired, an active line is legacy or (with the new
    entry, whatever it runs) parallel, so that moving on from there passes the gates."""
    if state.status == "disabled":
        return "cutover"
    if state.status == "absent" and cron_d_text is not None:
        return "retired"
    return "legacy" if cron_d_text is None else "parallel"


def _not_found(request: Request) -> LegacyLineError:
    how = "regular expression" if request.regex else "substring"
    return LegacyLineError(f"no active line in the {request.where} has a command matching the {how} "
                           f"{request.match!r}, and no line there is disabled for job {request.job}: check "
                           "legacy.match and legacy.user/legacy.file")


def locate_job(lines: list, job: str, match: str, regex: bool, system: bool, where: str) -> edit.LegacyState:
    """The job's active and disabled legacy lines; refuses a crontab holding both."""
    state = edit.locate(lines, job, edit.compile_match(match, regex), system, where, match)
    if state.status == "mixed":
        active = ", ".join(str(entry.index + 1) for entry in state.active)
        disabled = ", ".join(str(index + 1) for index in state.disabled)
        raise LegacyLineError(f"the {where} has both an active line of job {job} (line {active}) and a line "
                              f"disabled for it (line {disabled}): someone re-added it by hand; remove one of them")
    return state


def legacy_script(request: Request, lines: list, state: edit.LegacyState) -> str | None:
    """The legacy script retirement archives (None: nothing to archive)."""
    if not request.archive_script:
        return None
    commands = [entry.command for entry in state.active] + edit.disabled_commands(lines, state, request.system)
    script = request.script
    if script is None:
        if not commands:
            return None
        derived = {edit.script_of(command) for command in commands}
        script = derived.pop() if len(derived) == 1 else None
        if script is None:
            raise InvalidOptionError(f"cannot tell the legacy script of job {request.job} from its command "
                                     f"{commands[0]!r}: set legacy.script, or legacy.archive_script: false")
    if not script.startswith("/") or script.startswith(SYSTEM_DIRS) or script == request.program:
        raise InvalidOptionError(f"legacy script {script!r} is not archived: it is not an absolute path or lies in "
                                 "a system directory (the command may start with an interpreter); set "
                                 "legacy.script to the job's own script, or legacy.archive_script: false")
    others = edit.other_users_of(lines, script, state, request.system)
    if others:
        listed = "; ".join(f"line {entry.index + 1}: {entry.command}" for entry in others)
        raise LegacyLineError(f"legacy script {script} is still used by another active line of the {request.where} "
                              f"({listed}): retire that job first, or set legacy.archive_script: false")
    return script


BUILT_REASON = "built in production on a new host: no legacy line and no parallel run on this host"


def built_phase(request: Request, lines: list, state: edit.LegacyState, ledger: dict) -> str | None:
    """For a job built straight in production (``request.built``): the phase it is in now, None
    when the ledger does not know it yet. Refuses a host with legacy lines of the job, and a ledger
    whose history of the job is anything but that initialisation: such a job is migrated phase by
    phase, never built."""
    job = request.job
    if request.phase != "cutover":
        raise InvalidOptionError(f"built_in_production puts job {job} straight into production: phase must be "
                                 f"cutover, not {request.phase}")
    if state.status != "absent":
        found = ", ".join(str(i + 1) for i in [entry.index for entry in state.active] + list(state.disabled))
        raise LegacyLineError(f"the {request.where} has legacy lines of job {job} (line {found}): this host is not "
                              "new; migrate the job phase by phase (playbooks/phase2_parallel.yml, then "
                              "playbooks/phase4_cutover.yml) instead of building it in production")
    transitions = ledger.get("jobs", {}).get(job, {}).get("transitions", [])
    if any(not entry.get("built") for entry in transitions):
        raise TransitionRefusedError(f"the ledger records a history of job {job} (phase "
                                     f"{ledger_mod.current_phase(ledger, job)}): built_in_production only initialises "
                                     "a job the ledger does not know; move it with playbooks/phase4_cutover.yml or "
                                     "playbooks/rollback.yml")
    return ledger_mod.current_phase(ledger, job)


def plan(request: Request, crontab_text: str, cron_d_text: str | None, ledger: dict, now: dt.datetime) -> Plan:
    """Decide every change of this run; raises a CutoverError subclass before anything is changed."""
    job = request.job
    matches = edit.compile_match(request.match, request.regex)
    lines = edit.split_lines(crontab_text)
    state = locate_job(lines, job, request.match, request.regex, request.system, request.where)
    if request.built:
        return _plan_built(request, lines, state, cron_d_text, ledger, now)

    recorded = ledger_mod.current_phase(ledger, job)
    current = recorded or infer_phase(state, cron_d_text)
    move = phases.classify(current, request.phase)
    overridden = []
    if move == "forward":
        overridden = phases.check_gates(ledger, job, current, request.phase, now, request.min_validated_days,
                                        request.soak_days, request.force, request.reason)

    target = request.phase
    script = None
    if target in ("legacy", "parallel"):
        if state.status == "absent":
            raise _not_found(request)
        new_lines = edit.restore(lines, state)
    elif target == "cutover":
        if state.status == "absent":
            raise _not_found(request)
        new_lines = edit.disable(lines, state, job, ledger_mod.utc_stamp(now))
    else:
        script = legacy_script(request, lines, state)
        new_lines = edit.remove(lines, state)

    if target == "legacy":
        cron_d_after = None
    else:
        cron_d_after = edit.render_cron_d(job, target, list(request.specs), request.schedule or "", request.timezone,
                                          request.host_zone, request.cron_user, request.program,
                                          list(request.env_lines))

    new_ledger = copy.deepcopy(ledger)
    transition = None
    if move != "stay":
        transition = ledger_mod.record_transition(new_ledger, job, current, target, now, request.controller_user,
                                                  request.reason, overridden)
    after_text = "".join(new_lines)
    after_state = edit.locate(new_lines, job, matches, request.system, request.where, request.match)
    if after_text != crontab_text:
        check_writable(request, crontab_text, after_text)
    if cron_d_after is not None and cron_d_after != cron_d_text:
        problem = edit.system_file_problem(cron_d_after)
        if problem:
            raise InvalidOptionError(f"the new entry of job {job} would not be read by cron ({problem}): check "
                                     "schedule, cron_user, dumpjob_bin and cron_env")
    before_indexes = [entry.index for entry in state.active] + list(state.disabled)
    after_indexes = [entry.index for entry in after_state.active] + list(after_state.disabled)
    return Plan(
        current=current,
        recorded=recorded,
        move=move,
        crontab_before=crontab_text,
        crontab_after=after_text,
        cron_d_before=cron_d_text,
        cron_d_after=cron_d_after,
        ledger=new_ledger,
        transition=transition,
        overridden=overridden,
        script=script,
        legacy_before=state.status,
        legacy_after=after_state.status,
        legacy_lines=sorted(index + 1 for index in after_indexes),
        job_before=edit.job_text(lines, before_indexes),
        job_after=edit.job_text(new_lines, after_indexes),
    )


def _plan_built(request: Request, lines: list, state: edit.LegacyState, cron_d_text: str | None, ledger: dict,
                now: dt.datetime) -> Plan:
    """The plan of a job built in production: its production entry, and once the ledger's one
    transition from nothing to cutover, marked ``built`` (no legacy or parallel history is made up)."""
    recorded = built_phase(request, lines, state, ledger)
    cron_d_after = edit.render_cron_d(request.job, "cutover", list(request.specs), request.schedule or "",
                                      request.timezone, request.host_zone, request.cron_user, request.program,
                                      list(request.env_lines))
    problem = edit.system_file_problem(cron_d_after) if cron_d_after != cron_d_text else None
    if problem:
        raise InvalidOptionError(f"the new entry of job {request.job} would not be read by cron ({problem}): check "
                                 "schedule, cron_user, dumpjob_bin and cron_env")
    new_ledger = copy.deepcopy(ledger)
    transition = None
    if recorded is None:
        transition = ledger_mod.record_transition(new_ledger, request.job, None, "cutover", now,
                                                  request.controller_user, request.reason or BUILT_REASON)
        transition["built"] = True
    text = "".join(lines)
    return Plan(current=recorded or "cutover", recorded=recorded, move="built" if recorded is None else "stay",
                crontab_before=text, crontab_after=text, cron_d_before=cron_d_text, cron_d_after=cron_d_after,
                ledger=new_ledger, transition=transition)


def check_writable(request: Request, before: str, after: str) -> None:
    """Refuse, before anything is written, a move whose legacy crontab the system's crontab
    command would refuse to install, or could not install back if a later step failed. A system
    crontab file is written directly, byte for byte, and needs no such check."""
    if request.system:
        return
    for text, which in ((before, "as it is"), (after, "as this move would leave it")):
        problem = edit.installable_problem(text)
        if problem:
            raise LegacyLineError(f"the {request.where} cannot be changed for job {request.job} ({which}, {problem}); "
                                  "nothing was changed")
