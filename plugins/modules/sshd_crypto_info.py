# -*- coding: utf-8 -*-

# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshd_crypto_info
short_description: Choose sshd's algorithms for the host's OpenSSH and check that they lock nobody out
version_added: 0.1.0
description:
  - Reads the host's OpenSSH version (C(ssh -V)) and the algorithms its build knows (C(ssh -Q kex), C(cipher),
    C(mac), C(key-sig)), and returns the algorithm set the C(jram.dumphost.harden) role installs
    (RV(algorithms)) - key exchange chosen by version (post-quantum hybrids where the version has them), no
    NIST curves or SHA-1, only what this build knows.
  - With O(config), asks C(sshd -T -f config) what a candidate configuration would make sshd accept, and says in
    one line each (RV(refusals)) which admin user (O(admin_users)) would have no accepted key type left in the
    files sshd's C(AuthorizedKeysFile) names, and whether C(HostKeyAlgorithms) would leave sshd without a host key.
  - Changes nothing.
author:
  - JRAM infrastructure team (@jram)
options:
  recommend:
    description:
      - Return RV(algorithms). Fails, saying why, for an OpenSSH older than 7.4 or one that knows none of an option's
        algorithms.
    type: bool
    default: true
  config:
    description: A candidate main sshd configuration to check with C(sshd -T); no check without it.
    type: path
  admin_users:
    description: Users whose authorized keys must stay usable. Users the host does not know are skipped.
    type: list
    elements: str
    default: []
  ssh_bin:
    description: The OpenSSH client of the same build as sshd, for C(-V) and C(-Q).
    type: str
    default: ssh
  sshd_bin:
    description: The sshd binary, for C(-T).
    type: path
    default: /usr/sbin/sshd
notes:
  - C(sshd -T) and the users' key files need root; run with C(become=true).
  - Supports check mode fully - it only reads - and returns the same as outside it.
extends_documentation_fragment:
  - jram.dumphost.attributes
  - jram.dumphost.attributes.no_diff
"""

EXAMPLES = r"""
- name: Choose the algorithms for this host's OpenSSH
  jram.dumphost.sshd_crypto_info:
  become: true
  register: crypto

- name: Check a candidate configuration against the admin users' keys
  jram.dumphost.sshd_crypto_info:
    recommend: false
    config: /tmp/candidate/sshd_config
    admin_users: [ec2-user]
  become: true
  register: candidate

- name: Refuse a configuration that would lock an admin out
  ansible.builtin.assert:
    that: candidate.refusals | length == 0
    fail_msg: "{{ candidate.refusals | join('; ') }}"
    quiet: true
"""

RETURN = r"""
openssh_version:
  description: The host's OpenSSH version, major.minor.
  returned: always
  type: str
  sample: "9.2"
supported:
  description: Per option, the algorithms this OpenSSH build knows (C(ssh -Q)).
  returned: always
  type: dict
  sample: {KexAlgorithms: [curve25519-sha256, ecdh-sha2-nistp256], Ciphers: [aes256-gcm@openssh.com]}
algorithms:
  description:
    - sshd option to comma-separated algorithms, in order of preference. The user key option is
      C(PubkeyAcceptedKeyTypes) before OpenSSH 8.5.
  returned: when O(recommend=true)
  type: dict
  sample:
    KexAlgorithms: sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
    Ciphers: chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
    MACs: hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
    HostKeyAlgorithms: ssh-ed25519,rsa-sha2-512,rsa-sha2-256
    PubkeyAcceptedAlgorithms: ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256
effective:
  description: What sshd would use with O(config) - its C(kexalgorithms), C(ciphers), C(macs), C(hostkeyalgorithms)
    and accepted user key algorithms, as lists.
  returned: when O(config) is given
  type: dict
  sample: {pubkeyacceptedalgorithms: [ssh-ed25519, rsa-sha2-512], hostkeyalgorithms: [ssh-ed25519]}
admin_keys:
  description: Per admin user the host knows, per authorized keys file, the key types found.
  returned: when O(config) is given
  type: dict
  sample: {ec2-user: {/home/ec2-user/.ssh/authorized_keys: [ssh-ed25519]}}
refusals:
  description: One line each - an admin user who would be locked out, a host left without a usable host key.
  returned: when O(config) is given
  type: list
  elements: str
  sample: ["harden_ssh_admin_users: ec2-user would be locked out: sshd's PubkeyAcceptedAlgorithms accepts none of ..."]
