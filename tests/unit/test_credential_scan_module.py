"""credential_scan on a host in a directory: every planted credential, each in the file it is
really found in on a legacy host, is reported with its file, line and kind; the look-alikes next to
them are not; the module's complete output, as Ansible would print it, holds no planted value; and
the walk skips binaries, oversized files and symbolic links out of the tree, and changes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.jram.dumphost.plugins.module_utils import credential_patterns as cp
from ansible_collections.jram.dumphost.plugins.modules import credential_scan

# Fake but well-formed values, each unique so that a leak of any one of them is caught.
KEY_ID = "AKIAZ7QXPLEGACY2K4MB"
SECRET_KEY = "q8Vt3LrX/9mWnB2cJ5hKz+YpE4sDfG6aU1oRiT7e"
SESSION_KEY_ID = "ASIAZ7QXPTEMPORARY23"
SESSION_SECRET = "R2d9Kx/LmP4qZs8Tn+Vb6Wc3Yh5Jf7Ga1Eo0Iu2N"
SESSION_TOKEN = ("IQoJb3JpZ2luX2VjEJr//////////wEaDmFwLW5vcnRoZWFzdC0xIkcwRQIhAKx9sFq2mT8pZr4vN7cW1yB3eH6dJ0uL5oG9kS2"
                 "aQ1fPAiB7nX3mR8tY2vW9zC4kJ6hL1pD5sF0gU3eI7oA2bN8cEiqZAgjz//////////ARAAGgw2MTIzNDU2Nzg5MDEiDH8sQw")
ENV_SECRET = "Hn4Xw8Pq/ZtL2bK9vR5mC7sY3dJ1fG6aE0uT+oWi"
PY_SECRET = "Mv7Bn2Kx9Lq4Wz/Rt6Yp3Hs8Jd1Fg5Ca0Eu+Io2P"
CSV_KEY_ID = "AKIAZ7QXPCONSOLE9W3Q"
CSV_SECRET = "Xc5Vb8Nm2Lk/Jh4Gf7Ds1Az9Qw3Er6Ty0Ui+Op8K"
SCRIPT_PASS = "GgH0use#2019"
OPTION_PASS = "Qu0ted!Dump"
LONG_OPTION_PASS = "L0ng0pt#Pw"
SPACE_OPTION_PASS = "Myd-Sp4ce-Pw"
ENVIRONMENT_PASS = "Env1ron$Pwd"
CNF_PASS = "Cnf Cl1ent pw"
CRON_PASS = "Cr0nSecret"
DOCKER_PASS = "D0cker-Env-Pw"
PROFILE_PASS = "Pr0file_Pw!"
URL_PASS = "Url5ecret"
CONTINUED_PASS = "C0ntinued"
JSON_KEY_ID = "AKIAZ7QXPJSONOUTPUT5"
JSON_SECRET = "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"
PLANTED = [KEY_ID, SECRET_KEY, SESSION_KEY_ID, SESSION_SECRET, SESSION_TOKEN, ENV_SECRET, PY_SECRET, CSV_KEY_ID,
           CSV_SECRET, SCRIPT_PASS, OPTION_PASS, LONG_OPTION_PASS, SPACE_OPTION_PASS, ENVIRONMENT_PASS, CNF_PASS,
           CRON_PASS, DOCKER_PASS, PROFILE_PASS, URL_PASS, CONTINUED_PASS, JSON_KEY_ID, JSON_SECRET]

# Each leak in its realistic file; the expected findings are (path, line, kind, name).
LEAKS = {
    "home/ec2-user/.aws/credentials": (
        f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET_KEY}\n",
        [(2, "aws_access_key_id", "aws_access_key_id"), (3, "aws_secret_access_key", "aws_secret_access_key")]),
    "home/ec2-user/.aws/config": (
        "[default]\nregion = ap-northeast-1\n\n[profile assumed]\nregion = ap-northeast-1\n"
        f"aws_access_key_id={SESSION_KEY_ID}\naws_secret_access_key={SESSION_SECRET}\n"
        f"aws_session_token={SESSION_TOKEN}\n",
        [(6, "aws_access_key_id", "aws_access_key_id"), (7, "aws_secret_access_key", "aws_secret_access_key"),
         (8, "aws_session_token", "aws_session_token")]),
    "home/ec2-user/scripts/ggh_backup.sh": (
        "#!/bin/bash\n"
        "# nightly dump, 2019\n"
        f"DB_PASS='{SCRIPT_PASS}'\n"
        "mysqldump -h db -u ggh_reader -p$DB_PASS basis | gzip > /tmp/basis.sql.gz\n"
        f"mysqldump -h db -u ggh_reader -p'{OPTION_PASS}' --no-data basis > /tmp/schema.sql\n"
        f"mysql -h db -u ggh_reader --password={LONG_OPTION_PASS} -e 'SELECT 1' basis\n"
        f"mydumper --host db --user ggh_reader --password {SPACE_OPTION_PASS} --outputdir /tmp/d\n"
        "mysqldump -h db \\\n"
        "  -u ggh_reader \\\n"
        f"  -p{CONTINUED_PASS} basis > /tmp/b.sql\n",
        [(3, "password_assignment", "DB_PASS"), (5, "password_option", "-p"),
         (6, "password_option", "--password"), (7, "password_option", "--password"),
         (10, "password_option", "-p")]),
    "etc/environment": (
        f'PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"\nMYSQL_PWD="{ENVIRONMENT_PASS}"\n',
        [(2, "mysql_pwd", "MYSQL_PWD")]),
    "home/ec2-user/.my.cnf": (
        f"[client]\nhost = db\nuser = ggh_reader\npassword = \"{CNF_PASS}\"\n\n[mysqldump]\nquick\n",
        [(4, "option_file_password", "password")]),
    "var/spool/cron/crontabs/ec2-user": (
        "MAILTO=dba-alerts@jram.example\n"
        "# m h dom mon dow command\n"
        f"0 19 * * 6 mysqldump -u ggh_reader -p{CRON_PASS} --no-data basis > /home/ec2-user/schema.sql\n",
        [(3, "password_option", "-p")]),
    "home/ec2-user/app/.env": (
        f"AWS_ACCESS_KEY_ID=$LEGACY_KEY_ID\nAWS_SECRET_ACCESS_KEY={ENV_SECRET}\n"
        f"DATABASE_URL=mysql://ggh_reader:{URL_PASS}@db:3306/basis\n",
        [(2, "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"), (3, "url_password", "mysql://")]),
    "home/ec2-user/app/upload.py": (
        "import boto3\n\n"
        f"s3 = boto3.client('s3', region_name='ap-northeast-1', aws_secret_access_key='{PY_SECRET}')\n",
        [(3, "aws_secret_access_key", "aws_secret_access_key")]),
    "home/ec2-user/app/docker.env": (
        f"MARIADB_ALLOW_EMPTY_PASSWORD=no\nDB_HOST=db\nDB_PASSWORD={DOCKER_PASS}\n",
        [(3, "password_assignment", "DB_PASSWORD")]),
    "etc/profile.d/legacy_db.sh": (
        f'export DB_USER=ggh_reader\nexport DB_PASSWORD="{PROFILE_PASS}"\n',
        [(2, "password_assignment", "DB_PASSWORD")]),
    "home/ec2-user/legacy-dump-key.json": (  # what "aws iam create-access-key" printed, kept
        '{\n    "AccessKey": {\n        "UserName": "legacy-dump",\n'
        f'        "AccessKeyId": "{JSON_KEY_ID}",\n        "Status": "Active",\n'
        f'        "SecretAccessKey": "{JSON_SECRET}",\n        "CreateDate": "2019-04-01T00:00:00+00:00"\n'
        "    }\n}\n",
        [(4, "aws_access_key_id", "AccessKeyId"), (6, "aws_secret_access_key", "SecretAccessKey")]),
    "home/ec2-user/Downloads/legacy-dump_accessKeys.csv": (
        f"Access key ID,Secret access key\n{CSV_KEY_ID},{CSV_SECRET}\n",
        [(2, "aws_access_key_id", None), (2, "aws_secret_access_key", None)]),
}

# Files that look like the above but hold no credential: references, prompts, switches, names.
LOOKALIKES = {
    "home/ops/scripts/ggh_dump_new.sh": (
        "#!/bin/bash\n"
        'DB_PASS="$(aws secretsmanager get-secret-value --secret-id rds/nazca --query SecretString --output text)"\n'
        'DB_PASSWORD=$(cat /etc/dumpjob/pw)\n'
        "mysqldump -h db -u ggh_reader -p$DB_PASS basis\n"
        'mysqldump -h db -u ggh_reader -p"$DB_PASS" basis\n'
        "mysqldump -h db -u ggh_reader -p${DB_PASS} -P 3306 basis\n"
        "mysql -h db -u admin --password basis\n"
        "mysql -h db -u admin -p\n"
        "mysql -h db -u admin --password\n"
        'read -r -s -p "Password: " DB_PASS\n'
        'export MYSQL_PWD="$DB_PASS"\n'
        "psql --no-password -h db basis\n"
        "ssh -p 2222 backup@archive mkdir -p /srv/dumps\n"
        'echo "$DB_PASS" | mysql --defaults-extra-file=/dev/stdin\n'
        "password_file=/etc/dumpjob/password\n"
        "MARIADB_ALLOW_EMPTY_PASSWORD=yes\n"
        'cd "$PWD" && OLDPWD=/tmp\n'
        'if [ "$DB_PASSWORD" == "" ]; then exit 1; fi\n'
        "export AWS_SECRET_ACCESS_KEY=$LEGACY_SECRET\n"
        "# aws_secret_access_key is read from the instance role\n"),
    "home/ops/inventory/group_vars/dumphost.yml": (
        "---\n"
        'db_password: "{{ vault_db_password }}"\n'
        "secret_id: rds/nazca\n"
        "db_password_file: /etc/dumpjob/password\n"
        "aws_secret_access_key: !vault |\n"
        "  $ANSIBLE_VAULT;1.1;AES256\n"
        "  62313365396662343061393464336163383764373764613633653634306231386433626436623361\n"
        "# Password: ask the DBA team\n"),
    "home/ops/.my.cnf": "[client]\nuser = ggh_reader\npassword =\npassword_file = /x\n",
    "home/ops/app/settings.py": (
        "import os\n"
        "password = os.environ['DB_PASSWORD']\n"
        "conn = pymysql.connect(host=host, user=user, password=db_password)\n"
        'cmd = ["mysql", "--password=" + pw, "-p" + pw]\n'
        "# the documentation's example key\n"
        "EXAMPLE = ('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')\n"),
    "home/ops/app/.env.example": "DB_PASSWORD=<password>\nAWS_SECRET_ACCESS_KEY=********\nMYSQL_PWD=\n",
    "home/ops/notes.md": (
        "Deploy commit 3f786850e387550fdab836ed7e6dc881de23001b; key ids look like AKIA followed by 16 characters.\n"
        "Connect with mysql://ggh_reader:${DB_PASS}@db/basis or mysql://db/basis.\n"),
    "home/ops/templates/ggh_datatransit.sh.in": "#!/bin/bash\nDB_PASS='@DB_PASS@'\nMYSQL_PWD=%MYSQL_PWD%\n",
    "home/ops/roles/aws/tasks/main.yml": (
        "- name: Store the credentials\n"
        "  ansible.builtin.set_fact:\n"
        "    creds: \"{{ {'username': 'dump',\n"
        "               'password': db_passwords[item]} }}\"\n"
        "    access_key: ASIAXXXXXXXXXXXXXXXX\n"),
    "home/ops/app/dump.py": (
        'cmd.append("--password=%s" % shlex.quote(password))\n'
        'SAMPLE = {"SessionToken": "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHG'
        'BuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI"}\n'),
    "etc/login.defs": "PASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nENCRYPT_METHOD SHA512\n",
    "etc/sudoers.d/90-cloud-init-users": "ec2-user ALL=(ALL) NOPASSWD:ALL\n",
}


def write(root: Path, files: dict) -> None:
    for rel, content in files.items():
        text = content[0] if isinstance(content, tuple) else content
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def expected(root: Path, files: dict) -> set:
    return {(str(root / rel), line, kind, name) for rel, (_, found) in files.items() for line, kind, name in found}


def run(args: dict, check: bool = False) -> tuple[dict, str]:
    """main() as Ansible runs it: the result and the complete JSON it printed (invocation included)."""
    out = io.StringIO()
    with patch_module_args({**args, "_ansible_check_mode": check}), contextlib.redirect_stdout(out), \
            pytest.raises(SystemExit) as exc:
        credential_scan.main()
    printed = out.getvalue()
    result = json.loads(printed)
    assert exc.value.code == (1 if result.get("failed") else 0)
    return result, printed


def found(result: dict) -> set:
    return {(f["path"], f["line"], f["kind"], f["name"]) for f in result["findings"]}


def assert_no_secret(printed: str) -> None:
    leaked = [value for value in PLANTED if value in printed]
    assert not leaked, f"the module output holds planted values: {leaked}"
    # JSON escapes "/" nowhere but may escape non-ASCII; check the decoded form too
    decoded = json.dumps(json.loads(printed), ensure_ascii=False)
    assert not [value for value in PLANTED if value in decoded]


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    write(root, LEAKS)
    write(root, LOOKALIKES)
    return root


def snapshot(root: Path) -> dict:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_every_planted_credential_is_found_and_no_lookalike(host):
    before = snapshot(host)
    result, printed = run({"paths": [str(host)]})
    assert result["changed"] is False and not result.get("failed")
    assert len(LEAKS) >= 10
    assert found(result) == expected(host, LEAKS)
    assert not [f for f in result["findings"] if "/home/ops/" in f["path"] or "login.defs" in f["path"]
                or "sudoers" in f["path"]]
    assert result["files_scanned"] == len(LEAKS) + len(LOOKALIKES)
    assert result["counts"] == {kind: sum(1 for f in result["findings"] if f["kind"] == kind)
                                for kind in {f["kind"] for f in result["findings"]}}
    assert_no_secret(printed)
    assert snapshot(host) == before, "the scan changed a file"


def test_masks_show_only_the_key_prefix(host):
    result, _ = run({"paths": [str(host)]})
    for finding in result["findings"]:
        if finding["kind"] == "aws_access_key_id":
            assert finding["masked"] in ("AKIA****", "ASIA****")
        else:
            assert finding["masked"] == "****", finding
    prefixes = {f["path"].rsplit("/", 1)[-1]: f["masked"] for f in result["findings"]
                if f["kind"] == "aws_access_key_id"}
    assert prefixes == {"credentials": "AKIA****", "config": "ASIA****", "legacy-dump_accessKeys.csv": "AKIA****",
                        "legacy-dump-key.json": "AKIA****"}


def test_check_mode_reports_the_same(host):
    normal, _ = run({"paths": [str(host)]})
    checked, printed = run({"paths": [str(host)]}, check=True)
    assert checked["findings"] == normal["findings"] and checked["changed"] is False
    assert_no_secret(printed)


def test_fail_on_findings_lists_every_finding_without_values(host):
    result, printed = run({"paths": [str(host)], "fail_on_findings": True})
    assert result["failed"] is True and result["changed"] is False
    for path, line, kind, _ in expected(host, LEAKS):
        assert f"{path}:{line}:{kind}" in result["msg"]
    assert found(result) == expected(host, LEAKS)
    assert_no_secret(printed)


def test_fail_on_findings_passes_a_clean_tree(tmp_path):
    write(tmp_path, LOOKALIKES)
    result, _ = run({"paths": [str(tmp_path / "home"), str(tmp_path / "etc")], "fail_on_findings": True})
    assert not result.get("failed") and result["findings"] == [] and result["counts"] == {}


def test_walk_limits(tmp_path):
    """Binaries and oversized files are listed, not read; a link out of the tree is not followed,
    one inside is read once; excluded directories are not entered; missing paths are listed."""
    root, outside = tmp_path / "home", tmp_path / "elsewhere"
    (root / "work").mkdir(parents=True)
    outside.mkdir()
    (outside / "creds").write_text(f"aws_secret_access_key = {SECRET_KEY}\n")
    (root / "linked_out").symlink_to(outside / "creds")
    (root / "dir_out").symlink_to(outside)
    (root / "real.sh").write_text(f"DB_PASS='{SCRIPT_PASS}'\n")
    (root / "linked_in.sh").symlink_to(root / "real.sh")
    (root / "dump.bin").write_bytes(b"\x1f\x8b\x08\x00" + f"DB_PASS='{SCRIPT_PASS}'".encode() + b"\x00" * 64)
    (root / "big.log").write_text("x" * 2048 + f"\nMYSQL_PWD={ENVIRONMENT_PASS}\n")
    (root / "work" / "leftover.sh").write_text(f"DB_PASS='{SCRIPT_PASS}'\n")
    os.mkfifo(root / "fifo")  # would block a reader: never opened
    result, printed = run({"paths": [str(root), str(tmp_path / "etc/cron*"), str(root / "real.sh")],
                           "exclude": [str(root / "work")], "max_file_size": "1K"})
    assert found(result) == {(str(root / "linked_in.sh"), 1, "password_assignment", "DB_PASS")}
    assert sorted((s["path"], s["reason"]) for s in result["not_read"]) == sorted([
        (str(root / "big.log"), "too_large"), (str(root / "dump.bin"), "binary"),
        (str(root / "dir_out"), "symlink_outside"), (str(root / "linked_out"), "symlink_outside")])
    # A result key `skipped` would make Ansible show (and `is skipped` test) the scan as skipped.
    assert "skipped" not in result
    assert result["missing"] == [str(tmp_path / "etc/cron*")]
    assert result["files_scanned"] == 1
    assert_no_secret(printed)


def test_exclude_by_name(host):
    result, _ = run({"paths": [str(host)], "exclude": ["*.csv", ".aws"]})
    assert not [f for f in result["findings"] if f["path"].endswith(".csv") or "/.aws/" in f["path"]]
    assert (str(host / "etc/environment"), 2, "mysql_pwd", "MYSQL_PWD") in found(result)


@pytest.fixture
def public_tmp():
    """A directory an unprivileged user can reach (pytest's tmp_path is private to its user)."""
    with tempfile.TemporaryDirectory(prefix="credential-scan-") as name:
        yield Path(name)


def test_unreadable_files_are_listed_and_warned(public_tmp):
    """Run as an unprivileged user (nobody, when the tests run as root), as a task without become."""
    tmp_path = public_tmp
    top = tmp_path / "scan"
    (top / "private").mkdir(parents=True)
    (top / "private" / "creds.sh").write_text(f"DB_PASS='{SCRIPT_PASS}'\n")
    (top / "secret.sh").write_text(f"DB_PASS='{SCRIPT_PASS}'\n")
    (top / "open.sh").write_text(f"DB_PASS='{SCRIPT_PASS}'\n")
    (top / "secret.sh").chmod(0)
    (top / "private").chmod(0)
    for path in (tmp_path, top):
        path.chmod(0o755)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"paths": [str(top)]}}))
    args.chmod(0o644)
    argv = [sys.executable, credential_scan.__file__, str(args)]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    collections = str(Path(cp.__file__).parents[5])
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": collections},
                          cwd="/")
    (top / "private").chmod(0o700)
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout)
    assert sorted((s["path"], s["reason"]) for s in result["not_read"]) == [
        (str(top / "private"), "unreadable"), (str(top / "secret.sh"), "unreadable")]
    assert found(result) == {(str(top / "open.sh"), 1, "password_assignment", "DB_PASS")}
    assert "could not be read" in json.dumps(result["warnings"])
    assert_no_secret(proc.stdout)


