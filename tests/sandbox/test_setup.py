"""`make` entry points refuse clearly, before changing anything, where they cannot work."""

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _make(target, *, user=None, path=None):
    env = {"PATH": path or os.environ["PATH"], "HOME": "/tmp"}
    argv = ["make", "--no-print-directory", "-C", str(REPO), target]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=65534", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, env=env)


def test_non_root_is_refused_with_a_clear_error():
    for target in ("test", "demo"):
        proc = _make(target, user="nobody")
        assert proc.returncode != 0
        assert "setup: error: run as root" in proc.stderr, proc.stderr


def test_a_machine_without_apt_is_refused_with_a_clear_error(tmp_path):
    # A PATH with the basic tools but no apt-get or dpkg-query.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "make", "id", "dirname", "cat", "grep", "sha256sum", "cut"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for target in ("test", "demo"):
        proc = _make(target, path=str(bin_dir))
        assert proc.returncode != 0
        assert "setup: error: this needs a Debian or Ubuntu machine with apt-get" in proc.stderr, proc.stderr
