"""Rebuild a lost host in one command: playbooks/site.yml on a fresh container from the sandbox
image (no legacy scripts, no crontab, no keys; ec2-user with the key pair's public key, as EC2
starts an instance from an AMI), with an EC2 instance record, IMDS emulator, bucket and phase 1
names of this module's own (phase3_host.Phase3).

The host ends hardened with every job in production, recorded in the ledger as built there; cron
fires one job (its entry set a minute ahead) and the object lands in moto; a second run changes
nothing. The rebuild's duration is printed (README.md, "Rebuild a lost host", records it)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import time
from zoneinfo import ZoneInfo

import pytest
import yaml
from cutover_host import Ansible
from phase3_host import REPO, Phase3
from sandboxtest import make_host, remove_host

pytestmark = pytest.mark.identity

SITE = "site.yml"
JOBS = sorted(yaml.safe_load((REPO / "inventories/sandbox/group_vars/all.yml").read_text())["dumpjob_jobs"])
FIRED_JOB = "contract_status"


@pytest.fixture(scope="module")
def new_host(sandbox):
    """A container as the image is, with what EC2 puts on a new instance: ec2-user and its key."""
    name = f"{sandbox.host}-t-site"
    host = make_host(sandbox, name, legacy=False)
    host.exec("useradd", "--create-home", "--uid", "1000", "--shell", "/bin/bash", "ec2-user")
    host.exec("install", "-d", "-o", "ec2-user", "-g", "ec2-user", "-m", "0700", "/home/ec2-user/.ssh")
    host.exec("bash", "-c", "ssh-keygen -q -t ed25519 -N '' -C ec2-user@admin-laptop -f /root/admin_key && "
              "install -o ec2-user -g ec2-user -m 0600 /root/admin_key.pub /home/ec2-user/.ssh/authorized_keys && "
              "rm -f /root/admin_key /root/admin_key.pub")
    yield host
    remove_host(name)


@pytest.fixture(scope="module")
def site(sandbox, new_host, aws_env, tmp_path_factory):
    env = Phase3(sandbox, new_host, aws_env, tmp_path_factory.mktemp("site"))
    try:
        env.create_instance_and_imds()
        yield env
    finally:
        problems = env.destroy()
        sns = sandbox.client("sns")
        for topic in sns.list_topics()["Topics"]:
            if topic["TopicArn"].endswith(f":{env.name}-alarms"):
                sns.delete_topic(TopicArn=topic["TopicArn"])
        assert not problems, problems


def test_site_rebuilds_a_new_host_in_one_command(site, new_host, tmp_path):
    # the starting point: a new host, nothing of the journey on it
    assert new_host.exec("crontab", "-l", "-u", "ec2-user", check=False).returncode != 0
    assert new_host.exec("test", "-e", "/home/ec2-user/scripts", check=False).returncode != 0
    assert new_host.exec("test", "-e", "/home/ec2-user/.aws", check=False).returncode != 0
    assert site.association() is None and site.options() == ("optional", 2)

    started = time.monotonic()
    run = site.play(SITE)
    took = time.monotonic() - started
    print(f"\nsite.yml rebuilt the host in {took:.0f} s ({took / 60:.1f} min)")
    assert run.rc == 0, run.out[-8000:]

    # hardened: the sshd drop-in, as sshd reads it, and the dump program's locked-down user
    sshd = new_host.exec("/usr/sbin/sshd", "-T", "-C", "user=ec2-user,host=x,addr=127.0.0.1").stdout.lower()
    assert "passwordauthentication no" in sshd and "permitrootlogin no" in sshd
    assert "nologin" in new_host.exec("getent", "passwd", "dumpjob").stdout
    # the instance role attached, IMDSv2 required with a hop limit of 1
    assert site.association() == site.profile_arn()
    assert site.options() == ("required", 1)
    assert site.imds_status(token=False) == 401 and site.imds_status(token=True) == 200

    # every job in production, recorded once as built there (no made-up legacy or parallel history)
    status = Ansible(new_host, tmp_path).run("jram.dumphost.cutover_status_info", {"jobs": JOBS})
    assert status["by_phase"]["cutover"] == JOBS, status["by_phase"]
    ledger = json.loads(new_host.exec("cat", "/var/lib/dumpjob/cutover.json").stdout)
    for job in JOBS:
        (transition,) = ledger["jobs"][job]["transitions"]
        assert (transition["from"], transition["to"], transition.get("built")) == (None, "cutover", True), transition
        entry = new_host.exec("cat", f"/etc/cron.d/dumpjob-{job}").stdout
        assert f"run {job}" in entry and "--parallel" not in entry

    # cron fires the job's entry as installed, set a minute ahead; the object lands in moto
    key = fire_one_minute_ahead(new_host, site, FIRED_JOB)
    objects = site.s3.list_objects_v2(Bucket=site.name, Prefix=key).get("Contents", [])
    assert sorted(o["Key"] for o in objects) == [key, f"{key}.manifest.json"], objects

    again = site.play(SITE)
    print(f"site.yml again (nothing to change) in {again.ended - again.started:.0f} s")
    assert again.rc == 0, again.out[-6000:]
    assert again.changed == 0, [block.split("]", 1)[0] for block in again.out.split("\nTASK [")
                                if re.search(r"^changed: ", block, re.M)]


def fire_one_minute_ahead(host, site, job: str, timeout: float = 240) -> str:
    """Rewrite the time fields of the job's cron entry to the next whole minute (two when that is
    less than 20 s away), wait for the object cron's run publishes, put the entry back; its key."""
    path = f"/etc/cron.d/dumpjob-{job}"
    original = host.exec("cat", path).stdout
    now = dt.datetime.now(dt.timezone.utc)
    host_zone = host.exec("cat", "/etc/timezone", check=False).stdout.strip() or "Etc/UTC"
    at = (now + dt.timedelta(minutes=2 if now.second > 40 else 1)).astimezone(ZoneInfo(host_zone))
    lines = original.splitlines(keepends=True)
    line = re.compile(r"^\S+ \S+ \S+ \S+ \S+ (\S+ .*\brun " + re.escape(job) + r"\b.*)$")
    edited = [line.sub(rf"{at.minute} {at.hour} * * * \1", text) for text in lines]
    assert edited != lines, original
    host.exec("bash", "-c", f"cat > {path}.new && chmod 0644 {path}.new && mv {path}.new {path}",
              input="".join(edited))
    key = f"dumps/{job}_{at.astimezone(ZoneInfo('Asia/Tokyo')):%Y%m%d}.csv.gz"
    try:
        deadline = time.monotonic() + timeout
        while not site.s3.list_objects_v2(Bucket=site.name, Prefix=key).get("KeyCount"):
            assert time.monotonic() < deadline, (
                f"cron did not publish {key} by {at:%H:%M} + {timeout:.0f} s:\n"
                + host.exec("journalctl", "-u", "cron", "--no-pager", "-n", "30", check=False).stdout)
            time.sleep(5)
    finally:
        host.exec("bash", "-c", f"cat > {path}.new && chmod 0644 {path}.new && mv {path}.new {path}",
                  input=original)
    return key


def test_a_host_with_legacy_lines_is_refused_before_any_change(sandbox, site, new_host, tmp_path):
    """site.yml builds new hosts only: the legacy host (the sandbox's, phase by phase) is refused by
    the cutover checks before harden or any role changes it. Run against a second legacy container."""
    name = f"{sandbox.host}-t-site-legacy"
    legacy = make_host(sandbox, name)
    try:
        before = legacy.exec("ls", "-A", "/etc/cron.d", "/etc/ssh/sshd_config.d").stdout
        run = site.play(SITE, env={"SANDBOX_HOST": name})
        assert run.rc != 0
        assert re.search(r"crontab of user ec2-user has legacy lines of job basis \(line \d+\): this host is not "
                         r"new; migrate the job phase by phase", run.one_line()), run.out[-4000:]
        assert legacy.exec("ls", "-A", "/etc/cron.d", "/etc/ssh/sshd_config.d").stdout == before
        assert subprocess.run(["podman", "exec", name, "id", "dumpjob"], capture_output=True).returncode != 0
    finally:
        remove_host(name)
