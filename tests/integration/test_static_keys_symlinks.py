"""jram.dumphost.static_key_files (its logic: plugins/module_utils/static_key_files.py, standard
library only) runs as root inside ~/.aws, a directory its user owns and can change at any moment.
On a dump host of its own (the real code, driven as the module drives it, real files, the real
non-root ec2-user), the user plants symbolic links where root reads and writes: at the
temporary file's name at the moment root sets its owner and mode, at ~/.aws/credentials, at ~/.aws
itself, and a hard link to a root file. Every time the root-owned target keeps its owner, mode and
content, nothing of it is read into the escrow or printed, and the refusals are one line naming
the cause and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CODE = Path(__file__).resolve().parents[2] / "plugins/module_utils/static_key_files.py"
WORK = "/root/jram-itest-static-keys"  # root-only: the code, its driver and the attacker's driver
ASIDE = "/var/lib/jram-itest-static-keys/aside"
HOME = "/home/ec2-user"
AWS = f"{HOME}/.aws"
TARGET = "/etc/jram-itest-target"
TARGET_TEXT = "root only, not ec2-user's\naws_access_key_id = AKIAZ7QXPROOTONLY7K2M\n"
KEY_ID = "AKIAZ7QXPCONFIGKEY4Q3"
CONFIG = ("[default]\nregion = ap-northeast-1\nendpoint_url = http://127.0.0.1:15000\n"
          f"aws_access_key_id = {KEY_ID}\naws_secret_access_key = Cf8Kp2Wq/Lm5Nx7Bv3Ct9Dy4Fu6Gh1Jk0Se+Ta2Q\n")

# What the module's main() does with the code: one operation, a refusal as {"failed": true, "msg"}
# on one line and exit 1. Usage: static_keys_host.py OPERATION [USER] --aside-dir DIR [--check].
DRIVER = f"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("static_key_files", "{WORK}/static_key_files.py")
kf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kf)
_write_like = kf._write_like


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [arg for arg in args if arg != "--check"]
    at = args.index("--aside-dir")
    aside_dir = args[at + 1]
    del args[at:at + 2]
    os.umask(0o077)
    try:
        result = kf.run(args[0], args[1] if len(args) > 1 else None, aside_dir, check)
    except (kf.KeyFilesError, kf.NotRegularError) as exc:
        print(json.dumps({{"failed": True, "msg": str(exc)}}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""

# The attacker, as an audit hook of the module's own process: right before root's first chown,
# chmod or rename while a temporary file of the module exists in ~/.aws, that file is replaced by
# ec2-user's symbolic link to TARGET -- the widest window a user racing the module could hit.
RACE = f"""
import importlib.util, os, pwd, sys
spec = importlib.util.spec_from_file_location("static_keys_host", "{WORK}/static_keys_host.py")
host = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host)
user = pwd.getpwnam("ec2-user")
state = {{"busy": False, "swapped": []}}

def attacker(event, args):
    if state["busy"] or event not in ("os.chown", "os.chmod", "os.rename"):
        return
    state["busy"] = True
    try:
        for entry in os.listdir("{AWS}"):
            path = os.path.join("{AWS}", entry)
            if entry.startswith(".static-keys.") and not os.path.islink(path):
                os.unlink(path)
                os.symlink("{TARGET}", path)
                os.lchown(path, user.pw_uid, user.pw_gid)
                state["swapped"].append(event)
    finally:
        state["busy"] = False

sys.addaudithook(attacker)
sys.argv = ["static_keys_host.py", *sys.argv[1:]]
rc = host.main()
print("swapped before:", state["swapped"], file=sys.stderr)
sys.exit(rc)
"""

# A link planted at the very name of the temporary file: creating it must fail, not follow.
PLANTED = f"""
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("static_keys_host", "{WORK}/static_keys_host.py")
host = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host)
fd = os.open("{AWS}", os.O_RDONLY | os.O_DIRECTORY)
try:
    host._write_like(fd, "config", b"[default]\\n", os.stat("{AWS}/config"), tmp=".static-keys.planted")
except FileExistsError:
    print("refused")
    sys.exit(0)
