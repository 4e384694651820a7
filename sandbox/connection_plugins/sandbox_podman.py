# The sandbox's connection to its dump host container: containers.podman.podman with pipelining.
#
# The collection's plugin runs `podman exec` without `-i`, so a module cannot be piped to the
# container's Python and every task pays five `podman exec` calls (home directory, temporary
# directory, chmod, the module, cleanup) of about 170 ms each. With the module's input on stdin it
# pays one. Measured on the sandbox: phase 2 on a legacy host 134 s -> 98 s wall, 58 -> 42 CPU-s.
#
# Only the sandbox and the molecule scenarios use it (ansible.cfg's connection_plugins,
# inventories/sandbox, molecule/*/molecule.yml); production reaches its host over SSH. None of the
# playbooks become another user, so pipelining changes no permission path they take.
from __future__ import annotations

DOCUMENTATION = """
    name: sandbox_podman
    short_description: Run tasks in the sandbox's podman containers, with pipelining
    description:
        - The C(containers.podman.podman) connection, with the module's input piped to
          C(podman exec -i) so that a module task costs one C(podman exec) instead of five.
        - The files a task transfers still go through the container's mounted filesystem.
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

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection


class Connection(PodmanConnection):
    """containers.podman.podman, with stdin attached when there is input to pipe."""

    transport = "sandbox_podman"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        # ConnectionBase's bookkeeping; the parent class's exec_command would run without `-i`.
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "-i"] if in_data is not None else ["exec"]
        if self.user:
            args.extend(("--user", self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
