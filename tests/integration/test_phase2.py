"""Phase 2's host half refuses bad input before it changes anything, and its check mode on a
legacy host predicts changes without making them. (Converge, idempotence, check on a
converged host and the result on the host are the molecule `default` scenario's.)"""

import json

import pytest
from sandboxtest import run_playbook

from sandbox.config import LEGACY_DB_PASSWORD

PLAYBOOK = "playbooks/phase2_parallel.yml"


def _untouched(host) -> None:
    assert host.exec("id", "dumpjob", check=False).returncode != 0, "the dumpjob user was created"
    assert host.exec("test", "-e", "/etc/ssh/sshd_config.d/00-jram-hardening.conf", check=False).returncode != 0
    assert host.exec("test", "-e", "/opt/dumpjob", check=False).returncode != 0
    assert host.exec("stat", "-c", "%a", "/etc/crontab").stdout.strip() == "644"


def _jobs_with(**changes) -> str:
    """dumpjob_jobs of the sandbox inventory with one job's keys changed, as -e JSON."""
    job = {"kind": "mysqldump", "databases": ["basis"], "key": "dumps/basis_{date:%Y%m%d}.sql.gz",
           "schedule": "30 5 * * *"}
    job.update(changes)
    return json.dumps({"dumpjob_jobs": {"basis": {k: v for k, v in job.items() if v is not None}}})


# Job definitions are refused by the same validator in phase 1, whose tests cover every case;
# here one job case shows phase 2 runs it first; the sshd, program and cutover cases are phase 2's own.
@pytest.mark.parametrize("extra, variable", [
    (json.dumps({"harden_sshd_options": {"PasswordAuthentication": "sometimes"}}), "harden_sshd_options"),
    (json.dumps({"harden_sshd_options": {"NoSuchOption": "yes"}}), "harden_sshd_options"),
    (_jobs_with(kind="pg_dump"), "kind"),
    (json.dumps({"cutover_jobs": {}}), "cutover_jobs"),
    (json.dumps({"dumpjob_ssl_ca_bundle": {"url": "http://example.com/ca.pem"}}), "dumpjob_ssl_ca_bundle"),
    (json.dumps({"dumpjob_ssl_ca_bundle": {"src": "/tmp/ca.pem", "dest": "/etc/dumpjob/other.pem"}}),
     "dumpjob_ssl_ca_bundle"),
])
def test_bad_input_is_refused_before_any_change(fresh_host, aws_env, extra, variable):
    proc = run_playbook(PLAYBOOK, "-e", extra, host=fresh_host.host, env=aws_env, check=False)
    assert proc.returncode != 0
    failed = [line for line in proc.stdout.splitlines() if "FAILED!" in line or "[ERROR]" in line]
    assert failed and any(variable in line for line in failed), proc.stdout[-3000:]
    _untouched(fresh_host)


# Inputs only the roles' argument specs check: refused by the spec of the read-only entry point phase 2 runs
# before harden (ansible-core picks the spec named exactly as tasks_from; tests/unit/test_role_entry_points.py
# shows every entry point called has one), not by the role's main spec after harden changed the host.
@pytest.mark.parametrize("extra, variable, entry", [
    ({"dumpjob_logrotate_days": "weekly"}, "dumpjob_logrotate_days", "validate"),
    ({"cutover_soak_days": "two"}, "cutover_soak_days", "checks"),
])
def test_inputs_checked_by_argument_specs_are_refused_before_any_change(fresh_host, aws_env, extra, variable, entry):
    proc = run_playbook(PLAYBOOK, "-e", json.dumps(extra), host=fresh_host.host, env=aws_env, check=False)
    assert proc.returncode != 0
    assert "Validation of arguments failed" in proc.stdout and f"argument '{variable}'" in proc.stdout, \
        proc.stdout[-3000:]
    assert f"argument_spec_name: {entry}" in proc.stdout, proc.stdout[-3000:]
    _untouched(fresh_host)


# MYSQL_PWD and AWS_SHARED_CREDENTIALS_FILE name no secret/password/token/access_key: refused by name
# (any case); every refused name is tested against the role's check in tests/unit/test_dumpjob_role_client.py.
@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "MYSQL_PWD", "aws_shared_credentials_file"])
def test_credentials_in_the_program_environment_are_refused(fresh_host, aws_env, name):
    extra = json.dumps({"dumpjob_environment": {name: "x"}})
    proc = run_playbook(PLAYBOOK, "-e", extra, host=fresh_host.host, env=aws_env, check=False)
    assert proc.returncode != 0 and f"dumpjob_environment: {name} must not be set" in proc.stdout, proc.stdout[-3000:]
    _untouched(fresh_host)


def test_check_mode_on_a_legacy_host_predicts_and_changes_nothing(fresh_host, aws_env):
    proc = run_playbook(PLAYBOOK, "--check", "--diff", "-vvv", host=fresh_host.host, env=aws_env)
    assert LEGACY_DB_PASSWORD not in proc.stdout
    recap = [line for line in proc.stdout.splitlines() if line.startswith("jram-dumphost ")]
    assert recap and "failed=0" in recap[0]
    changed = int(recap[0].split("changed=")[1].split()[0])
    assert changed >= 5, recap
    _untouched(fresh_host)