@pytest.mark.parametrize("args, message", [
    ({"paths": ["relative/dir"]}, "is not absolute"),
    ({"paths": ["/tmp"], "max_file_size": "lots"}, "is not a size"),
    ({"paths": ["/tmp"], "max_file_size": 0}, "must be more than 0"),
])
def test_bad_options_are_refused(args, message):
    result, _ = run(args)
    assert result["failed"] is True and message in result["msg"]


@pytest.mark.parametrize("name, expected", [
    ("DB_PASS", True), ("db_password", True), ("MYSQL_PWD", True), ("PGPASSWORD", True), ("rootPassword", True),
    ("spring.datasource.password", True), ("DB_PASS2", True), ("password", True),
    ("password_file", False), ("PASS_MAX_DAYS", False), ("BYPASS", False), ("PWD", False), ("OLDPWD", False),
    ("MARIADB_ALLOW_EMPTY_PASSWORD", False), ("secret_id", False), ("COMPASS", False),
])
def test_password_names(name, expected):
    assert cp.is_password_name(name) is expected


def test_findings_carry_no_value():
    text = f"DB_PASS='{SCRIPT_PASS}'\nmysql -p'{OPTION_PASS}'\naws_access_key_id={KEY_ID}\n"
    findings = cp.scan_text(text, "/x.sh")
    assert [(f.line, f.kind) for f in findings] == [(1, "password_assignment"), (2, "password_option"),
                                                    (3, "aws_access_key_id")]
    rendered = repr(findings) + json.dumps([f.as_dict() for f in findings]) + cp.summary(findings)
    assert not [v for v in (SCRIPT_PASS, OPTION_PASS, KEY_ID) if v in rendered]


