"""The harden role's OS areas and sshd settings measured by lynis (3.0.8, the Debian package,
installed with apt in this module's own host container only): the legacy host, the same host after
phase 2 with every area below off, then after phase 2 with the role's defaults (phase 1 and an
IMDS emulator of the module's own, phase3_host.Phase3, so that a dump can run there as cron would
run it). As on a production host, sshd runs during every audit (on a free loopback port, stopped
by its PID after), so lynis scores its configuration (SSH-7408) on each host alike."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from dataclasses import dataclass

import pytest
from phase3_host import Phase3
from sandboxtest import run_playbook

PLAYBOOK = "playbooks/phase2_parallel.yml"
LYNIS = "lynis=3.0.8-1.1"
SSHD_PIDFILE = "/run/sshd-lynis.pid"
# Each area of the role and the lynis tests it targets.
AREAS = {
    "ssh": ["SSH-7408"],
    "coredump": ["KRNL-5820"],
    "umask": ["AUTH-9328"],
    "login_defs": ["AUTH-9230", "AUTH-9286"],
    "modules": ["NETW-3200", "USB-1000", "STRG-1846"],
    "pwquality": ["AUTH-9262"],
    "auditd": ["ACCT-9628"],
    "accounting": ["ACCT-9622", "ACCT-9626"],
    "banner": ["BANN-7126", "BANN-7130"],
}
# auditd cannot run in a container (no access to the kernel's audit subsystem): its lynis test
# only moves on a real host.
CONTAINER_BOUND = {"ACCT-9628"}
# Suggestions the role declines on purpose (roles/harden/README.md): sshd stays on port 22.
DECLINED = {"SSH-7408": ["suggestion: Consider hardening SSH configuration [Port (set 22 to )]"]}
# What the areas earn on the container (see roles/harden/README.md for the breakdown); a real
# host also earns auditd's and the applied sysctl set's (KRNL-6000).
MIN_GAIN = 15


@dataclass
class Lynis:
    index: int
    findings: dict[str, list[str]]    # test id -> its suggestion[]/warning[] lines
    points: dict[str, tuple[int, int]]  # test id -> (earned, possible)

    def of(self, tests) -> dict:
        return {t: (sorted(self.findings.get(t, [])), self.points.get(t, (0, 0))) for t in tests}


@contextlib.contextmanager
def _sshd(host):
    """The host's sshd, as configured, on a free loopback port (the container shares this
    machine's network and its port 22); stopped by its PID afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host.exec("/usr/sbin/sshd", "-p", str(port), "-o", "ListenAddress=127.0.0.1", "-o", f"PidFile={SSHD_PIDFILE}")
    try:
        yield
    finally:
        host.exec("kill", host.exec("cat", SSHD_PIDFILE).stdout.strip())


def lynis(host) -> Lynis:
    with _sshd(host):
        host.exec("lynis", "audit", "system", "--quick", "--no-colors")
    report = host.exec("cat", "/var/log/lynis-report.dat").stdout
    index = int(re.search(r"^hardening_index=(\d+)$", report, re.M).group(1))
    findings: dict[str, list[str]] = {}
    for kind, test, text, details in re.findall(r"^(suggestion|warning)\[\]=([A-Z]+-\d+)\|([^|]*)\|([^|]*)",
                                                report, re.M):
        findings.setdefault(test, []).append(f"{kind}: {text}" + (f" [{details}]" if details not in ("", "-") else ""))
    points: dict[str, tuple[int, int]] = {}
    test = ""
    for line in host.exec("cat", "/var/log/lynis.log").stdout.splitlines():
        if m := re.search(r"Performing test ID (\S+)", line):
            test = m.group(1)
        elif m := re.search(r"Hardening: assigned (?:partial|maximum) number of hardening points.*?"
                            r"\((\d+)(?: of (\d+))?\)", line):
            earned, possible = points.get(test, (0, 0))
            points[test] = (earned + int(m.group(1)), possible + int(m.group(2) or m.group(1)))
    return Lynis(index, findings, points)


