"""playbooks/rotate_db_password.yml against the sandbox's MariaDB and moto, on a dump host of this
module's own (phase3_host.Phase3: phase 1 and 2 done with this module's names, its own instance
record and IMDS emulator). Phase 1 stores a secret of this module's own for a database user of
its own (the reader's grants): the shared reader and its secret are never touched."""

from __future__ import annotations

import json
import re
import threading
import uuid

import pymysql
import pytest
from phase3_host import Phase3

from sandbox import config

ROTATE = "rotate_db_password.yml"
STEPS = ("create", "set", "test", "finish")
CA = None


def _sql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Rotating:
    def __init__(self, sandbox, p3: Phase3):
        self.sandbox, self.p3, self.sm = sandbox, p3, p3.sm
        self.user = f"rot_{uuid.uuid4().hex[:8]}"
        self.seed = f"seed'Pass#{uuid.uuid4().hex[:6]}"
        self.port = config.load().mariadb_port

    def stages(self) -> dict:
        found = {}
        for version, stages in self.sm.describe_secret(SecretId=self.p3.secret)["VersionIdsToStages"].items():
            for stage in stages:
                found[stage] = version
        return found

    def password(self, stage: str = "AWSCURRENT") -> str:
        value = self.sm.get_secret_value(SecretId=self.p3.secret, VersionStage=stage)["SecretString"]
        return json.loads(value)["password"]

    def accepts(self, password: str) -> bool:
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user=self.user, password=password.encode(),
                            connect_timeout=5).close()
        except pymysql.err.OperationalError as exc:
            assert exc.args[0] == 1045, exc
            return False
        return True

    def play(self, *args: str, stop: str = ""):
        return self.p3.play(ROTATE, *args, env={"JRAM_DUMPHOST_ROTATION_STOP_AFTER": stop} if stop else None)

    def ledger(self) -> dict:
        proc = self.p3.host.exec("cat", "/var/lib/dumpjob/rotations.json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else {"rotations": []}


@pytest.fixture(scope="module")
def rot(sandbox, fresh_host, aws_env, tmp_path_factory):
    p3 = Phase3(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp("rotation"))
    r = Rotating(sandbox, p3)
    sandbox.sql(f"CREATE USER '{r.user}'@'%' IDENTIFIED BY {_sql_quote(r.seed)};\n"
                f"GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, PROCESS, RELOAD ON *.* TO '{r.user}'@'%';")
    p3.extra["aws_identity_secrets"] = [{
        "name": p3.secret, "description": "rotation test user", "host": "127.0.0.1", "port": r.port,
        "username": r.user, "password": r.seed, "dbname": "basis"}]
    try:
        p3.create()
        p3.set_state(p3.profile_arn(), "required", 2)  # the host reads the secret with the instance role
        yield r
    finally:
        problems = p3.destroy()
        sandbox.sql(f"DROP USER IF EXISTS '{r.user}'@'%';")
        assert not problems, problems


def _ok(run) -> None:
    assert run.rc == 0, run.out[-6000:]


def test_check_mode_changes_nothing(rot):
    before = rot.stages()
    run = rot.play("--check", "--diff")
    _ok(run)
    assert run.changed > 0 and '"AWSPENDING": "pending-new-version"' in run.out  # the create step's diff
    assert rot.stages() == before and "AWSPENDING" not in before
    assert rot.accepts(rot.seed)
    assert rot.ledger()["rotations"] == []


def test_rotate(rot):
    old_version = rot.stages()["AWSCURRENT"]
    seen: list[bytes] = []
    done = threading.Event()

    def sample() -> None:  # every process's argv and environment on the host, while the run lasts
        while not done.is_set():
            proc = rot.p3.host.exec("sh", "-c", "cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null",
                                    check=False)
            seen.append(proc.stdout.encode())
            done.wait(0.3)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        run = rot.play("-vvv", "--diff")
    finally:
        done.set()
        thread.join()
    _ok(run)
    new = rot.password()
    stages = rot.stages()
    assert stages["AWSCURRENT"] != old_version and stages["AWSPREVIOUS"] == old_version
    assert "AWSPENDING" not in stages
    assert rot.password("AWSPREVIOUS") == rot.seed
    assert not rot.accepts(rot.seed) and rot.accepts(new)
    for form in (new, json.dumps(new)[1:-1]):
        assert form not in run.out
        assert not any(form.encode() in chunk for chunk in seen)
    assert len(seen) > 3
    found = rot.p3.host.exec("grep", "-rlF", "--", new, "/etc", "/var", "/tmp", "/root", "/home", "/usr/local",
                             check=False)
    assert found.returncode == 1 and not found.stdout, found.stdout
    # the next dump logs in with the new AWSCURRENT, without a redeploy or restart
    dump = rot.p3.host.exec("runuser", "-u", "dumpjob", "--", "/usr/local/bin/dumpjob", "run", "schema_weekly",
                            "--parallel", check=False)
    assert dump.returncode == 0, dump.stderr[-3000:]
    assert '"stage":"AWSCURRENT"' in dump.stderr.replace(" ", "") and new not in dump.stderr
    entry = rot.ledger()["rotations"][-1]
    assert entry["outcome"] == "rotated" and entry["old_version"] == old_version
    assert entry["new_version"] == stages["AWSCURRENT"] and set(entry["steps"]) == set(STEPS)
    assert new not in json.dumps(rot.ledger())
    # again at once: a second rotation
    again = rot.play()
    _ok(again)
    assert rot.password() != new and rot.stages()["AWSPREVIOUS"] == stages["AWSCURRENT"]
    assert not rot.accepts(new) and rot.accepts(rot.password())


@pytest.mark.parametrize("step", STEPS)
def test_interrupted_then_rolled_back_or_resumed(rot, step):
    before, old = rot.stages(), rot.password()
    stopped = rot.play(stop=step)
    assert stopped.rc != 0 and f"stopped after the {step} step" in stopped.out
    if step in ("set", "test"):
        # the database has the new password, AWSCURRENT the old one: a dump gets in through AWSPENDING
        dump = rot.p3.host.exec("runuser", "-u", "dumpjob", "--", "/usr/local/bin/dumpjob", "run", "schema_weekly",
                                "--parallel", check=False)
        assert dump.returncode == 0, dump.stderr[-3000:]
        assert '"event":"auth_retry"' in dump.stderr and '"stage":"AWSPENDING"' in dump.stderr.replace(" ", "")
        for password in (old, rot.password("AWSPENDING")):
            assert password not in dump.stderr
    back = rot.play("-e", "rotation=rollback")
    _ok(back)
    assert rot.stages() == before and rot.accepts(old) and rot.password() == old
    assert rot.ledger()["rotations"][-1]["outcome"] == "rolled_back"
    # and stopped at the same step again, a plain run finishes the rotation
    assert rot.play(stop=step).rc != 0
    resumed = rot.play()
    _ok(resumed)
    new = rot.password()
    assert new != old and rot.stages()["AWSPREVIOUS"] == before["AWSCURRENT"] and "AWSPENDING" not in rot.stages()
    assert rot.accepts(new) and not rot.accepts(old)
    entry = rot.ledger()["rotations"][-1]
    assert entry["outcome"] == "rotated" and set(entry["steps"]) == set(STEPS)
    idle = rot.play("-e", "rotation=rollback")
    _ok(idle)
    assert idle.changed == 0 and "nothing to roll back" in idle.out


def test_phase1_again_leaves_the_rotated_password(rot):
    current, stages = rot.password(), rot.stages()
    run = rot.p3.play("phase1_infra.yml")
    _ok(run)
    assert run.changed == 0, run.changed_tasks
    assert rot.password() == current and rot.stages() == stages and rot.accepts(current)
    forced = rot.p3.play("phase1_infra.yml", extra={"aws_identity_secret_overwrite": True})
    assert forced.rc != 0 and re.search(r"was rotated .* nothing was changed", forced.one_line())
    assert rot.password() == current and rot.stages() == stages