# Issue 11: forms the scanner missed, and values it took for placeholders that are real passwords.
AWS_SECRET_40 = "Zr8Kp2Wq/Lm5Nx7Bv3Ct9Dy4Fu6Gh1Jk0Se+Ta2Q"


@pytest.mark.parametrize("path, text, kind, name", [
    ("/x/upload.sh", f"aws_secret={AWS_SECRET_40}\n", "aws_secret_access_key", "aws_secret"),
    ("/x/legacy.env", f"AWS_SECRET='{AWS_SECRET_40}'\n", "aws_secret_access_key", "AWS_SECRET"),
    ("/x/legacy.sh", "SECRET='Sh4red-Secr3t'\n", "password_assignment", "SECRET"),
    ("/x/legacy.sh", "export DB_SECRET=Db-Secr3t-9\n", "password_assignment", "DB_SECRET"),
    ("/etc/sysconfig/dumps", "DBPW=Ggh-Dbpw-7\n", "password_assignment", "DBPW"),
    ("/x/legacy.sh", "ROOTPWD='R00t-pwd'\n", "password_assignment", "ROOTPWD"),
    ("/x/legacy.sh", "DBPASS=Joined-Pass-1\n", "password_assignment", "DBPASS"),
    ("/x/legacy.sh", "dbPw=camel-Pw-2\n", "password_assignment", "dbPw"),
    ("/x/legacy.sh", "mysqldump -u ggh -ppassword basis\n", "password_option", "-p"),
    ("/x/legacy.sh", "mysqldump -u ggh -psecret basis\n", "password_option", "-p"),
    ("/x/legacy.sh", "mysql -u ggh -pPASS -e 'SELECT 1'\n", "password_option", "-p"),
    ("/x/legacy.sh", "mysql -u ggh --password=password basis\n", "password_option", "--password"),
    ("/x/legacy.sh", "DB_PASS=on\n", "password_assignment", "DB_PASS"),
    ("/x/legacy.sh", "DB_PASS=yes\n", "password_assignment", "DB_PASS"),
    ("/x/legacy.sh", "DB_PASS='false'\n", "password_assignment", "DB_PASS"),
    ("/x/legacy.sh", "DB_PASS=password\n", "password_assignment", "DB_PASS"),
    ("/x/legacy.sh", "DB_PASS=changeme\n", "password_assignment", "DB_PASS"),
    ("/x/legacy.sh", "export MYSQL_PWD=secret\n", "mysql_pwd", "MYSQL_PWD"),
    ("/x/.my.cnf", "[client]\npassword = password\n", "option_file_password", "password"),
    ("/x/vars.yml", "db_password: 'yes'\n", "password_assignment", "db_password"),
    ("/x/app.env", "DATABASE_URL=mysql://ggh:password@db/basis\n", "url_password", "mysql://"),
])
def test_forms_found(path, text, kind, name):
    findings = cp.scan_text(text, path)
    assert [(f.kind, f.name) for f in findings] == [(kind, name)], findings
    assert findings[0].masked == "****"


