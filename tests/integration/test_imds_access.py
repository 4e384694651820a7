"""The metadata service for the users that need it (roles/imds_access), on a dump host container of
this module's own (phase3_host.Phase3: phase 1 and phase 2 done, an EC2 instance record and IMDS
emulator of its own, ec2-user with a static key of this module's own), along the operator's journey:
phase 3 installs the rule set; only root, dumpjob and ec2-user (whose legacy jobs still run) get a
token, `nobody` is refused at once; the rule set survives a restart of the container; once every job
is retired ec2-user keeps it until key retirement, is refused after it and let back by its rollback;
rollback.yml -e phase=3 removes table, unit and file. Every step run again reports changed=0.

The container shares this machine's network namespace, so the table is this machine's
(jram_dumphost_imds_<emulator port>, the sandbox inventory's name) and is looked at here."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from phase3_host import ATTACH, ROLLBACK, Phase3
from test_static_keys import RETIRE, Keys

from sandbox import host as sandbox_host

PHASE4 = "phase4_cutover.yml"
JOBS = ("basis", "contract_status", "schema_weekly")
RULES = "/etc/jram-dumphost/imds-access.nft"
UNIT = "jram-dumphost-imds.service"
FORCE = {"cutover_force": True, "cutover_reason": "the gates' evidence is another test's subject"}


class World:
    def __init__(self, p3: Phase3, keys: Keys):
        self.p3, self.keys, self.host = p3, keys, p3.host

    def play(self, playbook: str, *args: str, **extra):
        run = self.p3.play(playbook, *args, extra=extra or None)
        assert run.rc == 0, f"{playbook} {args} failed:\n{_why(run)}"
        return run

    def token(self, user: str) -> str:
        """As `user` on the host: an IMDSv2 token request; 'token', or curl's exit code when it failed."""
        proc = self.host.exec("curl", "-sS", "-m", "5", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
                              "-o", "/dev/null", "-w", "%{http_code}", f"{self.p3.imds_url}/latest/api/token",
                              user=user, check=False)
        return "token" if proc.returncode == 0 and proc.stdout == "200" else f"curl exit {proc.returncode}"

    def table(self) -> str | None:
        proc = subprocess.run(["nft", "list", "table", "inet", self.p3.imds_table], capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 else None

    def allowed_uids(self) -> str:
        found = re.search(r"meta skuid != \{ ?([\d, ]+?) ?\}|meta skuid != (\d+)", self.table() or "")
        assert found, self.table()
        return (found.group(1) or found.group(2)).replace(" ", "")

    def uid(self, user: str) -> str:
        return self.host.exec("id", "-u", user).stdout.strip()

    def unit(self) -> tuple[str, str]:
        return tuple(self.host.exec("systemctl", verb, UNIT, check=False).stdout.strip()
                     for verb in ("is-enabled", "is-active"))

    def rules_file(self) -> str | None:
        proc = self.host.exec("cat", RULES, check=False)
        return proc.stdout if proc.returncode == 0 else None


def _why(run) -> str:
    at = [m.start() for m in re.finditer(r"^(fatal|failed): ", run.out, re.M)]
    return run.out[max(at[-1] - 2000, 0):at[-1] + 4000] if at else run.out[-6000:]


@pytest.fixture(scope="module")
def world(phase3_keys):
    return World(*phase3_keys)


# --- in the order of the operator's journey --------------------------------------------------

def test_phase_3_lets_only_root_dumpjob_and_the_legacy_user_reach_the_metadata_service(world):
    assert world.token("nobody") == "token", "before phase 3 every user reaches the metadata service"
    check = world.play(ATTACH, "--check", "--diff")
    assert world.table() is None and world.rules_file() is None, "check mode loaded or wrote the rule set"
    assert f"+table inet {world.p3.imds_table} {{" in check.out
    assert "TASK [jram.dumphost.imds_access : Allow only the users that need the metadata service]" in check.out

    run = world.play(ATTACH, "--diff")
    line = run.one_line()
    assert re.search(rf"only root, dumpjob, ec2-user reach the metadata service at 127\.0\.0\.1 port "
                     rf"{world.p3.imds_port} \(table inet {world.p3.imds_table}\)", line), run.out[-4000:]
    assert world.allowed_uids() == ",".join(sorted({world.uid("root"), world.uid("dumpjob"), world.uid("ec2-user")},
                                                   key=int))
    assert world.unit() == ("enabled", "active")
    assert world.token("nobody") == "curl exit 7", "a refused user must fail at once (connection reset/refused)"
    assert world.token("dumpjob") == "token"
    assert world.token("ec2-user") == "token"
    assert world.token("root") == "token"
    rc, report = world.p3.doctor()
    assert rc == 0, report

    again = world.play(ATTACH)
    assert again.changed == 0, again.changed_tasks
    converged = world.play(ATTACH, "--check", "--diff")
    assert converged.changed == 0, converged.changed_tasks


def test_the_rule_set_survives_a_restart_of_the_container(world):
    rules = world.rules_file()
    subprocess.run(["podman", "restart", "--time", "20", world.host.host], check=True, capture_output=True)
    sandbox_host.wait_booted(world.host.settings)
    assert world.unit() == ("enabled", "active")
    assert world.rules_file() == rules
    assert world.table() is not None
    assert world.token("nobody") == "curl exit 7"
    assert world.token("dumpjob") == "token"
    assert world.p3.doctor()[0] == 0


def test_every_job_retired_keeps_the_legacy_user_until_its_key_is_retired(world):
    for job in JOBS:
        for to in ("cutover", "retired"):
            world.play(PHASE4, "-e", f"job={job}", "-e", f"to={to}", **FORCE)
    phases = json.loads(world.host.exec("cat", "/var/lib/dumpjob/cutover.json").stdout)["jobs"]
    assert {job: rec["phase"] for job, rec in phases.items()} == dict.fromkeys(JOBS, "retired")
    again = world.play(PHASE4, "-e", "job=schema_weekly", "-e", "to=retired", **FORCE)
    assert again.changed == 0, again.changed_tasks
    assert "ec2-user: static key not retired yet (key retirement has not run)" in again.one_line()
    assert world.token("ec2-user") == "token"


def test_key_retirement_refuses_the_legacy_user_and_its_rollback_lets_it_back(world):
    uids_before = world.allowed_uids()
    check = world.play(RETIRE, "--check", "--diff")
    assert "TASK [jram.dumphost.imds_access : Allow only the users that need the metadata service]" in check.out
    assert world.allowed_uids() == uids_before, "check mode changed the rule set"

    world.play(RETIRE)
    assert world.uid("ec2-user") not in world.allowed_uids().split(",")
    assert world.token("ec2-user") == "curl exit 7"
    assert world.token("dumpjob") == "token"
    assert world.p3.doctor()[0] == 0
    again = world.play(RETIRE)
    assert again.changed == 0, again.changed_tasks

    world.play(ROLLBACK, "-e", "phase=keys")
    assert world.token("ec2-user") == "token"
    assert world.uid("ec2-user") in world.allowed_uids().split(",")
    again = world.play(ROLLBACK, "-e", "phase=keys")
    assert again.changed == 0, again.changed_tasks


def test_rollback_of_phase_3_removes_table_unit_and_file(world):
    # every job is retired: the rollback of phase 3 is refused unless forced
    world.play(ROLLBACK, "-e", "phase=3", force_reason="test of the metadata service's rule set")
    assert world.table() is None
    assert world.rules_file() is None
    assert world.host.exec("test", "-e", f"/etc/systemd/system/{UNIT}", check=False).returncode != 0
    assert world.token("nobody") == "token"
    again = world.play(ROLLBACK, "-e", "phase=3", force_reason="test of the metadata service's rule set")
    assert again.changed == 0, again.changed_tasks
