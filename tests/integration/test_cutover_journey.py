"""The cutover journey of one job (contract_status) through the playbooks, on a legacy host of
this module's own with the real dumpjob program against moto and MariaDB:

phase 2 moves every job to parallel (legacy crontab untouched) -> the new entry's command run by
hand and the legacy script run for comparison -> validate.yml records compares of back-dated
days through dump_compare -> phase 4 is refused without a job, for an unknown job and for a job
without validations, predicted truthfully in check mode, applied once and idempotent -> a
production run recorded from S3 -> rollback.yml puts the legacy crontab back byte for byte.

Setup runs phase 1 against moto and associates its profile with the sandbox instance so the
program gets role credentials; teardown detaches it, makes IMDSv2 optional again and deletes
what phase 1 created, even when a test failed."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sandboxtest import run_playbook

REPO = Path(__file__).resolve().parents[2]
JOB = "contract_status"
OTHER = "basis"
DAYS = ("2025-01-10", "2025-01-11")
ENTRY = f"/etc/cron.d/dumpjob-{JOB}"


def recap(proc) -> dict:
    line = next(line for line in proc.stdout.splitlines() if re.match(r"^jram-dumphost\s+:", line))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def status_line(proc, job: str) -> str:
    """The job's row of the last status table the playbook printed."""
    rows = re.findall(rf"^\s*-?\s*\"?({job}  +\S+  .*?)\"?,?$", proc.stdout, re.M)
    assert rows, f"no status row for {job}:\n{proc.stdout[-3000:]}"
    return rows[-1]


class Journey:
    def __init__(self, sandbox, host, aws_env):
        self.sandbox, self.host, self.env = sandbox, host, aws_env
        self.instance_id = sandbox.state["instance_id"]
        self.ec2 = sandbox.client("ec2")

    def play(self, playbook: str, *args: str, check: bool = True):
        return run_playbook(playbook, *args, host=self.host.host, env=self.env, check=check)

    def crontab(self) -> str:
        return self.host.exec("crontab", "-l", "-u", "ec2-user").stdout

    def entry(self) -> str | None:
        proc = self.host.exec("cat", ENTRY, check=False)
        return proc.stdout if proc.returncode == 0 else None

    def ledger(self) -> dict:
        return json.loads(self.host.exec("cat", "/var/lib/dumpjob/cutover.json").stdout)

    def dumpjob(self, *argv: str) -> dict:
        proc = self.host.exec("/usr/local/bin/dumpjob", *argv, "--json", user="dumpjob", check=False)
        assert proc.returncode == 0, f"dumpjob {' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        return json.loads(proc.stdout.splitlines()[-1])

    def restore_instance(self) -> None:
        subprocess.run([sys.executable, "-m", "sandbox", "detach-profile"], cwd=REPO, env=self.env,
                       capture_output=True, check=True)
        self.ec2.modify_instance_metadata_options(InstanceId=self.instance_id, HttpTokens="optional")


@pytest.fixture(scope="module")
def journey(sandbox, fresh_host, aws_env):
    j = Journey(sandbox, fresh_host, aws_env)
    try:
        j.play("playbooks/phase1_infra.yml")
        j.restore_instance()
        j.ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "jram-dumphost"}, InstanceId=j.instance_id)
        j.original = j.crontab()
        j.phase2 = j.play("playbooks/phase2_parallel.yml")
        yield j
    finally:
        j.restore_instance()
        j.play("playbooks/rollback.yml", "-e", "phase=1", check=False)


def test_phase2_runs_every_job_in_parallel_and_leaves_the_legacy_crontab_alone(journey):
    assert journey.crontab() == journey.original
    entry = journey.entry()
    assert entry is not None and f"/usr/local/bin/dumpjob run {JOB} --parallel" in entry
    assert "0 21 * * * dumpjob " in entry  # 06:00 Asia/Tokyo on the UTC host
    assert {job: rec["phase"] for job, rec in journey.ledger()["jobs"].items()} == \
        {"basis": "parallel", "contract_status": "parallel", "schema_weekly": "parallel"}
    assert status_line(journey.phase2, JOB).split()[:2] == [JOB, "parallel"]
    again = journey.play("playbooks/phase2_parallel.yml")
    assert recap(again)["changed"] == 0, again.stdout[-4000:]


def test_phase4_refuses_without_a_job_an_unknown_job_or_validations_and_changes_nothing(journey):
    before = (journey.crontab(), journey.entry(), journey.ledger())
    for args, needle in [((), "phase 4 moves exactly one job: pass -e job=NAME"),
                         (("-e", "job=nosuch"), "job 'nosuch' is not a configured job"),
                         (("-e", f"job={OTHER}"), f"job {OTHER} has 0 validated day(s)")]:
        proc = journey.play("playbooks/phase4_cutover.yml", *args, check=False)
        assert proc.returncode != 0 and needle in proc.stdout, proc.stdout[-3000:]
        assert recap(proc)["changed"] == 0
    assert (journey.crontab(), journey.entry(), journey.ledger()) == before


