"""Phase 3 against moto and a dump host container of this module's own: playbooks/phase3_attach_role.yml
(live and maintenance), its automatic restore when the verification fails, and the phase 3 branch
of playbooks/rollback.yml.

The module's host, EC2 instance record, IMDS emulator and phase 1 names are its own
(phase3_host.Phase3), so the sandbox's shared instance is never touched."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest
from phase3_host import ATTACH, ROLLBACK, TAG_PREFIX, Phase3, doctor_checks


@pytest.fixture(scope="module")
def p3(sandbox, fresh_host, aws_env, tmp_path_factory):
    env = Phase3(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp("phase3"))
    try:
        env.create()
        yield env
    finally:
        problems = env.destroy()
        assert not problems, problems


# --- in the order of the operator's journey; each test sets the starting state it needs -----

def test_doctor_without_a_profile_says_the_instance_has_no_role(p3):
    p3.set_state(None, "optional", 2)
    rc, report = p3.doctor()
    assert rc == 12 and report["ok"] is False
    role = doctor_checks(report)["instance_role"]
    assert role["ok"] is False
    assert "the instance has no IAM role (IMDS answered 404" in role["reason"]


@pytest.mark.parametrize("extra, message", [
    ({"instance_role_attach_mode": "reboot"}, "instance_role_attach_mode"),
    ({"instance_role_profile_name": "p3t-no-such-profile"},
     "instance profile p3t-no-such-profile does not exist: run phase 1 (playbooks/phase1_infra.yml) or fix "
     "instance_role_profile_name"),
])
def test_bad_input_is_refused_before_any_change(p3, extra, message):
    p3.set_state(None, "optional", 2)
    run = p3.play(ATTACH, extra=extra)
    assert run.rc != 0, run.out[-3000:]
    assert message in run.one_line(), run.out[-3000:]
    assert not run.changed_tasks, run.changed_tasks
    assert (p3.association(), p3.options(), p3.record()) == (None, ("optional", 2), {})


def test_live_attach_check_apply_idempotent(p3):
    p3.set_state(None, "optional", 2)
    check = p3.play(ATTACH, "--check", "--diff")
    assert check.rc == 0, check.out[-4000:]
    # record, association, metadata options; the nftables package and the metadata service's rule set
    assert check.changed == 5, check.changed_tasks
    assert f"instance profile none -> {p3.profile_arn()}" in check.one_line()
    assert "http_tokens optional -> required, hop limit 2 -> 1" in check.one_line()
    # --diff shows the instance settings that would change (jram.dumphost.instance_settings)
    assert f"--- before: instance {p3.instance_id}" in check.out, check.out[-4000:]
    assert re.search(r'^-.*\bhttp_tokens\W+optional\b', check.out, re.M), check.out[-4000:]
    assert re.search(r'^\+.*\bhttp_tokens\W+required\b', check.out, re.M), check.out[-4000:]
    assert (p3.association(), p3.options(), p3.record()) == (None, ("optional", 2), {}), "check mode changed moto"

    run = p3.play(ATTACH, "--diff")
    assert run.rc == 0, run.out[-6000:]
    assert p3.association() == p3.profile_arn()
    assert p3.options() == ("required", 1)
    assert p3.instance()["State"]["Name"] == "running"
    # (the YAML callback doubles the quotes inside its single-quoted strings)
    assert re.search(rf"verified from jram-dumphost as dumpjob: instance role '+{p3.name}'+ \(IMDSv2\)", run.one_line())
    record = p3.record()
    assert record[f"{TAG_PREFIX}previous-profile"] == "none"
    assert (record[f"{TAG_PREFIX}previous-http-tokens"], record[f"{TAG_PREFIX}previous-hop-limit"]) == ("optional", "2")
    assert record[f"{TAG_PREFIX}attach-mode"] == "live"

    # from the host: the program gets the expected role's credentials, and IMDSv1 is refused
    rc, report = p3.doctor()
    checks = doctor_checks(report)
    assert checks["instance_role"]["reason"] == f"instance role '{p3.name}' (IMDSv2)"
    assert f":assumed-role/{p3.name}/" in checks["aws_identity"]["reason"]
    assert "(credentials from the instance role)" in checks["aws_identity"]["reason"]
    assert all(checks[f"{job}/secret"]["ok"] for job in ("basis", "contract_status", "schema_weekly"))
    assert all(c["ok"] for name, c in checks.items() if "/bucket:" in name)
    assert rc == 0, report
    assert p3.imds_status(token=False) == 401
    assert p3.imds_status(token=True) == 200

    again = p3.play(ATTACH)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    assert p3.record() == record  # what was there before phase 3 stays recorded
    converged = p3.play(ATTACH, "--check", "--diff")
    assert converged.rc == 0 and converged.changed == 0, converged.changed_tasks


def test_rollback_restores_no_profile_and_the_old_options(p3):
    """From where the live attach left the instance (rerun it when this test runs alone)."""
    if p3.association() != p3.profile_arn():
        p3.set_state(None, "optional", 2)
        assert p3.play(ATTACH).rc == 0
    check = p3.play(ROLLBACK, "-e", "phase=3", "--check", "--diff")
    # association and options, record, the metadata service's rule set
    assert check.rc == 0 and check.changed == 3, check.out[-4000:]
    assert (p3.association(), p3.options()) == (p3.profile_arn(), ("required", 1)), "check mode changed moto"

    run = p3.play(ROLLBACK, "-e", "phase=3", "--diff")
    assert run.rc == 0, run.out[-6000:]
    assert (p3.association(), p3.options(), p3.record()) == (None, ("optional", 2), {})
    assert p3.tags()["Name"] == p3.name  # tags other than the record are left alone
    rc, report = p3.doctor()
    assert rc == 12 and "has no IAM role" in doctor_checks(report)["instance_role"]["reason"]
    assert p3.imds_status(token=False) == 200

    again = p3.play(ROLLBACK, "-e", "phase=3")
    assert again.rc == 0 and again.changed == 0, again.changed_tasks
    assert "carries no phase 3 record" in again.one_line()


def test_attach_refuses_to_replace_another_profile_unless_told(p3):
    other = p3.other_profile()
    p3.set_state(other, "optional", 2)
    run = p3.play(ATTACH)
    assert run.rc != 0
    assert f"has instance profile {other} associated" in run.one_line()
    assert "set instance_role_replace=true to replace it" in run.one_line()
    assert not run.changed_tasks
    assert (p3.association(), p3.options(), p3.record()) == (other, ("optional", 2), {})


class Watcher:
    """Follows the instance in moto while a play runs, and does to the host what EC2 would: the
    host is frozen (podman pause) from the moment moto says `stopped` until BOOT seconds after it
    says `running` again, like a machine that is off and then boots."""

    BOOT = 6.0

    def __init__(self, p3):
        self.p3, self.states, self.stop_flag = p3, [], threading.Event()
        self.paused_at = self.resumed_at = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _podman(self, verb: str) -> None:
        subprocess.run(["podman", verb, self.p3.host.host], check=True, capture_output=True)

    def _run(self) -> None:
        running_again = None
        while not self.stop_flag.is_set():
            state = self.p3.instance()["State"]["Name"]
            if not self.states or self.states[-1] != state:
                self.states.append(state)
            if state == "stopped" and self.paused_at is None:
                self._podman("pause")
                self.paused_at = time.time()
            if state == "running" and self.paused_at and running_again is None:
                running_again = time.time()
            if running_again and self.resumed_at is None and time.time() - running_again >= self.BOOT:
                self._podman("unpause")
                self.resumed_at = time.time()
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=10)
        if self.paused_at and self.resumed_at is None:
            self._podman("unpause")


def test_maintenance_mode_stops_replaces_starts_waits_and_rolls_back(p3):
    other = p3.other_profile()
    p3.set_state(other, "optional", 2)
    with Watcher(p3) as watch:
        run = p3.play(ATTACH, extra={"instance_role_attach_mode": "maintenance", "instance_role_replace": True,
                                     "instance_role_connection_timeout": 120},
                      env={"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"})
    assert run.rc == 0, run.out[-6000:]
    assert watch.states == ["running", "stopped", "running"], watch.states
    assert re.search(r"TASK \[jram.dumphost.instance_role : Stop the instance \(maintenance mode\)\][^\n]*\n"
                     r"(?:[^\n]*\n)?changed:", run.out), run.out[-6000:]
    # the play waited for the host to "boot" before it verified from it
    waited = re.search(r"Wait for the host to answer again \(maintenance mode\) -+ ([\d.]+)s", run.out)
    assert waited and float(waited.group(1)) >= Watcher.BOOT - 1, run.out[-3000:]
    assert watch.resumed_at and run.ended > watch.resumed_at
    assert (p3.association(), p3.options()) == (p3.profile_arn(), ("required", 1))
    assert p3.instance()["State"]["Name"] == "running"
    record = p3.record()
    assert (record[f"{TAG_PREFIX}previous-profile"], record[f"{TAG_PREFIX}attach-mode"]) == (other, "maintenance")

    # the rollback puts the other profile back, live (no stop)
    back = p3.play(ROLLBACK, "-e", "phase=3")
    assert back.rc == 0, back.out[-6000:]
    assert (p3.association(), p3.options(), p3.record()) == (other, ("optional", 2), {})
    assert p3.instance()["State"]["Name"] == "running"


def test_failed_verification_restores_the_previous_association_and_options(p3):
    """The role cannot read the jobs' secret (deleted after phase 1 here; on AWS a wrong resource
    in the policy has the same effect). The attach, replacing another profile, must put that
    profile and the old options back, drop its record, and say why."""
    other = p3.other_profile()
    p3.set_state(other, "optional", 2)
    p3.sm.delete_secret(SecretId=p3.secret, RecoveryWindowInDays=7)
    try:
        run = p3.play(ATTACH, extra={"instance_role_replace": True})
    finally:
        p3.sm.restore_secret(SecretId=p3.secret)
    assert run.rc != 0, run.out[-4000:]
    line = run.one_line()
    assert re.search(r"phase 3 failed on jram-dumphost, instance i-\w+: basis: secret: reading secret '"
                     + re.escape(p3.secret) + "' failed", line), run.out[-4000:]
    assert f"Put back: instance profile {other}, http_tokens optional, hop limit 2." in line
    # the attach did happen before the verification failed, and was undone
    assert re.search(r"TASK \[jram.dumphost.instance_role : Associate the instance profile\][^\n]*\nchanged:",
                     run.out), run.out[-6000:]
    assert (p3.association(), p3.options(), p3.record()) == (other, ("optional", 2), {})
    assert p3.tags()["Name"] == p3.name
    assert p3.imds_status(token=False) == 200