"""

import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.jram.dumphost.plugins.module_utils import sshd_crypto
from ansible_collections.jram.dumphost.plugins.module_utils.sshd_crypto import SshdCryptoError


def _run(module: AnsibleModule, *argv: str) -> tuple[int, str, str]:
    return module.run_command(list(argv), environ_update={"LC_ALL": "C"})


def _supported(module: AnsibleModule, ssh: str) -> dict[str, list[str]]:
    lists = {}
    for option, query in sshd_crypto.QUERIES.items():
        rc, out, err = _run(module, ssh, "-Q", query)
        if rc != 0 and query == "key-sig":  # older clients only know `-Q key`
            rc, out, err = _run(module, ssh, "-Q", "key")
        if rc != 0:
            raise SshdCryptoError(f"{ssh} -Q {query} failed ({err.strip()[:120]}): install the OpenSSH client of the "
                                  "same build as sshd, or set harden_sshd_crypto_enabled: false")
        lists[option] = out.split()
    return lists


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise SshdCryptoError(f"cannot read {path} ({exc.strerror}): run the module as root (become: true)") from None


def check_candidate(module: AnsibleModule, params: dict) -> dict:
    """effective, admin_keys and refusals for the candidate configuration."""
    rc, out, err = _run(module, params["sshd_bin"], "-T", "-f", params["config"])
    if rc != 0:
        raise SshdCryptoError(f"{params['sshd_bin']} -T -f {params['config']} failed ({' '.join(err.split())[:200]}): "
                              "fix or remove the sshd option it names")
    settings = sshd_crypto.sshd_settings(out)
    option = "PubkeyAcceptedAlgorithms" if "pubkeyacceptedalgorithms" in settings else "PubkeyAcceptedKeyTypes"
    user_algorithms = sshd_crypto.algorithm_list(settings, option.lower())
    host_algorithms = sshd_crypto.algorithm_list(settings, "hostkeyalgorithms")
    effective = {keyword: sshd_crypto.algorithm_list(settings, keyword)
                 for keyword in ("kexalgorithms", "ciphers", "macs", "hostkeyalgorithms", option.lower())}
    patterns = " ".join(settings.get("authorizedkeysfile", [".ssh/authorized_keys"])).split()
    admin_keys = {}
    for user in params["admin_users"]:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        files = {}
        for path in sshd_crypto.authorized_keys_paths(patterns, user, entry.pw_dir, entry.pw_uid):
            text = _read(path)
            if text is not None:
                files[path] = sshd_crypto.key_types(text)
        admin_keys[user] = files
    host_key_types = []
    for path in settings.get("hostkey", []):
        text = _read(f"{path}.pub")
        if text and text.split():
            host_key_types.append(text.split()[0])
    refusals = sshd_crypto.admin_refusals(admin_keys, user_algorithms, option)
    host_refusal = sshd_crypto.host_key_refusal(host_key_types, host_algorithms)
    return {"effective": effective, "admin_keys": admin_keys,
            "refusals": refusals + ([host_refusal] if host_refusal else [])}


def read(module: AnsibleModule) -> dict:
    params = module.params
    ssh = module.get_bin_path(params["ssh_bin"])
    if ssh is None:
        raise SshdCryptoError(f"{params['ssh_bin']} not found: install the OpenSSH client of the same build as sshd "
                              "(openssh-clients, openssh-client), or set harden_sshd_crypto_enabled: false")
    _rc, out, err = _run(module, ssh, "-V")
    version = sshd_crypto.parse_version(f"{err}\n{out}")
    supported = _supported(module, ssh)
    result = {"openssh_version": f"{version[0]}.{version[1]}", "supported": supported}
    if params["recommend"]:
        result["algorithms"] = sshd_crypto.choose(version, supported)
    if params["config"]:
        result.update(check_candidate(module, params))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            recommend=dict(type="bool", default=True),
            config=dict(type="path"),
            admin_users=dict(type="list", elements="str", default=[]),
            ssh_bin=dict(type="str", default="ssh"),
            sshd_bin=dict(type="path", default="/usr/sbin/sshd"),
        ),
        supports_check_mode=True,
    )
    try:
        result = read(module)
    except SshdCryptoError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
