# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The little file I/O the cutover needs, kept apart from the pure logic: atomic writes, the
host's time zone, and moving a retired legacy script into a root-only archive."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import tempfile

from ansible_collections.jram.dumphost.plugins.module_utils.errors import HostError, ScheduleError

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # Python < 3.9 on the host
    ZoneInfo = None
    ZoneInfoNotFoundError = KeyError

LOCALTIME = "/etc/localtime"
# System locations a legacy "script" is never archived from: a command starting with /bin/bash
# names the interpreter, not the job's script.
SYSTEM_DIRS = ("/bin/", "/sbin/", "/lib/", "/lib64/", "/etc/", "/boot/", "/dev/", "/proc/", "/sys/", "/run/",
               "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib64/", "/usr/libexec/", "/usr/share/")


def zone(name: str) -> dt.tzinfo:
    """The tz database zone ``name`` as the host knows it."""
    if ZoneInfo is None:
        raise ScheduleError("the host's Python has no zoneinfo module (needs Python 3.9+): use a newer interpreter")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"time zone {name!r} is unknown on the host: use a tz database name such as "
                            "Asia/Tokyo, or install the tzdata package") from None


def host_zone(localtime: str = LOCALTIME) -> tuple:
    """(tzinfo, name) of the zone the host's cron fires in: what ``/etc/localtime`` says (the file
    timedatectl manages). A symlink into a zoneinfo tree gives the zone's name; a copied file is
    read as is; no file means UTC, as for glibc."""
    if ZoneInfo is None:
        raise ScheduleError("the host's Python has no zoneinfo module (needs Python 3.9+): use a newer interpreter")
    if not os.path.lexists(localtime):
        return zone("UTC"), "UTC"
    target = os.path.realpath(localtime)
    marker = "/zoneinfo/"
    if marker in target:
        name = target.split(marker, 1)[1]
        for prefix in ("posix/", "right/"):
            name = name[len(prefix):] if name.startswith(prefix) else name
        with contextlib.suppress(ScheduleError):
            return zone(name), name
    try:
        with open(localtime, "rb") as handle:
            return ZoneInfo.from_file(handle, key=localtime), localtime
    except (OSError, ValueError) as exc:
        raise ScheduleError(f"cannot read the host's time zone from {localtime} ({exc}): fix it with "
                            "timedatectl set-timezone, or set host_timezone") from None


def read_text(path: str) -> str | None:
    """A file's text (None when absent), decoded so that every byte survives a round trip."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise HostError(f"cannot read {path}: {exc.strerror}; run the task with become: true") from None


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def atomic_write(path: str, data: bytes, mode: int, uid: int | None = None, gid: int | None = None) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file in the same directory, fsync'd
    and renamed over the target, then fsync the directory. Cron ignores the dot-named temporary."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        os.fchmod(fd, mode)
        if uid is not None or gid is not None:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_file(path: str, text: str, mode: int, uid: int | None = None, gid: int | None = None) -> None:
    try:
        atomic_write(path, encode(text), mode, uid, gid)
    except OSError as exc:
        raise HostError(f"cannot write {path}: {exc.strerror}; run the task with become: true") from None


def remove_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise HostError(f"cannot remove {path}: {exc.strerror}; run the task with become: true") from None


def archive_path(archive_dir: str, job: str, script: str) -> str:
    return os.path.join(archive_dir, job, os.path.basename(script))


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_script(script: str, archive_dir: str, job: str) -> dict:
    """Move a retired legacy script to ``<archive_dir>/<job>/<name>``, root-only.

    The archive directory is created 0700; the copy is made 0600 root (legacy scripts tend to
    hold hard-coded credentials) and fsync'd before the original is removed. The returned record
    keeps what a hand restore needs: the original path, mode, owner and the content's SHA-256."""
    dest = archive_path(archive_dir, job, script)
    try:
        info = os.stat(script)
        digest = sha256(script)
        for directory in (archive_dir, os.path.dirname(dest)):
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
            os.chmod(directory, 0o700)
        if os.path.exists(dest) and sha256(dest) != digest:
            raise HostError(f"{dest} already exists with other content: move it away before retiring {job}")
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", dir=os.path.dirname(dest))
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out, open(script, "rb") as src:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.unlink(script)
    except OSError as exc:
        raise HostError(f"cannot archive {script} to {dest}: {exc.strerror}; run the task with become: true") from None
    return {
        "source": script,
        "archive": dest,
        "sha256": digest,
        "mode": f"{info.st_mode & 0o7777:04o}",
        "uid": info.st_uid,
        "gid": info.st_gid,
    }
