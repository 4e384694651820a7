"""static_key_files' main(), driven as Ansible drives it, as root on a user's ~/.aws under a
temporary directory (the user is a passwd entry of its own, uid 4242, whose home is that
directory). Shown here: discover names the key files and key ids and never a secret; aside moves
them into a root-only directory and leaves a config without its key lines with the user's owner
and mode; restore puts them back byte for byte; purge removes them; check mode changes nothing
and its diff names the files that would change; a symbolic link, a hard link or ~/.aws as a link
is refused in one line and its target is neither read nor changed; a link planted at the
temporary file's name makes the write fail instead of following it."""

from __future__ import annotations

import os
import pwd
import stat

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import static_key_files as kf
from ansible_collections.jram.dumphost.plugins.modules import static_key_files
from sandboxtest import run_module

UID = GID = 4242
USER = "legacy-user"
KEY_ID = "AKIAZ7QXPUNITFILES42"
SECRET = "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"
CREDENTIALS = f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"
CONFIG = f"[default]\nregion = ap-northeast-1\nendpoint_url = http://127.0.0.1:15000\naws_access_key_id = {KEY_ID}\n"
CONFIG_KEPT = "[default]\nregion = ap-northeast-1\nendpoint_url = http://127.0.0.1:15000\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="moves files between owners: needs root")


class Host:
    def __init__(self, root):
        self.home = root / "home"
        self.aws = self.home / ".aws"
        self.aside = root / "aside"
        self.target = root / "root-only-target"
        self.aws.mkdir(parents=True)
        os.chown(self.home, UID, GID)
        os.chown(self.aws, UID, GID)
        os.chmod(self.aws, 0o700)
        self.put("credentials", CREDENTIALS, 0o600)
        self.put("config", CONFIG, 0o640)
        self.target.write_text("root only\n")
        os.chmod(self.target, 0o600)

    def put(self, name, text, mode):
        path = self.aws / name
        path.write_text(text)
        os.chown(path, UID, GID)
        os.chmod(path, mode)

    def meta(self, path) -> tuple:
        st = os.lstat(path)
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), path.read_bytes() if path.is_file() else None

    def run(self, operation, check=False, diff=True, user=USER) -> dict:
        return run_module(static_key_files.main, {"operation": operation, "user": user, "aside_dir": str(self.aside)},
                          check=check, diff=diff)


