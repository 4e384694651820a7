# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key retirement's file work on the dump host: find AWS key material in the users' ~/.aws files,
move it aside into a root-only directory for the proof, put it back, or remove it for good.

Runs as root (module ``jram.dumphost.static_key_files``). Never returns a secret: the results name
files, owners, modes and access key ids only. Standard library only.

~/.aws belongs to its user, who can swap any name in it for a symbolic link at any moment. So
nothing in it is reached by a path: ~/.aws is opened once (O_NOFOLLOW) and every file in it through
that descriptor (O_NOFOLLOW, a new file O_EXCL), owner and mode are set on the open file (fchown,
fchmod), renames are relative to the opened directories and are checked to have moved the file
that was read. A link (symbolic, or a second hard link) where a key file is expected is refused,
never followed.

- :func:`discover` every user with key material, and leftovers in the aside directory;
- :func:`aside` credentials -> DIR/USER/credentials; a config with key material -> DIR/USER/config,
  and in its place the same file without the key lines (endpoint, region stay);
- :func:`back` what DIR/USER holds goes back where it came from;
- :func:`purge` remove DIR/USER: the key material leaves the host.

Every operation takes ``check``: it then says what it would do and changes nothing."""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
import re
import secrets
import stat

# Lines of ~/.aws/credentials and ~/.aws/config that hold key material.
KEY_LINE = re.compile(r"^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token|aws_security_token)\s*=",
                      re.I)
KEY_ID = re.compile(r"^\s*aws_access_key_id\s*=\s*([A-Z0-9]{16,128})\s*$", re.I)
FILES = ("credentials", "config")

# Opening a name in a directory its user controls: never through a symbolic link, never blocking
# on a FIFO, never taking a terminal.
NOFOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class KeyFilesError(Exception):
    """A refusal: one line naming the cause and the fix; nothing was moved unless said."""


class NotRegularError(Exception):
    """A name in ~/.aws that is not a plain file (or ~/.aws that is not a plain directory)."""

    def __init__(self, path: str, what: str):
        super().__init__(f"{path} is {what}")
        self.path = path


def _aws_file(home: str, name: str) -> str:
    return os.path.join(home, ".aws", name)


def _aside(base: str, user: str) -> str:
    return os.path.join(base, user)


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
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return st, b"".join(chunks)
    finally:
        os.close(fd)


def _has_key(lines) -> bool:
    return any(KEY_LINE.match(line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line)
               for line in lines)


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
        "path": path, "regular": True, "owner": _user_name(st.st_uid), "group": _group_name(st.st_gid),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}", "size": st.st_size,
        "key_material": _has_key(lines), "key_ids": key_ids,
        "dir_owner": _user_name(dir_st.st_uid), "dir_group": _group_name(dir_st.st_gid),
        "dir_mode": f"{stat.S_IMODE(dir_st.st_mode):04o}",
    }


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise KeyFilesError(f"no user {name} on this host: name an OS user of the dump host") from None


def _private_dir(path: str, check: bool) -> bool:
    """A directory only root can enter (created when missing); True when it had to be created."""
    if os.path.isdir(path) and not os.path.islink(path):
        st = os.stat(path)
        if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
            raise KeyFilesError(f"{path} exists but is not root-only (owner uid {st.st_uid}, mode "
                                f"{stat.S_IMODE(st.st_mode):04o}): fix it or choose another static_keys_aside_dir")
        return False
    if not check:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return True


def discover(aside_dir: str) -> dict:
    """Every user with key material in ~/.aws, leftovers in ``aside_dir`` or a link in ~/.aws."""
    users = []
    seen = set()
    for entry in sorted(pwd.getpwall(), key=lambda p: p.pw_uid):
        home = entry.pw_dir
        if entry.pw_name in seen or not home or not os.path.isdir(home):
            continue
        seen.add(entry.pw_name)
        target = _aside(aside_dir, entry.pw_name)
        leftovers = sorted(os.listdir(target)) if os.path.isdir(target) else []
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
    return {"changed": False, "users": users}


def _write_like(dir_fd: int, name: str, data: bytes, like: os.stat_result, tmp: str | None = None) -> None:
    """Write data to `name` in the directory `dir_fd` atomically, with the owner, group and mode of
    `like`. The temporary file is created new (O_EXCL: a link planted at its name fails the write),
    gets owner and mode through its descriptor, and is renamed within the same opened directory."""
    tmp = tmp or f".static-keys.{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
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


def _refuse(user: str, exc: NotRegularError) -> KeyFilesError:
    return KeyFilesError(f"{exc}, not the plain file of {user}'s key material: nothing was moved; replace it by "
                         f"the file it stands for, or leave {user} out (static_keys_skip_users)")


def _move_checked(src_fd: int, dst_fd: int, name: str, read: os.stat_result, what: str) -> None:
    """Rename `name` from one opened directory to another, and check that the file moved is the one
    that was read (the user may have swapped the name meanwhile): if not, move it back and refuse."""
    os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    moved = os.stat(name, dir_fd=dst_fd, follow_symlinks=False)
    if (moved.st_dev, moved.st_ino) != (read.st_dev, read.st_ino):
        os.rename(name, name, src_dir_fd=dst_fd, dst_dir_fd=src_fd)
        raise KeyFilesError(f"{what} changed while it was being moved (replaced by another file or a link): "
                            "nothing was moved; run again once the user's files are settled")


def aside(user: str, aside_dir: str, check: bool = False) -> dict:
    """Move the user's key files into ``aside_dir``/USER; a config keeps its lines without key material."""
    entry = _user(user)
    target = _aside(aside_dir, user)
    moved = []
    created = _private_dir(aside_dir, check)
    try:
        aws_fd = _open_aws(entry.pw_dir)
    except NotRegularError as exc:
        raise _refuse(user, exc) from None
    if aws_fd is None:
        return {"changed": created, "moved": [], "to": target}
    try:
        for name in FILES:
            path = _aws_file(entry.pw_dir, name)
            try:
                found = _read_at(aws_fd, name, path)
            except NotRegularError as exc:
                raise _refuse(user, exc) from None
            if found is None:
                continue
            like, data = found
            lines = data.splitlines(keepends=True)
            if not _has_key(lines):
                continue
            moved.append(path)
            if check:
                continue
            _private_dir(target, False)
            if os.path.lexists(os.path.join(target, name)):
                raise KeyFilesError(f"{target}/{name} exists already (an interrupted run?): put it back with the "
                                    f"rollback or by hand before retiring {user}'s keys")
            target_fd = os.open(target, NOFOLLOW_DIR)
            try:
                _move_checked(aws_fd, target_fd, name, like, path)
            finally:
                os.close(target_fd)
            if name == "config":
                # What was read through the descriptor, never the file again by its name.
                _write_like(aws_fd, name, b"".join(line for line in lines if not _has_key([line])), like)
    finally:
        os.close(aws_fd)
    return {"changed": bool(moved) or created, "moved": moved, "to": target}


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


