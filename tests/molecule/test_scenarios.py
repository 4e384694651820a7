"""The molecule scenarios, run inside `make test` against the shared sandbox.

`default` runs `molecule test -s default` (create → prepare → converge → idempotence → check →
verify → cleanup → destroy) and additionally asserts what molecule itself does not: the
check-mode run on the converged host reports no change.

`identity` walks phase 3 and key retirement and undoes both (see _walk_identity); it is marked
`identity` and runs outside `make test` (`make test-identity`).

`cutover` walks two jobs through their cutover, one step per playbook under
molecule/cutover/steps, each converged and then run again by `molecule idempotence`; between
the steps this driver runs what an operator runs by hand (the legacy scripts, the new program
for back-dated days) and asserts the host's state: see _walk_cutover."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sandboxtest import Sandbox, run_playbook

from sandbox.config import LEGACY_DB_PASSWORD, LEGACY_IAM_USER

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOKYO = ZoneInfo("Asia/Tokyo")
BUCKET = "jram-gghouse"


def _recaps(log: str, action: str) -> list[str]:
    """The PLAY RECAP host lines printed during one molecule action (molecule writes
    `default ➜ check: Executing` with colours, `[default > check] Executing` without)."""
    start = re.search(rf"(?:➜ |> ){action}\]?:? Executing", log)
    end = re.search(rf"(?:➜ |> ){action}\]?:? Executed", log)
    assert start and end, f"molecule's log has no {action} action"
    section = log[start.end():end.start()]
    return [line for line in section.splitlines() if re.search(r"\bok=\d+\s+changed=\d+", line)]


def _unchanged(recaps: list[str]) -> bool:
    return bool(recaps) and all(re.search(r"\bchanged=0\b", line) and re.search(r"\bfailed=0\b", line)
                                for line in recaps)


def _env(aws_env: dict) -> dict:
    return {**aws_env, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}


# identity runs on its own (`make test-identity`, a CI step of its own): inside `make test` it
# would push the suite past its 30 minutes, and tests/integration/test_phase3.py and
# test_static_keys.py prove the same playbooks there.
@pytest.mark.parametrize("scenario", ["default", "cutover", pytest.param("identity", marks=pytest.mark.identity)])
def test_molecule_scenario(sandbox, aws_env, scenario, tmp_path):
    env = _env(aws_env)
    if scenario == "cutover":
        _walk_cutover(sandbox, env, tmp_path)
        return
    if scenario == "identity":
        _walk_identity(sandbox, env, tmp_path)
        return
    # One stream, so molecule's action lines stand between the plays they announce.
    proc = subprocess.run([BIN / "molecule", "test", "-s", scenario], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1500)
    log = ANSI.sub("", proc.stdout)
    (tmp_path / "molecule.log").write_text(log)
    assert proc.returncode == 0, log[-6000:]
    # prepare runs phase 1 (which stores the DB password in Secrets Manager), converge phase 2,
    # all at -vvv: the password appears nowhere in the output.
    assert "TASK [" in log and LEGACY_DB_PASSWORD not in log
    for action in ("idempotence", "check"):
        recaps = _recaps(log, action)
        assert recaps, f"no play recap found for {action}"
        assert _unchanged(recaps), f"{action}: {recaps}"


# --- The cutover scenario ---------------------------------------------------------------------

def _recap(out: str, host: str = "jram-dumphost") -> dict:
    """The recap of one ansible-playbook run against the sandbox inventory's dump host."""
    line = next(line for line in out.splitlines() if re.match(rf"^{host}\s+:", line))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def _status_row(out: str, job: str) -> list[str]:
    """The job's row of the last status table printed."""
    rows = re.findall(rf"^\s*-?\s*\"?({job}  +\S+  .*?)\"?,?$", out, re.M)
    assert rows, f"no status row for {job}:\n{out[-3000:]}"
    return rows[-1].split()


