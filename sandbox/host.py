"""The dump host: a podman container (systemd as PID 1, cron, host networking) from a Debian
bookworm image built with debootstrap and cached as a tarball; provisioned once, when created,
into the legacy state."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import procs
from .config import LEGACY_DB_PASSWORD, Settings, image_recipe_digest

HERE = Path(__file__).resolve().parent
IMAGE = "localhost/jram-dumphost:bookworm"
# This machine's cgroup layout needs runc, and rootful podman needs explicit ulimits here.
# NET_ADMIN: phase 3 loads an nftables rule set (roles/imds_access); with host networking it
# lands in this machine's network namespace, one table per IMDS emulator port.
RUN_OPTS = ["--runtime=runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=30000:30000",
            "--cap-add", "NET_ADMIN"]
# The rule file roles/imds_access writes on the host, and the tables it declares.
IMDS_RULES = "/etc/jram-dumphost/imds-access.nft"
IMDS_TABLE = re.compile(r"^table inet (\w+) \{\}$", re.M)


def podman(*args: str, what: str | None = None, **kw) -> subprocess.CompletedProcess:
    return procs.run(["podman", *args], what or f"podman {args[0]}", **kw)


def container_state(s: Settings) -> str | None:
    proc = subprocess.run(["podman", "container", "inspect", "--format", "{{.State.Status}}", s.host],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_image(s: Settings) -> None:
    """Build the tarball if missing and (re)import it when the image was made by another recipe."""
    recipe = image_recipe_digest()
    if not s.image_tar.exists():
        s.image_tar.parent.mkdir(parents=True, exist_ok=True)
        for stale in s.image_tar.parent.glob("dumphost-bookworm-*.tar"):
            stale.unlink()
        proc = subprocess.run(["bash", str(HERE / "image" / "build.sh"), str(s.image_tar)],
                              env={**os.environ, "PYTHON": sys.executable})
        if proc.returncode != 0:
            raise procs.SandboxError("building the host image failed (see the messages above)")
    inspect = subprocess.run(["podman", "image", "inspect", "--format", '{{ index .Labels "jram.recipe" }}', IMAGE],
                             capture_output=True, text=True)
    if inspect.returncode != 0 or inspect.stdout.strip() != recipe:
        podman("import", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL=SIGRTMIN+3",
               "--change", f"LABEL jram.recipe={recipe}", str(s.image_tar), IMAGE,
               what="podman import of the host image")


def up(s: Settings, state: dict) -> bool:
    """Start the host; returns True when it was created (and so provisioned) now."""
    ensure_image(s)
    created = False
    status = container_state(s)
    if status is None:
        podman("run", "-d", "--name", s.host, "--hostname", "ggh-dumphost", "--network", "host",
               "--systemd", "always", *RUN_OPTS, IMAGE, "/sbin/init", what="podman run of the host")
        created = True
    elif status != "running":
        podman("start", s.host)
    label = '{{ index .Config.Labels "jram.recipe" }}'
    built_from = subprocess.run(["podman", "container", "inspect", "--format", label, s.host],
                                capture_output=True, text=True).stdout.strip()
    if built_from != image_recipe_digest():
        print(f"sandbox: note: host {s.host} runs an image from an older recipe; "
              "'make sandbox-down && make sandbox-up' recreates it in the legacy state", file=sys.stderr)
    wait_booted(s)
    if created:
        provision(s, state)
    return created


def wait_booted(s: Settings, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(["podman", "exec", s.host, "systemctl", "is-system-running"],
                              capture_output=True, text=True)
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.5)
    raise procs.SandboxError(f"host {s.host} did not finish booting (systemd says '{state}'); "
                             f"see 'podman exec {s.host} systemctl --failed'")


def provision(s: Settings, state: dict) -> None:
    src = "/root/legacy-provision"
    podman("exec", s.host, "mkdir", "-p", src)
    for path in sorted((HERE / "legacy").iterdir()):
        podman("cp", str(path), f"{s.host}:{src}/{path.name}")
    env = {
        "SRC": src, "DB_HOST": "127.0.0.1", "DB_PORT": str(s.mariadb_port), "DB_PASS": LEGACY_DB_PASSWORD,
        "AWS_KEY_ID": state["legacy_key"]["id"], "AWS_SECRET": state["legacy_key"]["secret"],
        "AWS_ENDPOINT": s.moto_url, "IMDS_ENDPOINT": s.imds_url,
    }
    # Values travel on stdin, not in podman's argv or environment.
    script = "".join(f"export {k}={_shell_quote(v)}\n" for k, v in env.items())
    script += f"exec bash {src}/provision.sh\n"
    podman("exec", "-i", s.host, "bash", "-s", what="legacy provisioning of the host", input=script)


def refresh_legacy_key(s: Settings, old: dict, new: dict) -> None:
    """moto was restarted and issued a new key: swap it in where the old one still is."""
    script = (f"f=/home/ec2-user/.aws/credentials; [ -f $f ] && grep -q {old['id']} $f && "
              f"sed -i -e 's|{old['id']}|{new['id']}|' -e 's|{old['secret']}|{new['secret']}|' $f || true\n")
    podman("exec", "-i", s.host, "bash", "-s", what="refreshing the legacy key", input=script)


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def imds_tables(name: str, ports: tuple[int, ...] = ()) -> list[str]:
    """The nftables tables a host container's metadata rule set loaded into this machine's network
    namespace (host networking): those its rule file declares (read while it runs), and the
    sandbox's per-port names for the emulator ports given."""
    proc = subprocess.run(["podman", "exec", name, "cat", IMDS_RULES], capture_output=True, text=True)
    found = set(IMDS_TABLE.findall(proc.stdout)) if proc.returncode == 0 else set()
    return sorted(found | {f"jram_dumphost_imds_{port}" for port in ports})


def drop_imds_tables(tables: list[str]) -> None:
    """Delete those tables here: a container stopped without its unit's stop leaves them behind."""
    nft = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)
    for table in tables if nft else []:
        if subprocess.run([nft, "list", "table", "inet", table], capture_output=True).returncode == 0:
            subprocess.run([nft, "delete", "table", "inet", table], capture_output=True)


def down(s: Settings) -> bool:
    if container_state(s) is None:
        drop_imds_tables(imds_tables(s.host, (s.imds_port,)))
        return False
    tables = imds_tables(s.host, (s.imds_port,))
    podman("rm", "--force", "--time", "20", s.host)
    drop_imds_tables(tables)
    return True


def run_legacy(s: Settings, script: str) -> subprocess.CompletedProcess:
    """Run one legacy job by hand, as cron would: as ec2-user, from its home, with a login env."""
    return subprocess.run(
        ["podman", "exec", "--user", "ec2-user", "--workdir", "/home/ec2-user", s.host,
         "bash", "-lc", f"/home/ec2-user/scripts/{script}"],
        capture_output=True, text=True)
