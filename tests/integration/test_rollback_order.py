"""Rollbacks that respect what later phases built, on a dump host container of this module's own
(phase3_host.Phase3: phase 1 and phase 2 done, an EC2 instance record and IMDS emulator of its
own) brought to the end state of the journey: the instance role attached, basis and
contract_status in production (cutover, forced past the gates: the evidence is not this module's
subject), the static key retired. Then, in the order an operator meets them:

- playbooks/rollback.yml -e phase=3 and -e phase=1 are refused with one line each, under --check
  too, before any change (moto's association, options, record, role, profile, secret, alarms;
  the host's crontab, cron.d entries and ledgers are compared before and after), and the next
  production dump still succeeds; a forced run records its reason first, and even forced,
  phase 1 stays refused while the instance uses the profile;
- after the documented order (keys, then the jobs back, then phase 3, then phase 1) the same
  rollbacks go through;
- a job rolled back to legacy stays there when phase 2 runs again, which says so.

Slow (the whole journey on one host), so marked identity: CI runs it with the identity scenario
(make test-identity), outside make test."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from botocore.exceptions import ClientError
from phase3_host import ATTACH, ROLLBACK, Phase3
from test_static_keys import CREDENTIALS, RETIRE, Keys

pytestmark = pytest.mark.identity

PHASE2 = "phase2_parallel.yml"
HOST = "jram-dumphost"  # the inventory's name of the dump host (SANDBOX_HOST points it at this module's own)
PHASE4 = "phase4_cutover.yml"
CUTOVER_LEDGER = "/var/lib/dumpjob/cutover.json"
KEYS_LEDGER = "/var/lib/dumpjob/static_keys.json"
FORCED_LOG = "/var/lib/dumpjob/forced_rollbacks.log"


class World:
    """The module's Phase3 environment and static key, and one comparable snapshot of everything a
    rollback may change."""

    def __init__(self, p3: Phase3, keys: Keys):
        self.p3, self.keys, self.host = p3, keys, p3.host
        self.cw = p3.sandbox.client("cloudwatch")

    def file(self, path: str) -> str | None:
        proc = self.host.exec("cat", path, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def phases(self) -> dict:
        return {job: rec["phase"] for job, rec in json.loads(self.file(CUTOVER_LEDGER))["jobs"].items()}

    def aws(self) -> dict:
        p3 = self.p3
        role = secret = None
        with contextlib.suppress(ClientError):
            role = p3.iam.get_role(RoleName=p3.name)["Role"]["Arn"]
        with contextlib.suppress(ClientError):
            secret = p3.sm.describe_secret(SecretId=p3.secret).get("DeletedDate") is None
        alarms = sorted(a["AlarmName"] for a in self.cw.describe_alarms(AlarmNamePrefix=f"{p3.name}-")["MetricAlarms"])
        return {"association": p3.association(), "options": p3.options(), "record": p3.record(),
                "role": role, "secret": secret, "alarms": alarms, "key": self.keys.key_status()}

    def host_state(self) -> dict:
        cron_d = self.host.exec("sh", "-c", "for f in /etc/cron.d/dumpjob-*; do echo \"== $f\"; cat \"$f\"; done",
                                check=False).stdout
        return {"crontab": self.host.exec("crontab", "-l", "-u", "ec2-user").stdout, "cron_d": cron_d,
                "ledger": self.file(CUTOVER_LEDGER), "keys": self.file(KEYS_LEDGER), "forced": self.file(FORCED_LOG),
                "credentials": self.keys.stat(CREDENTIALS)}

    def snapshot(self) -> tuple:
        return self.aws(), self.host_state()

    def production_dump(self, job: str = "basis") -> None:
        proc = self.host.exec("runuser", "-u", "dumpjob", "--", "/usr/bin/env", "-i", "HOME=/var/lib/dumpjob",
                              "PATH=/usr/bin:/bin", "/usr/local/bin/dumpjob", "run", job, check=False)
        assert proc.returncode == 0, (job, proc.stdout[-2000:], proc.stderr[-2000:])

    def play(self, playbook: str, *args: str, ok: bool = True, **extra):
        run = self.p3.play(playbook, *args, extra=extra or None)
        if ok:
            assert run.rc == 0, f"{playbook} {args} failed:\n{_why(run)}"
        return run


def _why(run) -> str:
    at = [m.start() for m in re.finditer(r"^(fatal|failed): ", run.out, re.M)]
    return run.out[max(at[-1] - 2000, 0):at[-1] + 4000] if at else run.out[-6000:]


def _refusal(run) -> str:
    """The one line a refused run failed with (the failed assert's message)."""
    assert run.rc != 0, run.out[-4000:]
    assert not run.changed_tasks, run.changed_tasks
    found = re.findall(r"^\[ERROR\]: Task failed: Action failed: (.*)$", run.out, re.M)
    assert len(found) == 1, run.out[-4000:]
    return found[0]


@pytest.fixture(scope="module")
def world(phase3_keys):
    return World(*phase3_keys)


# --- in the order of the operator's journey -------------------------------------------------

def test_the_end_state_role_attached_jobs_in_production_keys_retired(world):
    world.play(ATTACH)
    for job in ("basis", "contract_status"):
        world.play(PHASE4, "-e", f"job={job}", cutover_force=True,
                   cutover_reason="the gates' evidence is another test's subject")
    world.play(RETIRE)
    assert world.phases() == {"basis": "cutover", "contract_status": "cutover", "schema_weekly": "parallel"}
    assert json.loads(world.file(KEYS_LEDGER))["users"]["ec2-user"]["state"] == "retired"
    world.production_dump()


def test_phase_3_and_phase_1_are_refused_with_one_line_before_any_change(world):
    before = world.snapshot()
    lines = {}
    for phase in ("3", "1"):
        for check in ((), ("--check", "--diff")):
            run = world.play(ROLLBACK, "-e", f"phase={phase}", *check, ok=False)
            lines[phase, bool(check)] = _refusal(run)
            assert world.snapshot() == before, f"phase={phase} {check} changed something"
    assert lines["3", True] == lines["3", False] and lines["1", True] == lines["1", False]
    key = world.keys.key_id
    assert lines["3", False] == (
        f"{HOST}: rollback of phase 3 refused: the static key(s) of ec2-user ({key}) are retired; job(s) "
        "basis, contract_status are in cutover, and without the instance role they have no AWS credentials. Roll "
        "back in this order: playbooks/rollback.yml -e phase=keys, then -e job=NAME -e to=parallel (or legacy) for "
        "basis, contract_status, then -e phase=3; or pass -e force_reason='why' to detach anyway (recorded in "
        f"{FORCED_LOG}). Nothing was changed.")
    assert lines["1", False] == (
        f"{HOST}: rollback of phase 1 refused: job(s) basis (cutover), contract_status (cutover), "
        "schema_weekly (parallel) are past legacy and run on the role and the secret phase 1 created (its deadline "
        "alarms watch basis, contract_status). Roll back in this order: playbooks/rollback.yml -e phase=keys, then "
        "-e job=NAME -e to=legacy for basis, contract_status, schema_weekly, then -e phase=3, then -e phase=1; or "
        f"pass -e force_reason='why' to delete anyway (recorded in {FORCED_LOG}; the deadline alarms of jobs in "
        "cutover or retired are kept). Nothing was changed.")
    # production still runs on the instance role
    world.production_dump()


def test_a_forced_rollback_is_recorded_first_and_phase_1_still_needs_the_profile_detached(world):
    before_aws, before_host = world.snapshot()
    check = world.play(ROLLBACK, "-e", "phase=3", "--check", force_reason="rehearsal")
    assert re.search(r"forced \(rehearsal\), recorded in /var/lib/dumpjob/forced_rollbacks\.log: rollback of phase 3 "
                     r"refused: the static key\(s\) of ec2-user", check.one_line()), check.out[-4000:]
    assert world.snapshot() == (before_aws, before_host), "a forced --check changed something"

    run = world.play(ROLLBACK, "-e", "phase=1", ok=False, force_reason="decommission rehearsal")
    assert re.search(rf"{world.p3.instance_id}\S* still use instance profile {world.p3.name}; roll back phase 3",
                     run.one_line()), run.out[-4000:]
    assert world.aws() == before_aws
    (entry,) = [json.loads(line) for line in world.file(FORCED_LOG).splitlines()]
    assert (entry["phase"], entry["reason"]) == ("1", "decommission rehearsal")
    assert entry["overridden"].startswith("rollback of phase 1 refused: job(s) basis (cutover)")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", entry["time"]) and entry["by"]
    assert world.host.exec("stat", "-c", "%U:%G %a", FORCED_LOG).stdout.strip() == "root:root 600"
    assert {k: v for k, v in world.host_state().items() if k != "forced"} == \
        {k: v for k, v in before_host.items() if k != "forced"}
    world.production_dump()


def test_after_the_documented_order_phase_3_goes_through(world):
    world.play(ROLLBACK, "-e", "phase=keys")
    assert world.keys.key_status() == "Active"
    run = world.play(ROLLBACK, "-e", "phase=3", ok=False)
    assert _refusal(run).endswith(
        "rollback of phase 3 refused: job(s) basis, contract_status are in cutover, and without the instance role "
        "they have no AWS credentials. Roll back in this order: -e job=NAME -e to=parallel (or legacy) for basis, "
        f"contract_status, then -e phase=3; or pass -e force_reason='why' to detach anyway (recorded in {FORCED_LOG}). "
        "Nothing was changed.")
    world.play(ROLLBACK, "-e", "job=basis", "-e", "to=legacy")
    world.play(ROLLBACK, "-e", "job=contract_status", "-e", "to=parallel")

    check = world.play(ROLLBACK, "-e", "phase=3", "--check", "--diff")
    assert check.changed > 0 and world.p3.association() == world.p3.profile_arn()
    world.play(ROLLBACK, "-e", "phase=3")
    assert (world.p3.association(), world.p3.record()) == (None, {})


def test_phase_2_again_leaves_the_job_rolled_back_to_legacy_where_it_is_and_says_so(world):
    ledger = json.loads(world.file(CUTOVER_LEDGER))
    basis_before = ledger["jobs"]["basis"]
    run = world.play(PHASE2)
    assert re.search(r"left alone: basis stays in legacy \(rolled back from cutover at \S+Z by \S+; -e jobs=basis "
                     r"moves it to parallel again\)", run.one_line()), run.out[-4000:]
    after = json.loads(world.file(CUTOVER_LEDGER))
    assert after["jobs"]["basis"] == basis_before
    assert world.phases() == {"basis": "legacy", "contract_status": "parallel", "schema_weekly": "parallel"}
    assert world.host.exec("test", "-e", "/etc/cron.d/dumpjob-basis", check=False).returncode != 0
    assert "#jram.dumphost[basis]" not in world.host.exec("crontab", "-l", "-u", "ec2-user").stdout

    named = world.play(PHASE2, "--check", "-e", "jobs=basis")
    assert re.search(r"basis\s+parallel\*", named.out), named.out[-4000:]
    assert "left alone: contract_status stays in parallel (not named in jobs); schema_weekly stays in parallel " \
           "(not named in jobs)" in named.one_line()


def test_after_the_documented_order_phase_1_goes_through(world):
    run = world.play(ROLLBACK, "-e", "phase=1", ok=False)
    assert "rollback of phase 1 refused: job(s) contract_status (parallel), schema_weekly (parallel) are past " \
           "legacy" in _refusal(run)
    for job in ("contract_status", "schema_weekly"):
        world.play(ROLLBACK, "-e", f"job={job}", "-e", "to=legacy")
    world.play(ROLLBACK, "-e", "phase=1")
    aws = world.aws()
    assert (aws["role"], aws["alarms"]) == (None, [])
    assert len(world.file(FORCED_LOG).splitlines()) == 1  # nothing forced since
