"""Fixtures for running jram.dumphost modules against the sandbox's dump host container, which
is put back exactly as it was found afterwards (other tests use it too): the legacy crontab of
ec2-user is used as it is and reinstalled byte for byte when a test left it changed."""

from __future__ import annotations

import subprocess

import pytest
from cutover_host import CRON_USER, FIRED, FIRED_DIR, OUR_CRON_D, OURS, STUB, STUB_DIR, Ansible


def _host_state(sandbox) -> dict:
    crontab = sandbox.exec("crontab", "-l", "-u", "ec2-user", check=False)
    return {
        "crontab": crontab.stdout if crontab.returncode == 0 else None,
        "cron_d": [name for name in sandbox.exec("ls", "-A", "/etc/cron.d").stdout.split() if OUR_CRON_D.match(name)],
        "ours": [p for p in OURS if sandbox.exec("test", "-e", p, check=False).returncode == 0],
        "user": sandbox.exec("id", CRON_USER, check=False).returncode == 0,
        "scripts": sandbox.exec("ls", "-l", "/home/ec2-user/scripts").stdout,
    }


@pytest.fixture(scope="module")
def dumphost(sandbox):
    """The dump host with what cron_cutover needs and later roles provide (a system user for the
    new entries, a dumpjob program: here a stub that logs its arguments), restored as found."""
    found = _host_state(sandbox)
    assert found["crontab"] is not None, "ec2-user has no crontab: the sandbox host is not in its legacy state"
    leftovers = found["ours"] + found["cron_d"] + ([CRON_USER] if found["user"] else [])
    assert not leftovers, f"left over from an earlier run: {leftovers}"
    sandbox.exec("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", CRON_USER)
    sandbox.exec("install", "-d", "-m", "0755", STUB_DIR)
    sandbox.exec("install", "-d", "-o", CRON_USER, "-m", "0755", FIRED_DIR)
    sandbox.exec("bash", "-c", f"cat > {STUB} && chmod 0755 {STUB}",
                 input=f'#!/bin/sh\necho "$(date -u +%Y-%m-%dT%H:%M:%S) $(id -un) $*" >> {FIRED}\n')
    try:
        yield sandbox
    finally:
        for name in _host_state(sandbox)["cron_d"]:
            sandbox.exec("rm", "-f", f"/etc/cron.d/{name}")
        if _host_state(sandbox)["crontab"] != found["crontab"]:
            sandbox.exec("crontab", "-u", "ec2-user", "-", input=found["crontab"])
        sandbox.exec("rm", "-rf", *OURS)
        sandbox.exec("userdel", CRON_USER)
        assert _host_state(sandbox) == found, "the host was not restored as found"


@pytest.fixture
def ansible(sandbox, tmp_path):
    return Ansible(sandbox, tmp_path)


@pytest.fixture(scope="module")
def phase3_keys(sandbox, fresh_host, aws_env, tmp_path_factory, request):
    """The module's Phase3 environment (phase3_host: phase 1 and phase 2 done, an instance record and
    IMDS emulator of its own) and ec2-user's static key of its own (test_static_keys.Keys), removed
    afterwards, the host's metadata rule set included."""
    from phase3_host import Phase3
    from test_static_keys import Keys

    p3 = Phase3(sandbox, fresh_host, aws_env, tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    keys = Keys(p3)
    try:
        p3.create()
        keys.create()
        yield p3, keys
    finally:
        keys.destroy()
        problems = p3.destroy()
        assert not problems, problems
        left = subprocess.run(["nft", "list", "table", "inet", p3.imds_table], capture_output=True).returncode == 0
        assert not left, f"table inet {p3.imds_table} is left in this machine's network namespace"