@pytest.mark.parametrize("text", [
    # placeholders and references: no password is written in them
    'mysqldump -u ggh -p"$PASS" basis\n',
    "mysqldump -u ggh -p${DB_PASS} basis\n",
    "mysqldump -u ggh -p basis\n",
    "mysqldump -u ggh -p\n",
    "DB_PASS=\n",
    "DB_PASS=''\n",
    "DB_PASS=<password>\n",
    "DB_PASS=********\n",
    "DB_PASS=REDACTED\n",
    "SECRET=$(aws secretsmanager get-secret-value --secret-id rds/nazca --query SecretString --output text)\n",
    "aws_secret=$AWS_SECRET\n",
    # null and booleans as YAML values are switches, not passwords
    "db_password: null\n",
    "db_password: ~\n",
    "password: false\n",
    "update_secret: yes\n",
    # names that hold no password
    "BYPASS=proxy.internal\n",
    "COMPASS=north\n",
    "TRESPASS=forbidden\n",
    "SECRET_ID=rds/nazca\n",
    "secret_id: rds/nazca\n",
    "SECRET_KEY_BASE_FILE=/etc/app/key\n",
    # where a secret is kept, not the secret
    "secret: rds/nazca\n",
    "DB_SECRET=jram/dumphost/basis-reader\n",
    "secret_arn=arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:rds/nazca-AbCdEf\n",
    "DB_SECRET=arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:rds/nazca-AbCdEf\n",
    "# the secret is read at each run from Secrets Manager\n",
])
def test_not_found(text):
    assert cp.scan_text(text, "/x/settings.sh") == []