def _next_minute(lead: int) -> dt.datetime:
    """The first UTC minute that starts at least `lead` seconds from now (cron reads changed
    files when it wakes up at each minute; the converge writes the entry in its first seconds)."""
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lead + 59)
    return soon.replace(second=0, microsecond=0)


class CutoverWalk:
    scenario, step_variable = "cutover", "CUTOVER_STEP"

    def __init__(self, sandbox, env: dict, tmp_path: Path):
        settings = dataclasses.replace(sandbox.settings, host=f"{sandbox.host}-{self.scenario}")
        self.host = Sandbox(settings, sandbox.env, sandbox.state)
        self.s3 = sandbox.client("s3")
        self.env = env
        self.log_path = tmp_path / "molecule.log"
        self.log: list[str] = []
        self.timings: list[tuple[str, float]] = []
        inventory = yaml.safe_load((REPO / f"molecule/{self.scenario}/inventory.yml").read_text())
        self.days = inventory["all"].get("vars", {}).get("cutover_scenario_days", [])
        self.keys: set[str] = set()  # objects the walk wrote, removed at the end

    # molecule and ansible-playbook
    def _record(self, what: str, out: str, started: float) -> None:
        self.timings.append((what, time.monotonic() - started))
        self.log.append(f"##### {what} ({self.timings[-1][1]:.1f}s)\n{out}")
        self.log_path.write_text("\n".join(self.log))

    def molecule(self, action: str, step: str | None = None, check: bool = True, **extra_env: str) -> str:
        started = time.monotonic()
        env = {**self.env, **({self.step_variable: step} if step else {}), **extra_env}
        # One stream, so molecule's action lines stand between the plays they announce.
        proc = subprocess.run([BIN / "molecule", action, "-s", self.scenario], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        out = ANSI.sub("", proc.stdout)
        self._record(f"molecule {action} {step or ''}", out, started)
        if check:
            assert proc.returncode == 0, f"molecule {action} {step or ''} failed:\n{out[-6000:]}"
        return out

    def step(self, step: str, again: str | None = None, **extra_env: str) -> str:
        """Converge one step, then run it (or `again`, its part that is not proven elsewhere)
        a second time: nothing may change."""
        out = self.molecule("converge", step, **extra_env)
        second = self.molecule("idempotence", again or step, **extra_env)
        recaps = _recaps(second, "idempotence")
        assert _unchanged(recaps), f"step {step} is not idempotent: {recaps}"
        return out

    def play(self, playbook: str, *args: str) -> str:
        """A playbook run against the scenario's host through the sandbox inventory (same
        group_vars as the scenario), for the refusals."""
        started = time.monotonic()
        proc = run_playbook(playbook, *args, host=self.host.host, env=self.env, check=False)
        self._record(f"ansible-playbook {playbook} {' '.join(args)}", proc.stdout, started)
        return proc

    def refused(self, playbook: str, args: tuple, *needles: str) -> None:
        before = self.snapshot()
        proc = self.play(playbook, *args)
        assert proc.returncode != 0, proc.stdout[-3000:]
        for needle in needles:
            assert needle in proc.stdout, f"{needle!r} not in:\n{proc.stdout[-3000:]}"
        assert "changed=0" in proc.stdout and not re.search(r"changed=[1-9]", proc.stdout)
        assert self.snapshot() == before, f"{playbook} {args} changed the host"

    # the host
    def crontab(self) -> str:
        return self.host.exec("crontab", "-l", "-u", "ec2-user").stdout

    def entry(self, job: str) -> str | None:
        proc = self.host.exec("cat", f"/etc/cron.d/dumpjob-{job}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def ledger(self) -> dict:
        return json.loads(self.host.exec("cat", "/var/lib/dumpjob/cutover.json").stdout)

    def phases(self) -> dict:
        return {job: rec["phase"] for job, rec in self.ledger()["jobs"].items()}

    def snapshot(self) -> tuple:
        proc = self.host.exec("cat", "/var/lib/dumpjob/cutover.json", check=False)
        return (self.crontab(), {job: self.entry(job) for job in ("basis", "contract_status", "schema_weekly")},
                proc.stdout)

    def dumpjob(self, *argv: str) -> dict:
        started = time.monotonic()
        proc = self.host.exec("/usr/local/bin/dumpjob", *argv, "--json", user="dumpjob", check=False)
        self._record(f"dumpjob {' '.join(argv)}", proc.stdout + proc.stderr, started)
        assert proc.returncode == 0, f"dumpjob {' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}"
        result = json.loads(proc.stdout.splitlines()[-1])
        self.keys.update({result["key"], result["key"] + ".manifest.json"})
        return result

    def legacy_run(self, script: str) -> str:
        """Run a legacy script as cron would, as ec2-user; returns the day (YYYYMMDD) it dumped."""
        started = time.monotonic()
        proc = self.host.exec(f"/home/ec2-user/scripts/{script}", user="ec2-user", check=False)
        self._record(f"legacy {script}", proc.stdout + proc.stderr, started)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return re.search(r" start .* (\d{8})$", proc.stdout, re.M).group(1)

    def copy(self, source: str, key: str) -> None:
        self.s3.copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": source})
        self.keys.add(key)

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.s3.delete_object(Bucket=BUCKET, Key=key)

    def landed(self, key: str, since: dt.datetime) -> bool:
        try:
            heads = [self.s3.head_object(Bucket=BUCKET, Key=k) for k in (key, key + ".manifest.json")]
        except self.s3.exceptions.ClientError:
            return False
        return all(head["LastModified"] >= since - dt.timedelta(seconds=2) for head in heads)


def _walk_cutover(sandbox, env: dict, tmp_path: Path) -> None:
    walk = CutoverWalk(sandbox, env, tmp_path)
    d1, d2 = walk.days
    walk.molecule("destroy", check=False)  # what an interrupted run left
    try:
        _cutover_steps(walk, d1, d2)
    finally:
        walk.molecule("cleanup", check=False)
        walk.molecule("destroy", check=False)
        walk.delete(*sorted(walk.keys))
        print("cutover scenario timings:\n" + "\n".join(f"{t:7.1f}s  {what}" for what, t in walk.timings))
        print(f"cutover scenario total: {sum(t for _, t in walk.timings):.1f}s")


def _cutover_steps(walk: CutoverWalk, d1: str, d2: str) -> None:
    walk.molecule("create")  # create and prepare: phase 1 in moto, the profile, the legacy state
    original = walk.crontab()
    assert original == (REPO / "sandbox/legacy/crontab").read_text()

    # 1 - phase 2: every job in parallel, the legacy crontab untouched. Its second run is phase
    # 2's cutover part (steps/parallel_jobs.yml): the default scenario runs all of phase 2 twice
    # on the same fresh legacy host already.
    out = walk.step("parallel", again="parallel_jobs")
    assert walk.crontab() == original
    assert walk.phases() == {"basis": "parallel", "contract_status": "parallel", "schema_weekly": "parallel"}
    entry = walk.entry("contract_status")
    assert entry.endswith("\n0 21 * * * dumpjob /usr/local/bin/dumpjob run contract_status --parallel\n"), entry
    assert _status_row(out, "contract_status")[:2] == ["contract_status", "parallel"]

    # Refusals before any change: phase 4 without a job, for an unknown job, for a job without
    # validated days; a job rollback without both job and to.
    walk.refused("playbooks/phase4_cutover.yml", (), "phase 4 moves exactly one job: pass -e job=NAME")
    walk.refused("playbooks/phase4_cutover.yml", ("-e", "job=nosuch"), "job 'nosuch' is not a configured job")
    walk.refused("playbooks/phase4_cutover.yml", ("-e", "job=basis"), "job basis has 0 validated day(s)",
                 "jram.dumphost.dump_compare")
    for args in (("-e", "job=basis"), ("-e", "to=legacy"), ("-e", "job=basis", "-e", "to=retired")):
        walk.refused("playbooks/rollback.yml", args, "-e job=NAME")

    # Both programs for the back-dated days: the legacy scripts publish today's object, copied to
    # each day's legacy key as if they had run then; the new program runs for each day.
    for job, script, ext in (("contract_status", "ggh_contract_status.sh", "csv.gz"),
                             ("basis", "ggh_datatransit.sh", "sql.gz")):
        today = walk.legacy_run(script)
        walk.keys.add(f"dumps/{job}_{today}.{ext}")
        for day in (d1, d2):
            walk.copy(f"dumps/{job}_{today}.{ext}", f"dumps/{job}_{day.replace('-', '')}.{ext}")
            assert walk.dumpjob("run", job, "--parallel", "--date", day)["key"] == \
                f"dumps-test/{job}_{day.replace('-', '')}.{ext}"

    # 2 - validated days, and contract_status's entry due in a minute or so.
    due = _next_minute(45)
    due_tokyo = due.astimezone(TOKYO)
    fired_key = f"dumps-test/contract_status_{due_tokyo:%Y%m%d}.csv.gz"
    walk.delete(fired_key, fired_key + ".manifest.json")
    walk.keys.update({fired_key, fired_key + ".manifest.json"})
    walk.step("validate", CUTOVER_FIRE_SCHEDULE=f"{due_tokyo.minute} {due_tokyo.hour} * * *")
    ledger = walk.ledger()["jobs"]
    assert [(v["date"], v["verdict"]) for v in ledger["contract_status"]["verdicts"]] == \
        [(d1, "identical"), (d2, "identical")]
    assert "(query)" in ledger["contract_status"]["verdicts"][0]["details"]["tables"]
    assert [(v["date"], v["verdict"] in ("identical", "equivalent")) for v in ledger["basis"]["verdicts"]] == \
        [(d1, True), (d2, True)], ledger["basis"]["verdicts"]
    assert walk.entry("contract_status").endswith(
        f"\n{due.minute} {due.hour} * * * dumpjob /usr/local/bin/dumpjob run contract_status --parallel\n")
    assert walk.crontab() == original

    # 3 - phase 4 for basis: predicted in check mode without a change, then applied.
    before = walk.snapshot()
    check = walk.molecule("check", "cutover")
    assert re.search(r"\bchanged=[1-9]", "\n".join(_recaps(check, "check"))), _recaps(check, "check")
    assert "#jram.dumphost[basis] disabled" in check and _status_row(check, "basis")[1] == "cutover*"
    assert walk.snapshot() == before, "check mode changed the host"
    out = walk.step("cutover")
    marker = r"^#jram\.dumphost\[basis\] disabled \S+: 30 20 \* \* \* /home/ec2-user/scripts/ggh_datatransit\.sh "
    assert re.search(marker, walk.crontab(), re.M), walk.crontab()
    assert walk.entry("basis").endswith("\n30 20 * * * dumpjob /usr/local/bin/dumpjob run basis\n")
    assert _status_row(out, "basis")[1] == "cutover"

    # 4 - the rollback puts ec2-user's crontab back byte for byte.
    out = walk.step("rollback")
    assert walk.crontab() == original
    assert walk.entry("basis") is None
    assert _status_row(out, "basis")[1] == "legacy"

    # cron fired contract_status's entry in the UTC minute of its Tokyo test schedule: the program
    # ran as dumpjob with the instance role's credentials and published its object and manifest
    # to the emulated S3. cron read every file the walk wrote without complaint.
    started = time.monotonic()
    while not walk.landed(fired_key, due) and time.time() < due.timestamp() + 120:
        time.sleep(2)
    walk.timings.append(("waiting for cron to fire", time.monotonic() - started))
    cron_log = walk.host.exec("journalctl", "-u", "cron", "--no-pager", "-o", "short-unix").stdout
    assert walk.landed(fired_key, due), \
        f"cron did not publish s3://{BUCKET}/{fired_key}; cron said:\n{cron_log[-3000:]}"
    fired = [float(line.split()[0]) for line in cron_log.splitlines()
             if line.endswith("(dumpjob) CMD (/usr/local/bin/dumpjob run contract_status --parallel)")]
    assert fired and all(due.timestamp() <= when < due.timestamp() + 60 for when in fired), (due, cron_log[-3000:])
    assert due_tokyo.hour != due.hour  # the schedule really moved (9 hours)
    assert not [line for line in cron_log.splitlines() if "rror" in line], cron_log

    # 5 - contract_status cut over; basis back to parallel and cut over inside the soak (forced).
    out = walk.step("second_job")
    assert walk.phases() == {"basis": "cutover", "contract_status": "cutover", "schema_weekly": "parallel"}
    assert walk.entry("contract_status").endswith("\n0 21 * * * dumpjob /usr/local/bin/dumpjob run contract_status\n")
    forced = walk.ledger()["jobs"]["basis"]["transitions"][-1]
    assert (forced["from"], forced["to"], forced["forced"]) == ("parallel", "cutover", True)
    assert any("job contract_status entered cutover" in gate and "soak_days=2" in gate
               for gate in forced["overridden"]), forced
    for job in ("basis", "contract_status"):
        assert re.search(rf"^#jram\.dumphost\[{job}\] disabled ", walk.crontab(), re.M)

    # Production runs for the back-dated days, which the retire gate counts once recorded.
    for job in ("basis", "contract_status"):
        for day in (d1, d2):
            assert walk.dumpjob("run", job, "--date", day)["key"].startswith(f"dumps/{job}_")

    # 6 - the production runs recorded, both jobs retired. verify checks where the walk ends.
    out = walk.step("retire")
    assert walk.phases() == {"basis": "retired", "contract_status": "retired", "schema_weekly": "parallel"}
    assert _status_row(out, "basis")[-1] == "2"
    # phase 4's scan after each retirement: the retired jobs' scripts are gone from the legacy
    # places, schema_weekly's (still in parallel) is reported, not failed on.
    scans = re.findall(r"(\d+) file\(s\) scanned: (.*?)(?:'|$)", out, re.M)
    assert len(scans) == 2, out[-3000:]
    assert "1 hard-coded DB password(s) left" in scans[-1][1] and "ggh_schema_snapshot.sh" in out, scans
    walk.molecule("verify")
    assert LEGACY_DB_PASSWORD not in "\n".join(walk.log)


# --- The identity scenario --------------------------------------------------------------------

class IdentityWalk(CutoverWalk):
    scenario, step_variable = "identity", "IDENTITY_STEP"
    ESCROW_PREFIX = "jram-dumphost/escrow/"
    TAG_PREFIX = "jram-dumphost:phase3:"

    def __init__(self, sandbox, env: dict, tmp_path: Path):
        super().__init__(sandbox, env, tmp_path)
        self.ec2, self.iam, self.sm = (sandbox.client(s) for s in ("ec2", "iam", "secretsmanager"))
        self.instance_id = sandbox.state["instance_id"]
        self.imds = sandbox.settings.imds_url

    def doctor(self) -> dict:
        proc = self.host.exec("/usr/local/bin/dumpjob", "doctor", "--json", user="dumpjob", check=False)
        return {c["name"]: c for c in json.loads(proc.stdout.splitlines()[-1])["checks"]}

    def tokenless_status(self) -> str:
        return self.host.exec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              f"{self.imds}/latest/meta-data/", check=False).stdout

    def metadata(self) -> tuple:
        desc = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"][0]["Instances"][0]
        assocs = self.ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [self.instance_id]}])["IamInstanceProfileAssociations"]
        return ([a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in assocs],
                desc["MetadataOptions"]["HttpTokens"])

    def key_status(self) -> list[str]:
        return [k["Status"] for k in self.iam.list_access_keys(UserName=LEGACY_IAM_USER)["AccessKeyMetadata"]]

    def escrows(self) -> list[str]:
        pages = self.sm.get_paginator("list_secrets").paginate()
        return [s["Name"] for page in pages for s in page["SecretList"] if s["Name"].startswith(self.ESCROW_PREFIX)]

    def credentials(self) -> str | None:
        proc = self.host.exec("cat", "/home/ec2-user/.aws/credentials", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def reset_aws(self) -> None:
        """The sandbox instance and the static key as they were, whatever step failed."""
        for a in self.ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [self.instance_id]}])["IamInstanceProfileAssociations"]:
            self.ec2.disassociate_iam_instance_profile(AssociationId=a["AssociationId"])
        self.ec2.modify_instance_metadata_options(InstanceId=self.instance_id, HttpTokens="optional")
        tags = self.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [self.instance_id]}])["Tags"]
        record = [{"Key": t["Key"]} for t in tags if t["Key"].startswith(self.TAG_PREFIX)]
        if record:
            self.ec2.delete_tags(Resources=[self.instance_id], Tags=record)
        for key in self.iam.list_access_keys(UserName=LEGACY_IAM_USER)["AccessKeyMetadata"]:
            self.iam.update_access_key(UserName=LEGACY_IAM_USER, AccessKeyId=key["AccessKeyId"], Status="Active")
        for name in self.escrows():
            self.sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def _walk_identity(sandbox, env: dict, tmp_path: Path) -> None:
    walk = IdentityWalk(sandbox, env, tmp_path)
    walk.molecule("destroy", check=False)  # what an interrupted run left
    walk.reset_aws()
    try:
        _identity_steps(walk, sandbox.state["legacy_key"])
    finally:
        walk.reset_aws()
        walk.molecule("cleanup", check=False)
        walk.molecule("destroy", check=False)
        print("identity scenario timings:\n" + "\n".join(f"{t:7.1f}s  {what}" for what, t in walk.timings))
        print(f"identity scenario total: {sum(t for _, t in walk.timings):.1f}s")