def back(user: str, aside_dir: str, check: bool = False) -> dict:
    """Put what ``aside_dir``/USER holds back into the user's ~/.aws."""
    entry = _user(user)
    target = _aside(aside_dir, user)
    restored = []
    if os.path.isdir(target):
        held = [name for name in FILES if os.path.lexists(os.path.join(target, name))]
        restored = [_aws_file(entry.pw_dir, name) for name in held]
        if held and not check:
            aws_fd = _aws_dir_for(entry)
            target_fd = os.open(target, NOFOLLOW_DIR)
            try:
                for name in held:
                    os.rename(name, name, src_dir_fd=target_fd, dst_dir_fd=aws_fd)
            finally:
                os.close(target_fd)
                os.close(aws_fd)
        if not check and not os.listdir(target):
            os.rmdir(target)
    return {"changed": bool(restored), "restored": restored}


def purge(user: str, aside_dir: str, check: bool = False) -> dict:
    """Remove ``aside_dir``/USER and what it holds: the key material leaves the host."""
    target = _aside(aside_dir, user)
    removed = []
    if os.path.isdir(target):
        for name in sorted(os.listdir(target)):
            removed.append(os.path.join(target, name))
            if not check:
                os.unlink(os.path.join(target, name))
        if not check:
            os.rmdir(target)
    return {"changed": bool(removed), "removed": removed}


def run(operation: str, user: str | None, aside_dir: str, check: bool = False) -> dict:
    """One operation (discover, aside, back, purge); KeyFilesError is a refusal."""
    if operation == "discover":
        return discover(aside_dir)
    if not user:
        raise KeyFilesError(f"operation {operation} needs a user: set user")
    return {"aside": aside, "back": back, "purge": purge}[operation](user, aside_dir, check)
