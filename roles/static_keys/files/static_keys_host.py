#!/usr/bin/python3
"""Key retirement on the dump host: find AWS key material in the users' ~/.aws files, move it
aside into a root-only directory for the proof, put it back, or remove it for good.

Run as root by roles/static_keys (ansible.builtin.script). Prints one JSON object. Never prints,
logs or passes on a secret: the output names files, owners, modes and access key ids only.

~/.aws belongs to its user, who can swap any name in it for a symbolic link at any moment. So
nothing in it is reached by a path: ~/.aws is opened once (O_NOFOLLOW) and every file in it through
that descriptor (O_NOFOLLOW, a new file O_EXCL), owner and mode are set on the open file, renames
are relative to the opened directories and are checked to have moved the file that was read. A
link (symbolic, or a second hard link) where a key file is expected is refused, never followed.

    discover --aside-dir DIR                  every user with key material, and leftovers in DIR
    aside USER --aside-dir DIR [--check]      credentials -> DIR/USER/credentials; a config with key
                                              material -> DIR/USER/config, and in its place the same
                                              file without the key lines (endpoint, region stay)
    back USER --aside-dir DIR [--check]       what DIR/USER holds goes back where it came from
    purge USER --aside-dir DIR [--check]      remove DIR/USER: the key material leaves the host
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import pwd
import re
import secrets
import stat
import sys

# Lines of ~/.aws/credentials and ~/.aws/config that hold key material.
KEY_LINE = re.compile(r"^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token|aws_security_token)\s*=",
                      re.I)
KEY_ID = re.compile(r"^\s*aws_access_key_id\s*=\s*([A-Z0-9]{16,128})\s*$", re.I)
FILES = ("credentials", "config")


# Opening a name in a directory its user controls: never through a symbolic link, never blocking
# on a FIFO, never taking a terminal.
NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class NotRegularError(Exception):
    """A name in ~/.aws that is not a plain file (or ~/.aws that is not a plain directory)."""

    def __init__(self, path: str, what: str):
        super().__init__(f"{path} is {what}")
        self.path = path


def _aws_file(home: str, name: str) -> str:
    return os.path.join(home, ".aws", name)


def _open_aws(home: str) -> int | None:
    """A descriptor of HOME/.aws, opened without following a link; None when there is none."""
    try:
        home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return os.open(".aws", NOFOLLOW_DIR, dir_fd=home_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotRegularError(os.path.join(home, ".aws"), "not a directory (a symbolic link?)") from None
        raise
    finally:
        os.close(home_fd)


def _read_at(dir_fd: int, name: str, path: str) -> tuple[os.stat_result, bytes] | None:
    """The status and content of the plain file `name` in the directory `dir_fd`; None when missing.
    A symbolic link, a second hard link (a file linked in from elsewhere) or anything but a plain file
    raises NotRegularError: its content is never read."""
    try:
        fd = os.open(name, NOFOLLOW_READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularError(path, "a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularError(path, "not a regular file")
        if st.st_nlink != 1:
            raise NotRegularError(path, f"a file with {st.st_nlink} hard links")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return st, b"".join(chunks)
    finally:
        os.close(fd)


def _describe(aws_fd: int, path: str) -> dict | None:
    """Owner, group, mode and key material of one file of ~/.aws (None when missing); a link or
    anything but a plain file is {"regular": False}."""
    try:
        found = _read_at(aws_fd, os.path.basename(path), path)
    except NotRegularError:
        return {"path": path, "regular": False}
    if found is None:
        return None
    st, data = found
    lines = data.decode("utf-8", errors="replace").splitlines()
    key_ids = sorted({m.group(1) for m in map(KEY_ID.match, lines) if m})
    dir_st = os.fstat(aws_fd)
    return {
        "path": path, "regular": True, "owner": _name(pwd.getpwuid, st.st_uid), "group": _group(st.st_gid),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}", "size": st.st_size,
        "key_material": any(KEY_LINE.match(line) for line in lines), "key_ids": key_ids,
        "dir_owner": _name(pwd.getpwuid, dir_st.st_uid), "dir_group": _group(dir_st.st_gid),
        "dir_mode": f"{stat.S_IMODE(dir_st.st_mode):04o}",
    }


def _name(lookup, uid: int) -> str:
    try:
        return lookup(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise SystemExit(_fail(f"no user {name} on this host")) from None


def _fail(msg: str) -> int:
    print(json.dumps({"failed": True, "msg": msg}))
    return 1


def _private_dir(path: str, check: bool) -> bool:
    """A directory only root can enter (created when missing); True when it had to be created."""
    if os.path.isdir(path) and not os.path.islink(path):
        st = os.stat(path)
        if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
            raise SystemExit(_fail(f"{path} exists but is not root-only (owner uid {st.st_uid}, mode "
                                   f"{stat.S_IMODE(st.st_mode):04o}): fix it or choose another static_keys_aside_dir"))
        return False
    if not check:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return True


def _aside(base: str, user: str) -> str:
    return os.path.join(base, user)


def discover(args) -> int:
    users = []
    seen = set()
    for entry in sorted(pwd.getpwall(), key=lambda p: p.pw_uid):
        home = entry.pw_dir
        if entry.pw_name in seen or not home or not os.path.isdir(home):
            continue
        seen.add(entry.pw_name)
        leftovers = sorted(os.listdir(_aside(args.aside_dir, entry.pw_name))) \
            if os.path.isdir(_aside(args.aside_dir, entry.pw_name)) else []
        try:
            aws_fd = _open_aws(home)
        except NotRegularError as exc:
            users.append({"user": entry.pw_name, "uid": entry.pw_uid, "home": home, "files": {}, "key_ids": [],
                          "leftovers": leftovers, "not_regular": [exc.path]})
            continue
        files = {}
        if aws_fd is not None:
            try:
                files = {name: _describe(aws_fd, _aws_file(home, name)) for name in FILES}
            finally:
                os.close(aws_fd)
        holding = {name: f for name, f in files.items() if f and f.get("regular") and f["key_material"]}
        odd = [f["path"] for f in files.values() if f and not f.get("regular")]
        if holding or leftovers or odd:
            users.append({
                "user": entry.pw_name, "uid": entry.pw_uid, "home": home, "files": holding,
                "key_ids": sorted({k for f in holding.values() for k in f["key_ids"]}),
                "leftovers": leftovers, "not_regular": odd,
            })
    print(json.dumps({"changed": False, "users": users}))
    return 0


def _write_like(dir_fd: int, name: str, data: bytes, like: os.stat_result, tmp: str | None = None) -> None:
    """Write data to `name` in the directory `dir_fd` atomically, with the owner, group and mode of
    `like`. The temporary file is created new (O_EXCL: a link planted at its name fails the write),
    gets owner and mode through its descriptor, and is renamed within the same opened directory."""
    tmp = tmp or f".static-keys.{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        try:
            _write_all(fd, data)
            os.fchown(fd, like.st_uid, like.st_gid)
            os.fchmod(fd, stat.S_IMODE(like.st_mode))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)  # removes the name, whatever it is now; follows nothing
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _refuse(user: str, exc: NotRegularError) -> SystemExit:
    return SystemExit(_fail(f"{exc}, not the plain file of {user}'s key material: nothing was moved; replace "
                            f"it by the file it stands for, or leave {user} out (static_keys_skip_users)"))


def _move_checked(src_fd: int, dst_fd: int, name: str, read: os.stat_result, what: str) -> None:
    """Rename `name` from one opened directory to another, and check that the file moved is the one
    that was read (the user may have swapped the name meanwhile): if not, move it back and refuse."""
    os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    moved = os.stat(name, dir_fd=dst_fd, follow_symlinks=False)
    if (moved.st_dev, moved.st_ino) != (read.st_dev, read.st_ino):
        os.rename(name, name, src_dir_fd=dst_fd, dst_dir_fd=src_fd)
        raise SystemExit(_fail(f"{what} changed while it was being moved (replaced by another file or a link): "
                               "nothing was moved; run again once the user's files are settled"))


def aside(args) -> int:
    entry = _user(args.user)
    target = _aside(args.aside_dir, args.user)
    moved = []
    created = _private_dir(args.aside_dir, args.check)
    try:
        aws_fd = _open_aws(entry.pw_dir)
    except NotRegularError as exc:
        raise _refuse(args.user, exc) from None
    if aws_fd is None:
        print(json.dumps({"changed": created, "moved": [], "to": target}))
        return 0
    try:
        for name in FILES:
            path = _aws_file(entry.pw_dir, name)
            try:
                found = _read_at(aws_fd, name, path)
            except NotRegularError as exc:
                raise _refuse(args.user, exc) from None
            if found is None:
                continue
            like, data = found
            lines = data.splitlines(keepends=True)
            if not any(KEY_LINE.match(line.decode("utf-8", errors="replace")) for line in lines):
                continue
            moved.append(path)
            if args.check:
                continue
            _private_dir(target, False)
            if os.path.lexists(os.path.join(target, name)):
                raise SystemExit(_fail(f"{target}/{name} exists already (an interrupted run?): put it back with "
                                       f"the rollback or by hand before retiring {args.user}'s keys"))
            target_fd = os.open(target, NOFOLLOW_DIR)
            try:
                _move_checked(aws_fd, target_fd, name, like, path)
            finally:
                os.close(target_fd)
            if name == "config":
                # What was read through the descriptor, never the file again by its name.
                kept = [line for line in lines if not KEY_LINE.match(line.decode("utf-8", errors="replace"))]
                _write_like(aws_fd, name, b"".join(kept), like)
    finally:
        os.close(aws_fd)
    print(json.dumps({"changed": bool(moved) or created, "moved": moved, "to": target}))
    return 0


def _aws_dir_for(entry: pwd.struct_passwd) -> int:
    """A descriptor of the user's ~/.aws for putting files back, made (0700, the user's) when missing."""
    try:
        aws_fd = _open_aws(entry.pw_dir)
    except NotRegularError as exc:
        raise _refuse(entry.pw_name, exc) from None
    if aws_fd is not None:
        return aws_fd
    home_fd = os.open(entry.pw_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.mkdir(".aws", 0o700, dir_fd=home_fd)
        aws_fd = os.open(".aws", NOFOLLOW_DIR, dir_fd=home_fd)
    finally:
        os.close(home_fd)
    os.fchown(aws_fd, entry.pw_uid, entry.pw_gid)
    os.fchmod(aws_fd, 0o700)
    return aws_fd


def back(args) -> int:
    entry = _user(args.user)
    target = _aside(args.aside_dir, args.user)
    restored = []
    if os.path.isdir(target):
        held = [name for name in FILES if os.path.lexists(os.path.join(target, name))]
        restored = [_aws_file(entry.pw_dir, name) for name in held]
        if held and not args.check:
            aws_fd = _aws_dir_for(entry)
            target_fd = os.open(target, NOFOLLOW_DIR)
            try:
                for name in held:
                    os.rename(name, name, src_dir_fd=target_fd, dst_dir_fd=aws_fd)
            finally:
                os.close(target_fd)
                os.close(aws_fd)
        if not args.check and not os.listdir(target):
            os.rmdir(target)
    print(json.dumps({"changed": bool(restored), "restored": restored}))
    return 0


def purge(args) -> int:
    target = _aside(args.aside_dir, args.user)
    removed = []
    if os.path.isdir(target):
        for name in sorted(os.listdir(target)):
            removed.append(os.path.join(target, name))
            if not args.check:
                os.unlink(os.path.join(target, name))
        if not args.check:
            os.rmdir(target)
    print(json.dumps({"changed": bool(removed), "removed": removed}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["discover", "aside", "back", "purge"])
    parser.add_argument("user", nargs="?")
    parser.add_argument("--aside-dir", required=True)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.action != "discover" and not args.user:
        return _fail(f"{args.action} needs a user")
    os.umask(0o077)
    return {"discover": discover, "aside": aside, "back": back, "purge": purge}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