def _identity_steps(walk: IdentityWalk, legacy_key: dict) -> None:
    walk.molecule("create")  # create and prepare: phase 1 in moto, the legacy state, phase 2
    static = walk.credentials()
    assert static and legacy_key["id"] in static and legacy_key["secret"] in static
    assert walk.metadata() == ([], "optional") and walk.key_status() == ["Active"]
    # Without a profile the sandbox IMDS answers 404 and doctor says the instance has no role.
    assert not walk.doctor()["instance_role"]["ok"]
    assert "has no IAM role" in walk.doctor()["instance_role"]["reason"]

    # 1 - phase 3 live: the role through IMDSv2, a token-less request refused.
    walk.step("phase3")
    assert walk.metadata() == (["jram-dumphost"], "required")
    host = walk.doctor()
    assert host["instance_role"]["ok"] and host["instance_role"]["role"] == "jram-dumphost"
    assert (host["aws_identity"]["role"], host["aws_identity"]["source"]) == ("jram-dumphost", "iam-role")
    assert walk.tokenless_status() == "401"

    # 2 - key retirement: no key left on the host, the IAM key inactive, escrowed, the scan clean,
    # and the legacy job still publishes, now with the instance role's credentials.
    out = walk.step("retire_keys")
    assert "no AWS key material" in out, out[-3000:]
    left = walk.credentials()
    assert left is None or "aws_access_key_id" not in left
    assert walk.key_status() == ["Inactive"]
    assert walk.escrows() == [f"{walk.ESCROW_PREFIX}ec2-user/{legacy_key['id']}"]
    walk.legacy_run("ggh_contract_status.sh")

    # 3 - the key back: the file byte for byte, the IAM key active, the escrow gone.
    walk.step("rollback_keys")
    assert walk.credentials() == static
    assert walk.host.exec("stat", "-c", "%U:%G %a", "/home/ec2-user/.aws/credentials").stdout.strip() == \
        "ec2-user:ec2-user 600"
    assert walk.key_status() == ["Active"] and walk.escrows() == []

    # 4 - phase 3 undone: no profile, IMDSv2 optional again.
    walk.step("rollback_phase3")
    assert walk.metadata() == ([], "optional")

    log = "\n".join(walk.log)
    assert LEGACY_DB_PASSWORD not in log and legacy_key["secret"] not in log
