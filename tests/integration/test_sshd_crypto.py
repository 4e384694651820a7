"""sshd after phase 2, as an outside auditor sees it: on a dump host container of this module's
own, the hardened sshd (started on a free loopback port for the test, stopped by its PID after)
offers nothing ssh-audit fails, and the admin user still logs in with its key, the host's key
checked. Before that, phase 2 refuses, before any change, a configuration that would leave the
admin user with no accepted key type. (A second run's changed=0 is the molecule scenario
`default`'s idempotence step.)"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sandboxtest import run_playbook

PLAYBOOK = "playbooks/phase2_parallel.yml"
DROPIN = "/etc/ssh/sshd_config.d/00-jram-hardening.conf"
AUTHORIZED = "/home/ec2-user/.ssh/authorized_keys"
PIDFILE = "/run/sshd-audit.pid"
# A key line of a type the hardened set refuses; sshd is never asked to parse its blob.
DSS_ONLY = "ssh-dss AAAAB3NzaC1kc3MAAACBAPlaceholderForTheTest ec2-user@legacy\n"


def _plant(host, content: str) -> None:
    host.exec("install", "-d", "-o", "ec2-user", "-g", "ec2-user", "-m", "0700", "/home/ec2-user/.ssh")
    host.exec("sh", "-c", f"cat > {AUTHORIZED} && chown ec2-user: {AUTHORIZED} && chmod 0600 {AUTHORIZED}",
              input=content)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _sshd(host):
    """The host's sshd, as configured, on a free loopback port; stopped by its PID afterwards."""
    port = _free_port()
    host.exec("/usr/sbin/sshd", "-p", str(port), "-o", "ListenAddress=127.0.0.1", "-o", f"PidFile={PIDFILE}")
    try:
        yield port
    finally:
        host.exec("kill", host.exec("cat", PIDFILE).stdout.strip())


def _audit_fails(port: int) -> list[str]:
    """Every algorithm ssh-audit marks `fail`, and every CVE it names, for the sshd on this port."""
    proc = subprocess.run([Path(sys.executable).parent / "ssh-audit", "-j", "--skip-rate-test", "-p", str(port),
                           "127.0.0.1"], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    assert report.get("banner", {}).get("software", "").startswith("OpenSSH"), proc.stdout[:500]
    fails = [f"{kind}: {entry.get('algorithm')}: {entry['notes']['fail']}"
             for kind in ("kex", "key", "enc", "mac") for entry in report.get(kind, [])
             if entry.get("notes", {}).get("fail")]
    return fails + [f"CVE {cve.get('name')}" for cve in report.get("cves", [])]


def test_ssh_audit_fails_the_legacy_hosts_sshd(fresh_host):
    """What the test below rules out, seen on the host before phase 2."""
    with _sshd(fresh_host) as port:
        fails = _audit_fails(port)
    assert any("hmac-sha1" in fail for fail in fails) and any("nistp" in fail for fail in fails), fails


@pytest.fixture(scope="module")
def admin_key(tmp_path_factory) -> Path:
    key = tmp_path_factory.mktemp("sshd-crypto") / "admin_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ec2-user@operator", "-f", str(key)],
                   check=True)
    return key


def test_an_admin_whose_keys_would_all_be_refused_stops_phase2_before_any_change(fresh_host, aws_env):
    _plant(fresh_host, DSS_ONLY)
    proc = run_playbook(PLAYBOOK, host=fresh_host.host, env=aws_env, check=False)
    assert proc.returncode != 0
    failed = [line for line in proc.stdout.splitlines() if "FAILED!" in line or "[ERROR]" in line]
    assert any("ec2-user would be locked out" in line and "(ssh-dss)" in line
               and "add an ssh-ed25519 key for ec2-user" in line for line in failed), proc.stdout[-3000:]
    assert fresh_host.exec("test", "-e", DROPIN, check=False).returncode != 0
    assert fresh_host.exec("id", "dumpjob", check=False).returncode != 0


@pytest.fixture(scope="module")
def hardened_sshd(fresh_host, aws_env, admin_key):
    """Phase 2 on the module's host with the admin's key planted, then its sshd on a loopback port."""
    _plant(fresh_host, admin_key.with_suffix(".pub").read_text())
    run_playbook(PLAYBOOK, host=fresh_host.host, env=aws_env)
    with _sshd(fresh_host) as port:
        yield port


def test_the_drop_in_sets_the_algorithms_for_the_hosts_openssh(fresh_host, hardened_sshd):
    dropin = dict(line.split(" ", 1) for line in fresh_host.exec("cat", DROPIN).stdout.splitlines()
                  if line and not line.startswith("#"))
    assert dropin["KexAlgorithms"].startswith("sntrup761x25519-sha512"), dropin  # Debian 12: OpenSSH 9.2
    assert "nistp" not in dropin["KexAlgorithms"] + dropin["HostKeyAlgorithms"]
    assert "sha1" not in dropin["MACs"] and "ssh-rsa" not in dropin["PubkeyAcceptedAlgorithms"].split(",")


def test_ssh_audit_reports_no_fail(hardened_sshd):
    assert _audit_fails(hardened_sshd) == []


def test_the_admin_logs_in_with_its_key_and_the_host_key_checked(hardened_sshd, admin_key, tmp_path):
    known = tmp_path / "known_hosts"
    scan = subprocess.run(["ssh-keyscan", "-p", str(hardened_sshd), "127.0.0.1"], capture_output=True, text=True,
                          timeout=60)
    assert scan.stdout.strip(), scan.stderr
    assert "ecdsa-sha2-nistp256" not in scan.stdout  # the hardened sshd offers no NIST-curve host key
    known.write_text(scan.stdout)
    login = subprocess.run(["ssh", "-i", str(admin_key), "-p", str(hardened_sshd), "-o", "StrictHostKeyChecking=yes",
                            "-o", f"UserKnownHostsFile={known}", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                            "-o", "PasswordAuthentication=no", "ec2-user@127.0.0.1", "id", "-un"],
                           capture_output=True, text=True, timeout=60)
    assert login.returncode == 0 and login.stdout.strip() == "ec2-user", login.stderr