print("written")
sys.exit(1)
"""


@pytest.fixture(scope="module")
def host(fresh_host):
    fresh_host.exec("install", "-d", "-m", "0700", WORK)
    fresh_host.exec("bash", "-c", f"cat > {WORK}/static_key_files.py", input=CODE.read_text())
    fresh_host.exec("bash", "-c", f"cat > {WORK}/static_keys_host.py", input=DRIVER)
    fresh_host.exec("bash", "-c", f"cat > {WORK}/race.py", input=RACE)
    fresh_host.exec("bash", "-c", f"cat > {WORK}/planted.py", input=PLANTED)
    return fresh_host


@pytest.fixture
def user_files(host):
    """ec2-user's ~/.aws as the legacy host has it, plus key lines in config; a root-only target;
    no escrow. Put back after each test."""
    saved = host.exec("bash", "-c", f"tar -C {HOME} -cf - .aws | base64 -w0").stdout
    host.exec("bash", "-c", f"printf %s {json.dumps(TARGET_TEXT)} > {TARGET} && chmod 0600 {TARGET} "
              f"&& chown root:root {TARGET}")
    host.exec("bash", "-c", f"cat > {AWS}/config && chown ec2-user:ec2-user {AWS}/config && chmod 0600 {AWS}/config",
              input=CONFIG)
    yield host
    host.exec("bash", "-c", f"rm -rf {AWS} {HOME}/aws.real {ASIDE} {TARGET} {TARGET}.d "
              f"&& echo {saved} | base64 -d | tar -C {HOME} -xpf -")


def target_state(host, path: str = TARGET) -> str:
    return host.exec("stat", "-c", "%u:%g %a %h %F", path).stdout + host.exec("sha256sum", path).stdout


def run(host, *argv: str, driver: str = "static_keys_host.py"):
    return host.exec("python3", f"{WORK}/{driver}", *argv, check=False)


def one_line_refusal(proc, *words: str) -> dict:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    assert result["failed"] is True and "\n" not in result["msg"]
    for word in words:
        assert word in result["msg"], result["msg"]
    return result


def escrowed(host) -> str:
    return host.exec("bash", "-c", f"find {ASIDE} -mindepth 1 -printf '%p %u %m %y\\n' 2>/dev/null; true").stdout


def test_a_link_planted_at_the_temporary_name_at_chown_time_changes_nothing_of_its_target(user_files):
    host = user_files
    before = target_state(host)
    proc = run(host, "aside", "ec2-user", "--aside-dir", ASIDE, driver="race.py")
    assert "swapped before: ['os.chown']" in proc.stderr, proc.stderr  # the attacker did strike
    assert target_state(host) == before, "root changed the file the user's link points to"
    assert TARGET_TEXT.splitlines()[0] not in proc.stdout + proc.stderr
    # the keys are in the escrow; what ec2-user left in ~/.aws/config is ec2-user's own link
    assert f"{ASIDE}/ec2-user/credentials ec2-user 600 f" in escrowed(host)
    assert f"{ASIDE}/ec2-user/config ec2-user 600 f" in escrowed(host)
    assert host.exec("stat", "-c", "%U %F", f"{AWS}/config").stdout.strip() == "ec2-user symbolic link"
    assert not host.exec("bash", "-c", f"ls -A {AWS} | grep -F .static-keys.; true").stdout


def test_a_link_at_the_temporary_name_before_it_is_made_is_refused(user_files):
    host = user_files
    host.exec("ln", "-s", TARGET, f"{AWS}/.static-keys.planted", user="ec2-user")
    before = target_state(host)
    proc = run(host, driver="planted.py")
    assert proc.stdout.strip() == "refused", (proc.stdout, proc.stderr)
    assert target_state(host) == before


def test_credentials_as_a_link_to_a_root_file_is_refused_never_read(user_files):
    host = user_files
    host.exec("rm", f"{AWS}/credentials")
    host.exec("ln", "-s", TARGET, f"{AWS}/credentials", user="ec2-user")
    before = target_state(host)
    discovered = json.loads(run(host, "discover", "--aside-dir", ASIDE).stdout)
    mine = next(u for u in discovered["users"] if u["user"] == "ec2-user")
    assert mine["not_regular"] == [f"{AWS}/credentials"] and "AKIAZ7QXPROOTONLY7K2M" not in json.dumps(discovered)
    for check in ([], ["--check"]):
        proc = run(host, "aside", "ec2-user", "--aside-dir", ASIDE, *check)
        one_line_refusal(proc, f"{AWS}/credentials is a symbolic link", "static_keys_skip_users")
        assert "AKIAZ7QXPROOTONLY7K2M" not in proc.stdout + proc.stderr
    assert target_state(host) == before
    assert "credentials" not in escrowed(host) and "config" not in escrowed(host), "nothing may be moved"
    assert host.exec("stat", "-c", "%F", f"{AWS}/config").stdout.strip() == "regular file"


def test_a_hard_link_to_a_root_file_is_refused(user_files):
    """A host without fs.protected_hardlinks lets a user link a root file into ~/.aws."""
    host = user_files
    host.exec("rm", f"{AWS}/credentials")
    host.exec("ln", TARGET, f"{AWS}/credentials")
    before = target_state(host)
    proc = run(host, "aside", "ec2-user", "--aside-dir", ASIDE)
    one_line_refusal(proc, f"{AWS}/credentials is a file with 2 hard links")
    assert target_state(host) == before and "credentials" not in escrowed(host)


def test_dot_aws_as_a_link_to_a_root_directory_is_refused_both_ways(user_files):
    host = user_files
    # aside: ~/.aws -> a root-only directory holding a credentials file
    host.exec("bash", "-c", f"install -d -m 0700 {TARGET}.d && cp -p {TARGET} {TARGET}.d/credentials "
              f"&& cp -p {TARGET} {TARGET}.d/config && mv {AWS} {HOME}/aws.real")
    host.exec("ln", "-s", f"{TARGET}.d", AWS, user="ec2-user")
    before = target_state(host, f"{TARGET}.d/credentials") + target_state(host, f"{TARGET}.d/config")
    proc = run(host, "aside", "ec2-user", "--aside-dir", ASIDE)
    one_line_refusal(proc, f"{AWS} is not a directory")
    assert target_state(host, f"{TARGET}.d/credentials") + target_state(host, f"{TARGET}.d/config") == before
    assert "credentials" not in escrowed(host)
    # back: the keys were moved aside, then ~/.aws became a link to a root directory
    host.exec("bash", "-c", f"rm {AWS} && mv {HOME}/aws.real {AWS}")
    assert json.loads(run(host, "aside", "ec2-user", "--aside-dir", ASIDE).stdout)["moved"]
    host.exec("bash", "-c", f"mv {AWS} {HOME}/aws.real && rm -f {TARGET}.d/credentials {TARGET}.d/config")
    host.exec("ln", "-s", f"{TARGET}.d", AWS, user="ec2-user")
    proc = run(host, "back", "ec2-user", "--aside-dir", ASIDE)  # the module's operation: restore
    one_line_refusal(proc, f"{AWS} is not a directory")
    assert host.exec("ls", "-A", f"{TARGET}.d").stdout == "", "root wrote the keys into the link's target"
    assert f"{ASIDE}/ec2-user/credentials" in escrowed(host), "the escrow stays until it can go back"


def test_aside_and_back_still_keep_owner_mode_and_content(user_files):
    host = user_files
    before = host.exec("bash", "-c", f"cd {AWS} && stat -c '%n %U %G %a' credentials && sha256sum credentials").stdout
    result = json.loads(run(host, "aside", "ec2-user", "--aside-dir", ASIDE).stdout)
    assert result["changed"] and result["moved"] == [f"{AWS}/credentials", f"{AWS}/config"]
    config = host.exec("cat", f"{AWS}/config").stdout
    assert "endpoint_url" in config and "aws_access_key_id" not in config and "aws_secret" not in config
    assert host.exec("stat", "-c", "%U %G %a", f"{AWS}/config").stdout.strip() == "ec2-user ec2-user 600"
    assert not host.exec("bash", "-c", f"ls -A {AWS} | grep -F .static-keys.; true").stdout
    assert json.loads(run(host, "back", "ec2-user", "--aside-dir", ASIDE).stdout)["changed"]
    assert host.exec("bash", "-c", f"cd {AWS} && stat -c '%n %U %G %a' credentials && sha256sum credentials"
                     ).stdout == before
    assert host.exec("cat", f"{AWS}/config").stdout == CONFIG
