#!/usr/bin/python3
"""Key retirement on the dump host: find AWS key material in the users' ~/.aws files, move it
aside into a root-only directory for the proof, put it back, or remove it for good.

Run as root by roles/static_keys (ansible.builtin.script). Prints one JSON object. Never prints,
logs or passes on a secret: the output names files, owners, modes and access key ids only.

    discover --aside-dir DIR                  every user with key material, and leftovers in DIR
    aside USER --aside-dir DIR [--check]      credentials -> DIR/USER/credentials; a config with key
                                              material -> DIR/USER/config, and in its place the same
                                              file without the key lines (endpoint, region stay)
    back USER --aside-dir DIR [--check]       what DIR/USER holds goes back where it came from
    purge USER --aside-dir DIR [--check]      remove DIR/USER: the key material leaves the host
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import stat
import sys
import tempfile

# Lines of ~/.aws/credentials and ~/.aws/config that hold key material.
KEY_LINE = re.compile(r"^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token|aws_security_token)\s*=",
                      re.I)
KEY_ID = re.compile(r"^\s*aws_access_key_id\s*=\s*([A-Z0-9]{16,128})\s*$", re.I)
FILES = ("credentials", "config")


def _aws_file(home: str, name: str) -> str:
    return os.path.join(home, ".aws", name)


def _describe(path: str) -> dict | None:
    """Owner, group, mode and key material of one file (None when it is not a regular file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return {"path": path, "regular": False}
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    lines = text.splitlines()
    key_ids = sorted({m.group(1) for m in map(KEY_ID.match, lines) if m})
    return {
        "path": path, "regular": True, "owner": _name(pwd.getpwuid, st.st_uid), "group": _group(st.st_gid),
        "mode": f"{stat.S_IMODE(st.st_mode):04o}", "size": st.st_size,
        "key_material": any(KEY_LINE.match(line) for line in lines), "key_ids": key_ids,
        "dir_owner": _name(pwd.getpwuid, os.stat(os.path.dirname(path)).st_uid),
        "dir_group": _group(os.stat(os.path.dirname(path)).st_gid),
        "dir_mode": f"{stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode):04o}",
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
        files = {name: _describe(_aws_file(home, name)) for name in FILES}
        leftovers = sorted(os.listdir(_aside(args.aside_dir, entry.pw_name))) \
            if os.path.isdir(_aside(args.aside_dir, entry.pw_name)) else []
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


def _write_like(path: str, data: bytes, like: os.stat_result) -> None:
    """Write data to path atomically with the owner, group and mode of `like`."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".static-keys.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chown(tmp, like.st_uid, like.st_gid)
        os.chmod(tmp, stat.S_IMODE(like.st_mode))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def aside(args) -> int:
    entry = _user(args.user)
    target = _aside(args.aside_dir, args.user)
    moved = []
    created = _private_dir(args.aside_dir, args.check)
    for name in FILES:
        path = _aws_file(entry.pw_dir, name)
        found = _describe(path)
        if not found or not found.get("regular") or not found["key_material"]:
            continue
        moved.append(path)
        if args.check:
            continue
        _private_dir(target, False)
        if os.path.exists(os.path.join(target, name)):
            raise SystemExit(_fail(f"{target}/{name} exists already (an interrupted run?): put it back with "
                                   f"the rollback or by hand before retiring {args.user}'s keys"))
        like = os.stat(path)
        os.replace(path, os.path.join(target, name))
        if name == "config":
            with open(os.path.join(target, name), "rb") as f:
                kept = [line for line in f.read().splitlines(keepends=True)
                        if not KEY_LINE.match(line.decode("utf-8", errors="replace"))]
            _write_like(path, b"".join(kept), like)
    print(json.dumps({"changed": bool(moved) or created, "moved": moved, "to": target}))
    return 0


def back(args) -> int:
    entry = _user(args.user)
    target = _aside(args.aside_dir, args.user)
    restored = []
    if os.path.isdir(target):
        for name in FILES:
            held = os.path.join(target, name)
            if os.path.exists(held):
                restored.append(_aws_file(entry.pw_dir, name))
                if not args.check:
                    os.replace(held, _aws_file(entry.pw_dir, name))
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