def test_new_default_paths_and_excludes_are_documented():
    """The defaults ansible-doc shows are the ones the module uses."""
    import yaml

    doc = yaml.safe_load(credential_scan.DOCUMENTATION)["options"]
    assert doc["paths"]["default"] == credential_scan.DEFAULT_PATHS
    assert doc["exclude"]["default"] == credential_scan.DEFAULT_EXCLUDE
    assert doc["archives"]["default"] == [credential_scan.ARCHIVE]
    for place in ("/etc/sysconfig", "/opt", "/usr/local", "/var/lib/dumpjob/legacy-archive"):
        assert place in credential_scan.DEFAULT_PATHS


ARCHIVED_PASS = "Arch1ved-0ld-Pw"
LIVE_PASS = "L1ve-Sysconfig-Pw"


@pytest.fixture
def archived_host(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    write(root, {
        "var/lib/dumpjob/legacy-archive/datatransit/ggh_datatransit.sh":
            f"#!/bin/bash\nDB_PASS='{ARCHIVED_PASS}'\nmysqldump -u ggh -p$DB_PASS basis\n",
        "opt/legacy/bin/export.sh": f"mysqldump -u ggh -p{ARCHIVED_PASS} basis\n",
        "opt/awscli/lib/python3.11/site-packages/awscli/examples/iam.rst": f"DB_PASSWORD={LIVE_PASS}\n",
    })
    return root


def test_archived_findings_are_flagged_counted_apart_and_warned(archived_host):
    root = archived_host
    archive = str(root / "var/lib/dumpjob/legacy-archive")
    result, printed = run({"paths": [str(root / "opt"), archive], "archives": [archive],
                           "exclude": credential_scan.DEFAULT_EXCLUDE})
    assert {(f["path"], f["kind"], f["archived"]) for f in result["findings"]} == {
        (f"{archive}/datatransit/ggh_datatransit.sh", "password_assignment", True),
        (str(root / "opt/legacy/bin/export.sh"), "password_option", False)}
    assert result["counts"] == {"password_option": 1}
    assert result["archived_counts"] == {"password_assignment": 1}
    warning = json.dumps(result["warnings"])
    assert f"{archive}/datatransit/ggh_datatransit.sh:2:password_assignment" in warning and "archived" in warning
    assert result["files_scanned"] == 2, "site-packages is left out by default"
    assert ARCHIVED_PASS not in printed and LIVE_PASS not in printed


def test_fail_on_findings_spares_the_archive(archived_host):
    root = archived_host
    archive = str(root / "var/lib/dumpjob/legacy-archive")
    result, printed = run({"paths": [archive], "archives": [archive], "fail_on_findings": True})
    assert not result.get("failed") and result["counts"] == {}
    assert result["archived_counts"] == {"password_assignment": 1}
    result, printed = run({"paths": [str(root / "opt"), archive], "archives": [archive], "fail_on_findings": True})
    assert result["failed"] is True
    assert "export.sh:1:password_option" in result["msg"] and "ggh_datatransit.sh" not in result["msg"]
    assert ARCHIVED_PASS not in printed
    # without archives the same file fails the task
    result, printed = run({"paths": [archive], "archives": [], "fail_on_findings": True})
    assert result["failed"] is True and "ggh_datatransit.sh:2:password_assignment" in result["msg"]
    assert ARCHIVED_PASS not in printed


def test_archives_must_be_absolute():
    result, _ = run({"paths": ["/tmp"], "archives": ["var/lib/dumpjob"]})
    assert result["failed"] is True and "archives entry 'var/lib/dumpjob' is not absolute" in result["msg"]


def test_fail_on_kinds_fails_only_on_those_kinds_and_spares_the_archive(archived_host):
    root = archived_host
    archive = str(root / "var/lib/dumpjob/legacy-archive")
    write(root, {"home/ec2-user/.aws/credentials": LEAKS["home/ec2-user/.aws/credentials"][0]})
    paths = [str(root / "opt"), str(root / "home"), archive]
    result, printed = run({"paths": paths, "archives": [archive], "fail_on_kinds": ["aws"]})
    assert result["failed"] is True
    assert "credentials:2:aws_access_key_id" in result["msg"] and "credentials:3:aws_secret_access_key" in result["msg"]
    assert "export.sh" not in result["msg"] and "ggh_datatransit.sh" not in result["msg"]
    assert ("password_option", False) in {(f["kind"], f["archived"]) for f in result["findings"]}
    assert_no_secret(printed)
    result, _ = run({"paths": paths, "archives": [archive], "fail_on_kinds": ["database"]})
    assert result["failed"] is True and "export.sh:1:password_option" in result["msg"]
    assert "credentials:" not in result["msg"] and "ggh_datatransit.sh" not in result["msg"]
    result, _ = run({"paths": paths, "archives": [archive], "fail_on_kinds": ["url_password", "aws_session_token"]})
    assert not result.get("failed") and len(result["findings"]) == 4
    assert result["kind_groups"] == {group: list(kinds) for group, kinds in cp.KIND_GROUPS.items()}


def test_fail_on_kinds_refuses_an_unknown_kind_before_reading(tmp_path):
    result, _ = run({"paths": [], "fail_on_kinds": ["aws", "aws_secret_key"]})
    assert result["failed"] is True and "fail_on_kinds" in result["msg"] and "aws_secret_key" in result["msg"]
    assert "findings" not in result
    result, _ = run({"paths": [], "fail_on_kinds": ["aws"]})
    assert not result.get("failed") and result["files_scanned"] == 0


def test_the_groups_cover_every_kind_once():
    grouped = [kind for kinds in cp.KIND_GROUPS.values() for kind in kinds]
    assert sorted(grouped) == sorted(cp.KINDS) and len(grouped) == len(set(grouped))
    import yaml

    doc = yaml.safe_load(credential_scan.DOCUMENTATION)["options"]["fail_on_kinds"]
    assert doc["choices"] == [*cp.KIND_GROUPS, *cp.KINDS]