@pytest.fixture
def host(tmp_path, monkeypatch):
    h = Host(tmp_path)
    entry = pwd.struct_passwd((USER, "x", UID, GID, "", str(h.home), "/bin/sh"))

    def getpwnam(name):
        if name == USER:
            return entry
        raise KeyError(name)

    monkeypatch.setattr(kf.pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(kf.pwd, "getpwall", lambda: [entry])
    monkeypatch.setattr(kf.pwd, "getpwuid", lambda uid: entry if uid == UID else pwd.struct_passwd(
        ("root", "x", 0, 0, "", "/root", "/bin/sh")))
    return h


def test_discover_names_files_and_key_ids_never_a_secret(host):
    os.chmod(host.aws, 0o750)  # noqa: S103 - a user's ~/.aws as some hosts have it
    result = run_module(static_key_files.main, {"operation": "discover", "aside_dir": str(host.aside)})
    assert result["changed"] is False
    (user,) = result["users"]
    assert (user["user"], user["uid"], user["key_ids"], user["leftovers"], user["not_regular"]) == (
        USER, UID, [KEY_ID], [], [])
    creds = user["files"]["credentials"]
    assert (creds["path"], creds["owner"], creds["mode"], creds["key_material"]) == (
        str(host.aws / "credentials"), USER, "0600", True)
    assert (creds["dir_owner"], creds["dir_mode"]) == (USER, "0750")
    assert user["files"]["config"]["mode"] == "0640"
    assert SECRET not in repr(result)


def test_a_config_without_key_lines_is_not_key_material(host):
    host.put("config", CONFIG_KEPT, 0o600)
    (user,) = run_module(static_key_files.main, {"operation": "discover", "aside_dir": str(host.aside)})["users"]
    assert sorted(user["files"]) == ["credentials"]


def test_check_mode_changes_nothing_and_its_diff_names_the_files(host):
    before = (host.meta(host.aws / "credentials"), host.meta(host.aws / "config"))
    result = host.run("aside", check=True)
    assert result["changed"] is True
    assert result["moved"] == [str(host.aws / "credentials"), str(host.aws / "config")]
    assert f"{host.aws}/credentials (key material)" in result["diff"]["before"]
    assert f"{host.aside}/{USER}/credentials (root only)" in result["diff"]["after"]
    assert f"{host.aws}/config (without its key lines)" in result["diff"]["after"]
    assert SECRET not in repr(result)
    assert (host.meta(host.aws / "credentials"), host.meta(host.aws / "config")) == before
    assert not host.aside.exists()


def test_aside_restore_keep_owner_mode_and_content(host):
    creds_before = host.meta(host.aws / "credentials")
    config_before = host.meta(host.aws / "config")
    result = host.run("aside")
    assert result["changed"] and result["to"] == f"{host.aside}/{USER}"
    assert not (host.aws / "credentials").exists()
    assert host.meta(host.aside / USER / "credentials") == creds_before
    assert host.meta(host.aside / USER / "config") == config_before
    assert host.meta(host.aws / "config") == (UID, GID, 0o640, CONFIG_KEPT.encode())
    assert stat.S_IMODE(os.stat(host.aside).st_mode) == 0o700
    assert not [name for name in os.listdir(host.aws) if name.startswith(".static-keys.")]

    assert host.run("aside")["changed"] is False  # nothing left to move

    back = host.run("restore")
    assert back["changed"] and back["restored"] == [str(host.aws / "credentials"), str(host.aws / "config")]
    assert host.meta(host.aws / "credentials") == creds_before
    assert host.meta(host.aws / "config") == config_before
    assert not (host.aside / USER).exists()
    assert host.run("restore", check=True)["changed"] is False


def test_restore_makes_a_missing_dot_aws_the_users(host):
    host.run("aside")
    for name in os.listdir(host.aws):
        os.unlink(host.aws / name)
    os.rmdir(host.aws)
    host.run("restore")
    assert host.meta(host.aws)[:3] == (UID, GID, 0o700)
    assert (host.aws / "credentials").read_text() == CREDENTIALS


def test_purge_removes_the_key_material_and_check_mode_only_names_it(host):
    host.run("aside")
    predicted = host.run("purge", check=True)
    assert predicted["changed"] and predicted["removed"] == [f"{host.aside}/{USER}/config",
                                                            f"{host.aside}/{USER}/credentials"]
    assert predicted["diff"]["after"] == "" and f"{host.aside}/{USER}/credentials" in predicted["diff"]["before"]
    assert (host.aside / USER / "credentials").exists()
    assert host.run("purge")["changed"] is True
    assert not (host.aside / USER).exists()
    assert host.run("purge")["changed"] is False


def one_line_refusal(result, *words):
    assert result["failed"] is True and "\n" not in result["msg"], result
    for word in words:
        assert word in result["msg"], result["msg"]


@pytest.mark.parametrize("check", [False, True])
def test_credentials_as_a_link_to_a_root_file_is_refused_never_read(host, check):
    os.unlink(host.aws / "credentials")
    os.symlink(host.target, host.aws / "credentials")
    before = host.meta(host.target)
    (user,) = run_module(static_key_files.main, {"operation": "discover", "aside_dir": str(host.aside)})["users"]
    assert user["not_regular"] == [str(host.aws / "credentials")]
    result = host.run("aside", check=check)
    one_line_refusal(result, f"{host.aws}/credentials is a symbolic link", "static_keys_skip_users")
    assert "root only" not in repr(result)
    assert host.meta(host.target) == before
    assert host.meta(host.aws / "config")[3] == CONFIG.encode(), "nothing may be moved"


def test_a_hard_link_to_a_root_file_is_refused(host):
    os.unlink(host.aws / "credentials")
    os.link(host.target, host.aws / "credentials")
    before = host.meta(host.target)
    one_line_refusal(host.run("aside"), f"{host.aws}/credentials is a file with 2 hard links")
    assert host.meta(host.target) == before and not (host.aside / USER / "credentials").exists()


def test_dot_aws_as_a_link_is_refused_both_ways(host, tmp_path):
    real = tmp_path / "aws.real"
    os.rename(host.aws, real)
    os.symlink(real, host.aws)
    one_line_refusal(host.run("aside"), f"{host.aws} is not a directory")
    assert (real / "credentials").read_text() == CREDENTIALS
    os.unlink(host.aws)
    os.rename(real, host.aws)
    assert host.run("aside")["moved"]
    os.rename(host.aws, real)
    os.symlink(real, host.aws)
    one_line_refusal(host.run("restore"), f"{host.aws} is not a directory")
    assert not (real / "credentials").exists(), "root wrote the keys into the link's target"
    assert (host.aside / USER / "credentials").exists(), "the aside copy stays until it can go back"


def test_a_link_at_the_temporary_name_makes_the_write_fail(host):
    os.symlink(host.target, host.aws / ".static-keys.planted")
    before = host.meta(host.target)
    fd = os.open(host.aws, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            kf._write_like(fd, "config", b"[default]\n", os.stat(host.aws / "config"), tmp=".static-keys.planted")
    finally:
        os.close(fd)
    assert host.meta(host.target) == before
    assert (host.aws / "config").read_text() == CONFIG


def test_leftovers_of_an_interrupted_run_are_refused(host):
    (host.aside / USER).mkdir(parents=True, mode=0o700)
    os.chmod(host.aside, 0o700)
    (host.aside / USER / "credentials").write_text("left over\n")
    (user,) = run_module(static_key_files.main, {"operation": "discover", "aside_dir": str(host.aside)})["users"]
    assert user["leftovers"] == ["credentials"]
    one_line_refusal(host.run("aside"), "exists already (an interrupted run?)")
    assert (host.aws / "credentials").read_text() == CREDENTIALS


def test_bad_input_is_refused_in_one_line(host):
    one_line_refusal(host.run("aside", user="nobody-here"), "no user nobody-here on this host")
    os.makedirs(host.aside, mode=0o755)
    os.chmod(host.aside, 0o755)  # noqa: S103 - the refusal under test
    one_line_refusal(host.run("aside"), "is not root-only", "static_keys_aside_dir")
    result = run_module(static_key_files.main, {"operation": "aside"})
    assert result["failed"] and "user" in result["msg"]
    result = run_module(static_key_files.main, {"operation": "discover", "aside_dir": "relative/dir"})
    assert result["failed"] and "absolute" in result["msg"]