@pytest.fixture(scope="module")
def measured(sandbox, fresh_host, aws_env, tmp_path_factory):
    fresh_host.exec("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                                f"apt-get install -y -qq --no-install-recommends {LYNIS} >/dev/null")
    result = {"legacy": lynis(fresh_host),
              "ec2-user": fresh_host.exec("getent", "shadow", "ec2-user").stdout.split(":")[2:8]}
    off = {f"harden_{area}_enabled": False for area in AREAS}
    run_playbook(PLAYBOOK, "-e", json.dumps(off), host=fresh_host.host, env=aws_env)
    result["off"] = lynis(fresh_host)
    p3 = Phase3(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp("lynis"))
    try:
        p3.create()  # phase 1 and phase 2 with the role's defaults
        result["hardened"] = lynis(fresh_host)
        result["p3"] = p3
        print(f"\nlynis hardening index: legacy {result['legacy'].index}, areas off {result['off'].index}, "
              f"hardened {result['hardened'].index}")
        yield result
    finally:
        problems = p3.destroy()
        assert not problems, problems


def test_the_hardened_host_scores_higher(measured):
    legacy, hardened = measured["legacy"], measured["hardened"]
    assert hardened.index >= legacy.index + MIN_GAIN, (legacy.index, hardened.index)
    for area, tests in AREAS.items():
        left = {t: kept for t, (f, _) in hardened.of(set(tests) - CONTAINER_BOUND).items()
                if (kept := [x for x in f if x not in DECLINED.get(t, [])])}
        assert not left, f"area {area}: lynis still suggests {left}"


@pytest.mark.parametrize("area", AREAS)
def test_an_area_off_leaves_its_lynis_tests_as_on_the_legacy_host(measured, area):
    assert measured["off"].of(AREAS[area]) == measured["legacy"].of(AREAS[area])
    assert measured["hardened"].of(AREAS[area]) != measured["legacy"].of(AREAS[area]) or area == "auditd"


def test_a_dump_still_runs_on_the_hardened_host(measured):
    p3 = measured["p3"]
    p3.set_state(p3.profile_arn(), "optional", 2)
    date = "2001-02-03"
    run = p3.host.exec("runuser", "-u", "dumpjob", "--", "/usr/local/bin/dumpjob", "run", "schema_weekly",
                       "--parallel", "--date", date, "--json", check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    head = p3.s3.head_object(Bucket=p3.name, Key="dumps-test/schema/basis_schema_20010203.sql.gz")
    assert head["ContentLength"] > 0


def test_phase2_makes_the_venv_readable_whatever_the_umask_was(measured):
    # What venv and pip leave under the umask 027 the role gives login sessions (sudo keeps it):
    # nothing for others, so not for the dump user either.
    p3 = measured["p3"]
    p3.host.exec("chmod", "-R", "o-rwx", "/opt/dumpjob/venv")
    denied = p3.host.exec("runuser", "-u", "dumpjob", "--", "/usr/local/bin/dumpjob", "--version", check=False)
    assert denied.returncode != 0
    # (a second phase 2 run with the areas on changes nothing: molecule's `default` idempotence)
    run = p3.play("phase2_parallel.yml")
    assert run.rc == 0 and run.changed == 1, run.changed_tasks or run.out[-4000:]
    version = p3.host.exec("runuser", "-u", "dumpjob", "--", "/usr/local/bin/dumpjob", "--version", check=False)
    assert version.returncode == 0, version.stdout + version.stderr


def test_no_account_is_aged_by_login_defs(measured):
    host = measured["p3"].host
    # the admin keeps its password ageing; the dump program's system user gets none (cron would
    # refuse its jobs once an aged password expired)
    assert host.exec("getent", "shadow", "ec2-user").stdout.split(":")[2:8] == measured["ec2-user"]
    assert host.exec("getent", "shadow", "dumpjob").stdout.split(":")[4] in ("", "99999")


def test_audit_rules_are_merged_and_name_the_dump_files(measured):
    host = measured["p3"].host
    assert host.exec("augenrules", "--check").stdout.strip().endswith("No change")
    rules = host.exec("cat", "/etc/audit/audit.rules").stdout
    for path in ("/etc/dumpjob/", "/usr/local/bin/dumpjob", "/etc/crontab", "/var/spool/cron/",
                 "/home/ec2-user/scripts/"):
        assert re.search(rf"^-w {re.escape(path)} -p \w+ -k [\w-]+$", rules, re.M), path
        assert host.exec("test", "-e", path, check=False).returncode == 0, f"{path} is watched but missing"
