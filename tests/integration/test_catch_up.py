"""Catch-up after downtime, on a dump host container of this module's own with phase 2 done (every
job in parallel, each job's cron file holding its @reboot catch-up entry), an EC2 instance record,
instance profile and IMDS emulator of its own (phase3_host.Phase3), a bucket and secret of its own.

Two jobs get a schedule a minute ahead: contract_status with a deadline a few minutes later,
schema_weekly with a deadline a minute after its start. The container is stopped across that
minute and started once schema_weekly's deadline has passed, contract_status's not: at boot cron
runs `dumpjob catch-up` for each job, which publishes contract_status's day exactly once and runs
nothing for schema_weekly, saying why; a second catch-up finds the day published; `dumpjob
status` on the host shows the run."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError
from phase3_host import Phase3

from sandbox import config as sandbox_config
from sandbox import host as sandbox_host

TOKYO = ZoneInfo("Asia/Tokyo")
JOBS_FILE = "/etc/dumpjob/jobs.yml"
PROGRAM = "/usr/local/bin/dumpjob"
AS_CRON = ("runuser", "-u", "dumpjob", "--", "/usr/bin/env", "-i", "HOME=/var/lib/dumpjob", "PATH=/usr/bin:/bin")
# Rewrites the job file's schedule and deadline of jobs, as the job_config role would render them.
RESCHEDULE = """
import json, sys, yaml
path, changes = sys.argv[1], json.loads(sys.argv[2])
doc = yaml.safe_load(open(path))
for job, keys in changes.items():
    doc["jobs"][job].update(keys)
with open(path, "w") as out:
    yaml.safe_dump(doc, out, sort_keys=True)
"""


# Phase 2 with the hardening areas off that neither cron nor the dump program depends on (each
# has its own tests): the dumpjob user, its directories and cron's settings stay on.
FAST_HARDENING = {f"harden_{area}_enabled": False for area in (
    "ssh", "sshd_crypto", "sysctl", "coredump", "umask", "login_defs", "modules", "pwquality", "auditd", "accounting",
    "banner")}


class CatchUpHost(Phase3):
    """Phase3's instance record and emulator, with the role, profile and secret phase 1 would make
    created directly in moto (phase 1 is not this module's subject), then phase 2 on the host."""

    def create(self) -> None:
        self.create_instance_and_imds()
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "ec2.amazonaws.com"}}]}
        self.iam.create_role(RoleName=self.name, AssumeRolePolicyDocument=json.dumps(trust))
        self.iam.create_instance_profile(InstanceProfileName=self.name)
        self.iam.add_role_to_instance_profile(InstanceProfileName=self.name, RoleName=self.name)
        self.ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": self.profile_arn()},
                                                InstanceId=self.instance_id)
        settings = sandbox_config.load()
        self.sm.create_secret(Name=self.secret, SecretString=json.dumps({
            "engine": "mariadb", "host": "127.0.0.1", "port": settings.mariadb_port, "dbname": "basis",
            "username": sandbox_config.LEGACY_DB_USER, "password": _db_password(settings)}))
        run = self.play("phase2_parallel.yml", extra=FAST_HARDENING)
        assert run.rc == 0, f"phase 2 failed:\n{run.out[-6000:]}"

    def destroy(self) -> list[str]:
        problems = []
        if self.instance_id:
            with contextlib.suppress(ClientError):
                self.set_state(None, "optional", 2)
                self.ec2.terminate_instances(InstanceIds=[self.instance_id])
        if self._imds and self._imds.poll() is None:
            self._imds.terminate()
            self._imds.wait(timeout=10)
        for call in (lambda: self.sm.delete_secret(SecretId=self.secret, ForceDeleteWithoutRecovery=True),
                     lambda: self.iam.remove_role_from_instance_profile(InstanceProfileName=self.name,
                                                                        RoleName=self.name),
                     lambda: self.iam.delete_instance_profile(InstanceProfileName=self.name),
                     lambda: self.iam.delete_role(RoleName=self.name)):
            try:
                call()
            except ClientError as exc:
                problems.append(str(exc))
        self.remove_bucket()
        return problems

    def keys(self, prefix: str) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=self.name, Prefix=prefix).get("Contents", []))

    def dumpjob(self, *args: str):
        return self.host.exec(*AS_CRON, PROGRAM, *args, check=False)

    def events(self) -> list[dict]:
        """dumpjob's log lines of this boot (journald, identifier dumpjob)."""
        out = self.host.exec("journalctl", "-b", "-t", "dumpjob", "-o", "cat", "--no-pager", check=False).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def world(sandbox, fresh_host, aws_env, tmp_path_factory):
    w = CatchUpHost(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp("catch_up"))
    try:
        w.create()
        yield w
    finally:
        problems = w.destroy()
        assert not problems, problems


def _db_password(settings) -> str:
    """The reader's password as phase 1 would store it (the sandbox's stand-in for a vault)."""
    stored = settings.state / "db_password"
    return stored.read_text().strip() if stored.exists() else sandbox_config.LEGACY_DB_PASSWORD


def _minute_ahead(margin: float = 25) -> dt.datetime:
    """The start of the next UTC minute at least `margin` seconds away."""
    now = dt.datetime.now(dt.timezone.utc)
    due = (now + dt.timedelta(seconds=margin + 60)).replace(second=0, microsecond=0)
    return due if (due - now).total_seconds() - 60 < margin else due - dt.timedelta(minutes=1)


