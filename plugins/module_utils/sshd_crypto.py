# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sshd algorithm set the harden role installs, chosen by the host's OpenSSH version and cut
down to what that build knows, and the checks that it locks nobody out: every admin user keeps
a key type sshd accepts, and sshd keeps a host key it may offer.

Pure logic: the module ``sshd_crypto_info`` runs ``ssh -V``, ``ssh -Q`` and ``sshd -T`` and reads
the key files; nothing here runs a command."""

from __future__ import annotations

import os
import re

# Why these (ssh-audit 3.9 reports each left-out algorithm as a fail or a warning):
# - no NIST-curve key exchange or host keys (ecdh-sha2-nistp*, ecdsa-sha2-nistp*): fail;
# - no SHA-1 anywhere (hmac-sha1*, diffie-hellman-group14-sha1, ssh-rsa signatures): fail;
# - no group exchange: its strength depends on /etc/ssh/moduli, which this role leaves alone;
#   the fixed 4096- and 8192-bit groups 16 and 18 need no such file;
# - only encrypt-then-MAC MACs, 128-bit tags and more (umac-64*, non-etm MACs: warnings);
# - user keys: the NIST curves stay accepted (admins' ECDSA keys, security keys), ssh-dss and
#   SHA-1 RSA signatures do not: what OpenSSH 8.8+ itself accepts by default.
CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
           "aes256-ctr", "aes192-ctr", "aes128-ctr"]
MACS = ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"]
HOST_KEY_ALGORITHMS = ["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
                       "rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com",
                       "rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com"]
PUBKEY_ALGORITHMS = ["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
                     "sk-ssh-ed25519@openssh.com", "sk-ssh-ed25519-cert-v01@openssh.com",
                     "rsa-sha2-512", "rsa-sha2-512-cert-v01@openssh.com",
                     "rsa-sha2-256", "rsa-sha2-256-cert-v01@openssh.com",
                     "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
                     "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
                     "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
                     "sk-ecdsa-sha2-nistp256@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
                     "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"]
KEX_CLASSIC = ["curve25519-sha256", "curve25519-sha256@libssh.org",
               "diffie-hellman-group18-sha512", "diffie-hellman-group16-sha512"]
SNTRUP = ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]

# (oldest OpenSSH version, key exchange set), newest last. 7.4 brought curve25519-sha256 under its
# RFC name. 8.5 brought the post-quantum hybrid sntrup761x25519: offered there after curve25519,
# preferred from 9.0, where upstream made it the default. 9.9 brought the standard ML-KEM hybrid.
KEX_BY_VERSION = [
    ((7, 4), KEX_CLASSIC),
    ((8, 5), [*KEX_CLASSIC[:2], *SNTRUP, *KEX_CLASSIC[2:]]),
    ((9, 0), [*SNTRUP, *KEX_CLASSIC]),
    ((9, 9), ["mlkem768x25519-sha256", *SNTRUP, *KEX_CLASSIC]),
]
OLDEST = KEX_BY_VERSION[0][0]

# The sshd option each set goes to, and the `ssh -Q` query that lists what the build knows.
QUERIES = {"KexAlgorithms": "kex", "Ciphers": "cipher", "MACs": "mac",
           "HostKeyAlgorithms": "key-sig", "PubkeyAcceptedAlgorithms": "key-sig"}
# A key of the type on the left signs with any of these (RSA keys: SHA-2 or, if allowed, SHA-1).
SIGNATURES = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-rsa-cert-v01@openssh.com": ("rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
                                     "ssh-rsa-cert-v01@openssh.com"),
}

_VERSION = re.compile(r"OpenSSH_(\d+)\.(\d+)")
_KEY_TYPE = re.compile(r"^(?:ssh|ecdsa|sk|rsa|webauthn)-[A-Za-z0-9@.+-]+$")


class SshdCryptoError(Exception):
    """The algorithm set cannot be chosen or would lock someone out; one line, cause and fix."""


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) from `ssh -V` or `sshd -V` output, e.g. 'OpenSSH_8.7p1, OpenSSL 3.0.8'."""
    match = _VERSION.search(text or "")
    if not match:
        raise SshdCryptoError(f"cannot read the OpenSSH version from {(text or '').strip()[:80]!r}: install "
                              "the OpenSSH client (ssh) of the same build as sshd, or set "
                              "harden_sshd_crypto_enabled: false")
    return int(match.group(1)), int(match.group(2))


def pubkey_option(version: tuple[int, int]) -> str:
    """The name of the user key option: PubkeyAcceptedKeyTypes before OpenSSH 8.5."""
    return "PubkeyAcceptedAlgorithms" if version >= (8, 5) else "PubkeyAcceptedKeyTypes"


