"""Phase 2's host half on a host that started in the legacy state: hardened, legacy jobs
untouched, dumpjob installed and able to dump with the instance role's credentials."""

import json
import os

import boto3
import pytest

testinfra_hosts = [f"podman://{os.environ.get('SANDBOX_HOST', 'jram-dumphost')}-molecule"]

LEGACY_CRONTAB_JOBS = ("ggh_datatransit.sh", "ggh_contract_status.sh", "ggh_schema_snapshot.sh")


def test_dumpjob_user_is_a_system_user_without_login(host):
    user = host.user("dumpjob")
    assert user.exists and user.uid < 1000
    assert user.shell in ("/usr/sbin/nologin", "/sbin/nologin")
    assert user.group == "dumpjob"
    assert host.check_output("getent shadow dumpjob | cut -d: -f2").startswith("!")


@pytest.mark.parametrize("path, owner, group, mode", [
    ("/etc/dumpjob", "root", "dumpjob", 0o750),
    ("/var/lib/dumpjob", "root", "dumpjob", 0o750),
    ("/var/lib/dumpjob/state", "dumpjob", "dumpjob", 0o700),
    ("/var/log/dumpjob", "dumpjob", "dumpjob", 0o750),
    ("/run/dumpjob", "dumpjob", "dumpjob", 0o750),
    ("/etc/dumpjob/jobs.yml", "root", "dumpjob", 0o640),
    ("/etc/dumpjob/environment", "root", "dumpjob", 0o640),
    ("/etc/cron.d", "root", "root", 0o700),
    ("/etc/crontab", "root", "root", 0o600),
])
def test_modes(host, path, owner, group, mode):
    f = host.file(path)
    assert f.exists
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def _sshd_effective(host, user="ec2-user"):
    out = host.check_output(f"sshd -T -C user={user},host=admin,addr=203.0.113.10")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_sshd_drop_in_wins_over_cloud_init(host):
    # prepare planted cloud-init's PasswordAuthentication yes; the hardening drop-in sorts first.
    assert host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").contains("PasswordAuthentication yes")
    effective = _sshd_effective(host)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["pubkeyauthentication"] == "yes"
    assert host.run("sshd -t").rc == 0


def test_admin_keeps_key_login_and_sshd_stays_stopped(host):
    keys = host.file("/home/ec2-user/.ssh/authorized_keys")
    assert keys.exists and keys.size > 0 and keys.user == "ec2-user"
    assert _sshd_effective(host)["authorizedkeysfile"].startswith(".ssh/authorized_keys")
    assert not host.service("ssh").is_running


def test_sysctl_file_written(host):
    conf = host.file("/etc/sysctl.d/60-jram-hardening.conf")
    assert conf.contains("^kernel.kptr_restrict = 2$") and conf.contains("^fs.suid_dumpable = 0$")


def test_cron_allow_keeps_every_crontab_owner(host):
    allowed = set(host.file("/etc/cron.allow").content_string.split()) - {"#"}
    assert {"root", "dumpjob", "ec2-user"} <= allowed
    listing = host.run("su -s /bin/sh ec2-user -c 'crontab -l'")
    assert listing.rc == 0, listing.stderr


def test_legacy_crontab_untouched(host):
    crontab = host.check_output("crontab -l -u ec2-user")
    for job in LEGACY_CRONTAB_JOBS:
        assert f"/home/ec2-user/scripts/{job}" in crontab
    assert host.service("cron").is_running


def test_venv_and_wrapper(host):
    assert host.file("/opt/dumpjob/venv/bin/python").exists
    assert host.file("/usr/local/bin/dumpjob").mode == 0o755
    freeze = host.check_output("/opt/dumpjob/venv/bin/pip freeze").lower()
    assert "dumpjob" in freeze and "boto3==" in freeze
    assert host.run("/usr/local/bin/dumpjob --help").rc == 0


def test_job_file_is_valid_and_holds_no_secret(host):
    check = host.run("runuser -u dumpjob -- /usr/local/bin/dumpjob check-config --json")
    assert check.rc == 0, check.stdout + check.stderr
    jobs = host.file("/etc/dumpjob/jobs.yml").content_string
    assert "secret_id:" in jobs
    assert os.environ.get("SANDBOX_DB_PASSWORD", "GgH0use#2019") not in jobs
    assert "password" not in jobs.lower()


def test_dumpjob_run_as_dumpjob_with_instance_role_credentials(host):
    """The program dumps the sandbox database to the emulated S3; its AWS credentials come
    from the instance role through the sandbox IMDS (there is no other key on the host for
    the dumpjob user)."""
    assert not host.file("/var/lib/dumpjob/.aws").exists
    date = "2001-02-03"
    run = host.run(f"runuser -u dumpjob -- /usr/local/bin/dumpjob run schema_weekly --parallel --date {date} --json")
    assert run.rc == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="ap-northeast-1",
                      aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    key = "dumps-test/schema/basis_schema_20010203.sql.gz"
    head = s3.head_object(Bucket="jram-gghouse", Key=key)
    assert head["ContentLength"] > 0
    assert key in json.dumps(result)
    s3.delete_object(Bucket="jram-gghouse", Key=key)
    s3.delete_object(Bucket="jram-gghouse", Key=key + ".manifest.json")