def test_a_missed_run_is_caught_up_once_before_its_deadline_and_not_after(world):
    started = time.monotonic()
    host = world.host
    for job in ("contract_status", "schema_weekly"):
        entry = host.exec("cat", f"/etc/cron.d/dumpjob-{job}").stdout
        assert f"\n@reboot dumpjob {PROGRAM} catch-up {job} --parallel\n" in entry, entry

    due = _minute_ahead()
    local = due.astimezone(TOKYO)
    day = f"{local:%Y%m%d}"
    schedule = f"{local.minute} {local.hour} * * *"
    changes = {"contract_status": {"schedule": schedule, "deadline": f"{local + dt.timedelta(minutes=4):%H:%M}"},
               "schema_weekly": {"schedule": schedule, "deadline": f"{local + dt.timedelta(minutes=1):%H:%M}"}}
    host.exec("/opt/dumpjob/venv/bin/python", "-c", RESCHEDULE, JOBS_FILE, json.dumps(changes))
    assert world.dumpjob("check-config").returncode == 0
    for job in changes:  # cron's own entries at that minute (the host clock is UTC)
        host.exec("sed", "-i", "-E", rf"s/^[0-9*,/-]+ [0-9*,/-]+ \* \* [0-9*]+ (dumpjob {PROGRAM.replace('/', '[/]')} "
                  rf"run {job} --parallel)$/{due.minute} {due.hour} * * * \1/", f"/etc/cron.d/dumpjob-{job}")
        assert f"\n{due.minute} {due.hour} * * * dumpjob {PROGRAM} run {job} --parallel\n" in \
            host.exec("cat", f"/etc/cron.d/dumpjob-{job}").stdout

    # down from before the scheduled minute until schema_weekly's deadline has passed
    sandbox_host.podman("stop", "--time", "10", host.host, what="stop the host")
    assert dt.datetime.now(dt.timezone.utc) < due, "the host was stopped too late to miss the scheduled minute"
    time.sleep(max(0.0, (due + dt.timedelta(minutes=1, seconds=3) - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    sandbox_host.podman("start", host.host, what="start the host")
    sandbox_host.wait_booted(host.settings)
    booted = dt.datetime.now(dt.timezone.utc)
    assert booted < due + dt.timedelta(minutes=4), "the host came back after contract_status's deadline"

    key = f"dumps-test/contract_status_{day}.csv.gz"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        finished = {e.get("job") for e in world.events() if e.get("event") in ("summary", "catch-up")
                    and (e.get("action") == "ran" or e.get("action") == "skipped")}
        if {"contract_status", "schema_weekly"} <= finished:
            break
        time.sleep(2)
    events = world.events()
    cron_log = host.exec("journalctl", "-b", "-u", "cron", "-o", "cat", "--no-pager", check=False).stdout
    assert world.keys("dumps-test/contract_status_") == [key, key + ".manifest.json"], (events, cron_log[-3000:])
    starts = [e for e in events if e.get("event") == "start"]
    assert [e["job"] for e in starts] == ["contract_status"], events
    assert f"CMD ({PROGRAM} catch-up contract_status --parallel)" in cron_log, cron_log
    assert f"CMD ({PROGRAM} run contract_status --parallel)" not in cron_log, cron_log

    # schema_weekly: started after its deadline, nothing ran, the log says why
    assert world.keys("dumps-test/schema/") == []
    (skipped,) = [e for e in events if e.get("job") == "schema_weekly" and e.get("event") == "catch-up"]
    assert f"the deadline {changes['schema_weekly']['deadline']} Asia/Tokyo of the run scheduled at " \
           f"{local:%Y-%m-%d %H:%M} has passed" in skipped["msg"], skipped
    (basis,) = [e for e in events if e.get("job") == "basis" and e.get("event") == "catch-up"]
    assert "the job has no deadline" in basis["msg"]

    # a second catch-up finds the day published: nothing runs twice
    again = world.dumpjob("catch-up", "contract_status", "--parallel", "--json")
    assert again.returncode == 0, again.stderr
    (outcome,) = json.loads(again.stdout.splitlines()[-1])["jobs"]
    assert outcome["action"] == "skipped" and "is published already" in outcome["reason"], outcome
    assert world.keys("dumps-test/contract_status_") == [key, key + ".manifest.json"]

    # status on the host shows the run
    shown = world.dumpjob("status", "--parallel", "--days", "2", "--json")
    assert shown.returncode == 0, shown.stderr
    jobs = {j["job"]: j for j in json.loads(shown.stdout.splitlines()[-1])["jobs"]}
    today = jobs["contract_status"]["runs"][0]
    assert (today["day"], today["outcome"], today["attempts"]) == (f"{local:%Y-%m-%d}", "published", 1), today
    assert today["raw_bytes"] > 0 and today["compressed_bytes"] > 0 and today["seconds"] > 0
    assert jobs["schema_weekly"]["runs"][0]["outcome"] == "missing"
    table = world.dumpjob("status", "contract_status", "--parallel", "--days", "1")
    assert table.returncode == 0 and f"{local:%Y-%m-%d}  published " in table.stdout, table.stdout
    print(f"catch-up test: {time.monotonic() - started:.0f} s after phase 2")
