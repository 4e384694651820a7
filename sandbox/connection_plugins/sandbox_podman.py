# The sandbox's connection to its dump host containers: enter the running container's namespaces
# with nsenter instead of going through `podman exec`, and pipe modules to its Python.
#
# `podman exec` costs about 170 ms on an idle machine (400 ms on a busy one) before the command
# starts; nsenter costs 3 ms. The collection's containers.podman.podman connection, besides, cannot
# pipeline (it runs `podman exec` without `-i`), so every module task paid a `podman mount` and
# five execs (home directory, temporary directory, chmod, the module, cleanup). Here a module task
# costs one `podman inspect` (the container's PID) and one nsenter. Measured on the sandbox, phase 2
# on a legacy host: 134 s with the collection's connection, 98 s with pipelining alone, 78 s here.
#
# What the command gets is what `podman exec` gives it: the container's mount, UTS, IPC, network,
# PID and cgroup namespaces, its root and working directory, the environment its init was started
# with (PATH, HOME, container=podman, ...), its capability bounding set (setpriv, from the
# container's init) and its open-files and process limits; a stopped or paused container is
# refused. Not reproduced: the seccomp filter, and the cgroup the process is counted in (the
# caller's; the container's PID namespace still ends it with the container). Files are copied
# through /proc/PID/root, the container's own view of its mounts.
#
# Only the sandbox and the molecule scenarios use it (ansible.cfg's connection_plugins,
# inventories/sandbox, molecule/*/molecule.yml); production reaches its host over SSH. None of the
# playbooks become another user, and a remote_user falls back to `podman exec --user`.
from __future__ import annotations

DOCUMENTATION = """
    name: sandbox_podman
    short_description: Run tasks in a running podman container through nsenter, with pipelining
    description:
        - Enters the namespaces of a running podman container (rootful) with C(nsenter) and runs
          the command as the container's root, with the container's environment, capability
          bounding set and resource limits; modules are piped to the container's Python.
        - Files are copied through C(/proc/PID/root).
        - With a O(remote_user), commands run through C(podman exec --user) instead.
    options:
      remote_addr:
        description: The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: The user (name or UID) commands run as inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to the podman command line.
        default: ''
        vars:
          - name: ansible_podman_extra_args
      podman_executable:
        description: The podman executable.
        default: podman
        vars:
          - name: ansible_podman_executable
      pipelining:
        description: Pipe modules to the container's Python instead of copying them in first.
        type: boolean
        default: true
        vars:
          - name: ansible_pipelining
"""

import os
import resource
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ensure_connect
from ansible.utils.display import Display
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

display = Display()

# /proc/PID/limits rows applied to the command, as podman exec applies the container's ulimits.
LIMITS = {"Max open files": resource.RLIMIT_NOFILE, "Max processes": resource.RLIMIT_NPROC}
# Set by the container runtime for its init only; podman exec does not pass it on.
INIT_ONLY = (b"container_uuid=",)


def read_limits(pid: int) -> dict[int, tuple[int, int]]:
    found = {}
    with open(f"/proc/{pid}/limits") as handle:
        for line in handle:
            for name, which in LIMITS.items():
                if line.startswith(name):
                    soft, hard = line[len(name):].split()[:2]
                    found[which] = tuple(resource.RLIM_INFINITY if v == "unlimited" else int(v) for v in (soft, hard))
    return found


# Linux's capability numbers (linux/capability.h), for setpriv, which takes names.
CAPABILITIES = ("chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
                "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
                "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
                "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
                "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
                "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore")


def bounding_set(pid: int) -> str:
    """The container's capability bounding set, as setpriv's --bounding-set argument."""
    with open(f"/proc/{pid}/status") as handle:
        mask = next(int(line.split()[1], 16) for line in handle if line.startswith("CapBnd:"))
    return ",".join(["-all"] + [f"+{name}" for number, name in enumerate(CAPABILITIES) if mask >> number & 1])