def test_validate_records_the_compares_of_back_dated_days(journey):
    # What the legacy script publishes (today's key), as if it had run on each back-dated day,
    # and the new entry's command run by hand for the same days.
    proc = journey.host.exec("/home/ec2-user/scripts/ggh_contract_status.sh", user="ec2-user", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).strftime("%Y%m%d")
    s3 = journey.sandbox.client("s3")
    for day in DAYS:
        key = f"dumps/contract_status_{day.replace('-', '')}.csv.gz"
        s3.copy_object(Bucket="jram-gghouse", Key=key,
                       CopySource={"Bucket": "jram-gghouse", "Key": f"dumps/contract_status_{today}.csv.gz"})
        run = journey.dumpjob("run", JOB, "--parallel", "--date", day)
        assert run["key"] == f"dumps-test/contract_status_{day.replace('-', '')}.csv.gz"

    first = journey.play("playbooks/validate.yml", "-e", f"cutover_validate_date={DAYS[0]}", "--check")
    assert recap(first)["changed"] >= 1, first.stdout[-3000:]
    assert not journey.ledger()["jobs"][JOB].get("verdicts"), "check mode recorded a verdict"
    for day in DAYS:
        proc = journey.play("playbooks/validate.yml", "-e", f"cutover_validate_date={day}")
        assert recap(proc)["changed"] >= 1
    verdicts = journey.ledger()["jobs"][JOB]["verdicts"]
    assert [(v["date"], v["verdict"]) for v in verdicts] == [(d, "identical") for d in DAYS], verdicts
    assert "(query)" in verdicts[0]["details"]["tables"]
    again = journey.play("playbooks/validate.yml", "-e", f"cutover_validate_date={DAYS[1]}")
    assert recap(again)["changed"] == 0, again.stdout[-3000:]
    assert status_line(again, JOB).split()[:3] == [JOB, "parallel", journey.ledger()["jobs"][JOB]["phase_since"]]


def test_phase4_cuts_the_validated_job_over_truthfully_and_idempotently(journey):
    before = (journey.crontab(), journey.entry())
    check = journey.play("playbooks/phase4_cutover.yml", "-e", f"job={JOB}", "--check", "--diff")
    assert recap(check)["changed"] == 1 and f"#jram.dumphost[{JOB}] disabled" in check.stdout
    assert (journey.crontab(), journey.entry()) == before, "check mode changed the host"
    assert status_line(check, JOB).split()[1] == "cutover*"

    proc = journey.play("playbooks/phase4_cutover.yml", "-e", f"job={JOB}")
    assert recap(proc)["changed"] == 1
    crontab = journey.crontab()
    marker = rf"^#jram\.dumphost\[{JOB}\] disabled \S+: 0  21 \* \* \* /home/ec2-user/scripts/ggh_contract_status"
    assert re.search(marker, crontab, re.M), crontab
    assert f"run {JOB}\n" in journey.entry() and "--parallel" not in journey.entry()
    assert status_line(proc, JOB).split()[1] == "cutover"
    again = journey.play("playbooks/phase4_cutover.yml", "-e", f"job={JOB}")
    assert recap(again)["changed"] == 0


def test_validate_records_a_production_run_of_a_job_in_cutover(journey):
    journey.dumpjob("run", JOB, "--date", DAYS[1])
    proc = journey.play("playbooks/validate.yml", "-e", f"cutover_validate_date={DAYS[1]}")
    assert recap(proc)["changed"] == 1
    runs = journey.ledger()["jobs"][JOB]["runs"]
    assert [(r["date"], r["mode"], r["status"]) for r in runs] == [(DAYS[1], "production", "ok")]
    assert status_line(proc, JOB).split()[-1] == "1"


def test_rollback_refuses_without_both_job_and_to(journey):
    for args in (("-e", f"job={JOB}"), ("-e", "to=legacy"), ("-e", f"job={JOB}", "-e", "to=retired")):
        proc = journey.play("playbooks/rollback.yml", *args, check=False)
        assert proc.returncode != 0, proc.stdout[-2000:]
        assert "-e job=NAME" in proc.stdout or "-e job=NAME -e to=PHASE" in proc.stdout


def test_rollback_to_legacy_restores_the_crontab_byte_for_byte(journey):
    proc = journey.play("playbooks/rollback.yml", "-e", f"job={JOB}", "-e", "to=legacy")
    assert recap(proc)["changed"] == 1
    assert journey.crontab() == journey.original
    assert journey.entry() is None
    assert status_line(proc, JOB).split()[1] == "legacy"
    transitions = journey.ledger()["jobs"][JOB]["transitions"]
    assert [(t["from"], t["to"]) for t in transitions] == \
        [("legacy", "parallel"), ("parallel", "cutover"), ("cutover", "legacy")]
    again = journey.play("playbooks/rollback.yml", "-e", f"job={JOB}", "-e", "to=legacy")
    assert recap(again)["changed"] == 0