def wanted(version: tuple[int, int]) -> dict[str, list[str]]:
    """The algorithm set for an OpenSSH version, before it meets what the build knows."""
    if version < OLDEST:
        raise SshdCryptoError(f"OpenSSH {version[0]}.{version[1]} is older than {OLDEST[0]}.{OLDEST[1]}, the "
                              "oldest version with an algorithm set here: upgrade OpenSSH, or set "
                              "harden_sshd_crypto_enabled: false")
    kex = [kex for since, kex in KEX_BY_VERSION if version >= since][-1]
    return {"KexAlgorithms": list(kex), "Ciphers": list(CIPHERS), "MACs": list(MACS),
            "HostKeyAlgorithms": list(HOST_KEY_ALGORITHMS), "PubkeyAcceptedAlgorithms": list(PUBKEY_ALGORITHMS)}


def choose(version: tuple[int, int], supported: dict[str, list[str]]) -> dict[str, str]:
    """sshd option -> comma-separated algorithms: the version's set in its order, without
    anything the build does not list in `supported` (option -> `ssh -Q` output)."""
    chosen = {}
    for option, algorithms in wanted(version).items():
        known = set(supported.get(option, []))
        kept = [name for name in algorithms if name in known]
        if not kept:
            raise SshdCryptoError(f"this sshd knows none of the {option} the role would set ({', '.join(algorithms)}):"
                                  f" set harden_sshd_options.{option}, or harden_sshd_crypto_enabled: false")
        chosen[pubkey_option(version) if option == "PubkeyAcceptedAlgorithms" else option] = ",".join(kept)
    return chosen


def sshd_settings(text: str) -> dict[str, list[str]]:
    """`sshd -T` output as lower-case keyword -> values (one per line the keyword appears on)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        keyword, _sep, value = line.strip().partition(" ")
        if keyword:
            settings.setdefault(keyword.lower(), []).append(value.strip())
    return settings


def algorithm_list(settings: dict[str, list[str]], *keywords: str) -> list[str]:
    """The comma-separated list of the first keyword `sshd -T` printed."""
    for keyword in keywords:
        if settings.get(keyword):
            return [name for name in settings[keyword][0].split(",") if name]
    return []


def _tokens(line: str) -> list[str]:
    """An authorized_keys line split at whitespace outside double quotes (options may hold spaces)."""
    tokens, current, quoted, escaped = [], "", False, False
    for char in line:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == '"':
            current, quoted = current + char, not quoted
        elif char.isspace() and not quoted:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def key_types(text: str) -> list[str]:
    """The key type of every key line of an authorized_keys file (options, comments skipped)."""
    types = []
    for line in text.splitlines():
        tokens = _tokens(line.strip())
        if not tokens or tokens[0].startswith("#"):
            continue
        for kind, blob in zip(tokens, tokens[1:]):
            if _KEY_TYPE.match(kind) and blob.startswith("AAAA"):
                types.append(kind)
                break
    return types


def accepted(key_type: str, algorithms: list[str]) -> bool:
    """Whether a key of this type can authenticate (or serve as host key) under these algorithms."""
    return any(signature in algorithms for signature in SIGNATURES.get(key_type, (key_type,)))


def authorized_keys_paths(patterns: list[str], user: str, home: str, uid: int) -> list[str]:
    """The files sshd's AuthorizedKeysFile (tokens %%, %h, %u, %U; relative to the home) names."""
    paths = []
    for pattern in patterns:
        if pattern.lower() == "none":
            continue
        path = re.sub(r"%([%hUu])", lambda m: {"%": "%", "h": home, "u": user, "U": str(uid)}[m.group(1)], pattern)
        paths.append(path if os.path.isabs(path) else os.path.join(home, path))
    return paths


def admin_refusals(admin_keys: dict[str, dict[str, list[str]]], algorithms: list[str], option: str) -> list[str]:
    """One line per admin user whose keys (user -> file -> key types) all fall outside `algorithms`.
    A user without any key is the PasswordAuthentication guard's business, not this one's."""
    refusals = []
    for user, files in sorted(admin_keys.items()):
        types = sorted({kind for kinds in files.values() for kind in kinds})
        if types and not any(accepted(kind, algorithms) for kind in types):
            where = ", ".join(sorted(path for path, kinds in files.items() if kinds))
            refusals.append(f"harden_ssh_admin_users: {user} would be locked out: sshd's {option} accepts none of "
                            f"{user}'s key types ({', '.join(types)}) in {where}; add an ssh-ed25519 key for {user} "
                            f"first, or allow the type in harden_sshd_options.{option}")
    return refusals


def host_key_refusal(host_key_types: list[str], algorithms: list[str]) -> str | None:
    """One line when HostKeyAlgorithms would offer none of the host's keys, else None."""
    if not host_key_types or any(accepted(kind, algorithms) for kind in host_key_types):
        return None
    types = ", ".join(sorted(host_key_types))
    return (f"harden_sshd_options: HostKeyAlgorithms allows none of the host's keys ({types}), so sshd could "
            "not start: create an Ed25519 host key (ssh-keygen -A) first, or set "
            "harden_sshd_options.HostKeyAlgorithms")
