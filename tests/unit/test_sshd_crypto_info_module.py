"""sshd_crypto_info's main(), driven as Ansible drives it, against this machine's real OpenSSH
client (the candidate check, which needs sshd, runs on a dump host container in
tests/integration/test_sshd_crypto.py): the version and `ssh -Q` lists come back as data, the
chosen algorithms are the table's cut to them, check mode is the same, and a missing client
fails with one line."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import sshd_crypto
from ansible_collections.jram.dumphost.plugins.modules import sshd_crypto_info
from sandboxtest import run_module

SSH = shutil.which("ssh")
pytestmark = pytest.mark.skipif(SSH is None, reason="no OpenSSH client on this machine")


def _query(what: str) -> list[str]:
    return subprocess.run([SSH, "-Q", what], capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize("check", [False, True])
def test_the_choice_is_this_builds(check):
    result = run_module(sshd_crypto_info.main, {}, check=check)
    assert result["changed"] is False and "refusals" not in result
    version = subprocess.run([SSH, "-V"], capture_output=True, text=True).stderr
    assert version.startswith(f"OpenSSH_{result['openssh_version']}")
    assert result["supported"]["KexAlgorithms"] == _query("kex")
    major, minor = (int(part) for part in result["openssh_version"].split("."))
    algorithms = result["algorithms"]
    assert algorithms == sshd_crypto.choose((major, minor), result["supported"])
    assert set(algorithms["KexAlgorithms"].split(",")) <= set(_query("kex"))
    assert set(algorithms["MACs"].split(",")) <= set(_query("mac"))


def test_a_missing_client_fails_with_one_line():
    result = run_module(sshd_crypto_info.main, {"ssh_bin": "/nonexistent/ssh"})
    assert result["failed"] is True
    assert result["msg"].startswith("/nonexistent/ssh not found: install the OpenSSH client")
    assert "\n" not in result["msg"]