def freezer_file(pid: int) -> str:
    """The file that says whether the container's cgroup is frozen (podman pause): cgroup v1's
    freezer.state, or v2's cgroup.freeze; "" when neither is found."""
    with open(f"/proc/{pid}/cgroup") as handle:
        rows = [line.rstrip("\n").split(":", 2) for line in handle]
    for _, controllers, path in rows:
        if "freezer" in controllers.split(","):
            return f"/sys/fs/cgroup/freezer{path}/freezer.state"
    for _, controllers, path in rows:
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            if not controllers and os.path.exists(f"{root}{path}/cgroup.freeze"):
                return f"{root}{path}/cgroup.freeze"
    return ""


class Connection(PodmanConnection):
    """A rootful podman container, entered with nsenter."""

    transport = "sandbox_podman"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pid = 0
        self._root = ""
        self._environment: list[str] = []
        self._limits: dict[int, tuple[int, int]] = {}
        self._bounding = ""
        self._freezer = ""

    def _connect(self):
        # ConnectionBase's bookkeeping, without the parent's `podman mount`.
        super(PodmanConnection, self)._connect()
        if not self._connected:
            rc, out, err = self._podman(["container", "inspect", "--format", "{{.State.Pid}}"])
            pid = int(out.strip() or 0) if rc == 0 else 0
            if pid <= 0:
                raise AnsibleConnectionFailure(f"container {self._container_id} is not running "
                                               f"({to_native(err).strip() or 'no PID'})")
            with open(f"/proc/{pid}/environ", "rb") as handle:
                self._environment = [to_native(v) for v in handle.read().split(b"\0")
                                     if v and not v.startswith(INIT_ONLY)]
            self._pid, self._root = pid, f"/proc/{pid}/root"
            self._limits, self._bounding, self._freezer = read_limits(pid), bounding_set(pid), freezer_file(pid)
            self._connected = True
        return self

    def reset(self):
        """Look the container up again before the next command (wait_for_connection resets the
        connection between its attempts)."""
        self._connected = False

    def _check_running(self) -> None:
        """Refuse, as `podman exec` does, a container that stopped or is paused: a process entered
        with nsenter is not in the container's cgroup, so a frozen container would not stop it."""
        if not os.path.exists(f"/proc/{self._pid}"):
            raise AnsibleConnectionFailure(f"container {self._container_id} is not running")
        if self._freezer:
            with open(self._freezer) as handle:
                state = handle.read().strip()
            if state in ("FROZEN", "FREEZING", "1"):
                raise AnsibleConnectionFailure(f"container {self._container_id} is paused: can only run commands "
                                               "in running containers")

    def _apply_limits(self) -> None:
        for which, value in self._limits.items():
            resource.setrlimit(which, value)

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        if self.user:
            podman = ["exec", "-i"] if in_data is not None else ["exec"]
            return self._podman([*podman, "--user", self.user], args, in_data)
        self._check_running()
        argv = ["nsenter", f"--target={self._pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup",
                "--root", "--wd", "--", "setpriv", f"--bounding-set={self._bounding}", "--",
                "env", "-i", *self._environment, *args]
        display.vvv(f"NSENTER {self._pid} {args}", host=self._container_id)
        proc = subprocess.run([to_bytes(a, errors="surrogate_or_strict") for a in argv], input=in_data,
                              capture_output=True, env={"PATH": "/usr/bin:/bin"}, preexec_fn=self._apply_limits,
                              check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def _inside(self, path: str) -> bytes:
        return to_bytes(self._root + path, errors="surrogate_or_strict")

    @ensure_connect
    def put_file(self, in_path, out_path):
        super(PodmanConnection, self).put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container_id)
        if self.user:
            return super().put_file(in_path, out_path)
        try:
            shutil.copyfile(to_bytes(in_path, errors="surrogate_or_strict"), self._inside(out_path))
        except OSError as exc:
            raise AnsibleError(f"failed to copy {in_path} to {out_path} in container {self._container_id}: "
                               f"{exc}") from None
        return None

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        super(PodmanConnection, self).fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container_id)
        try:
            shutil.copyfile(self._inside(in_path), to_bytes(out_path, errors="surrogate_or_strict"))
        except OSError as exc:
            raise AnsibleError(f"failed to fetch {in_path} from container {self._container_id}: {exc}") from None
