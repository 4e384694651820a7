"""The sshd algorithm table: chosen by OpenSSH version, cut to what the build knows, and the
lockout checks over admin users' keys and the host's keys."""

from __future__ import annotations

import pytest
from ansible_collections.jram.dumphost.plugins.module_utils import sshd_crypto
from ansible_collections.jram.dumphost.plugins.module_utils.sshd_crypto import SshdCryptoError

# `ssh -Q` of the builds that matter, trimmed to the parts the table touches plus what it must drop.
KEX_87 = ["diffie-hellman-group14-sha1", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
          "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256",
          "ecdh-sha2-nistp384", "curve25519-sha256", "curve25519-sha256@libssh.org",
          "sntrup761x25519-sha512@openssh.com"]
KEX_99 = [*KEX_87, "sntrup761x25519-sha512", "mlkem768x25519-sha256"]
SIGS = ["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256", "ssh-rsa", "rsa-sha2-256",
        "rsa-sha2-512", "ssh-dss", "sk-ssh-ed25519@openssh.com"]
CIPHERS = ["3des-cbc", "aes128-cbc", "aes128-ctr", "aes256-ctr", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com"]
MACS = ["hmac-sha1", "hmac-sha2-256", "hmac-sha1-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
        "umac-64-etm@openssh.com"]


def supported(kex):
    return {"KexAlgorithms": kex, "Ciphers": CIPHERS, "MACs": MACS, "HostKeyAlgorithms": SIGS,
            "PubkeyAcceptedAlgorithms": SIGS}


@pytest.mark.parametrize("text, version", [
    ("OpenSSH_8.7p1, OpenSSL 3.0.8 7 Feb 2023", (8, 7)),
    ("OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.20 7 Apr 2026", (9, 2)),
    ("unknown option -- V\nOpenSSH_9.9p2, OpenSSL 3.5.0", (9, 9)),
    ("OpenSSH_10.0p2 Ubuntu-5, OpenSSL 3.5.3", (10, 0)),
])
def test_version_is_read_from_ssh_and_sshd_output(text, version):
    assert sshd_crypto.parse_version(text) == version


def test_unreadable_version_is_refused_with_the_fix():
    with pytest.raises(SshdCryptoError, match=r"cannot read the OpenSSH version from 'Dropbear.*harden_sshd_crypto"):
        sshd_crypto.parse_version("Dropbear v2022.83")


def test_87_92_and_99_pick_different_key_exchanges():
    kex = {version: sshd_crypto.wanted(version)["KexAlgorithms"] for version in ((8, 7), (9, 2), (9, 9))}
    assert kex[(8, 7)][:2] == ["curve25519-sha256", "curve25519-sha256@libssh.org"]  # hybrid offered, not preferred
    assert "sntrup761x25519-sha512@openssh.com" in kex[(8, 7)]
    assert kex[(9, 2)][0] == "sntrup761x25519-sha512"  # preferred from 9.0, upstream's default there
    assert kex[(9, 9)][0] == "mlkem768x25519-sha256" and "mlkem768x25519-sha256" not in kex[(9, 2)]
    assert len({tuple(k) for k in kex.values()}) == 3
    assert sshd_crypto.wanted((7, 4))["KexAlgorithms"] == sshd_crypto.KEX_CLASSIC
    assert sshd_crypto.wanted((10, 0))["KexAlgorithms"] == kex[(9, 9)]


def test_no_nist_curves_or_sha1_in_any_server_set():
    for since, _ in sshd_crypto.KEX_BY_VERSION:
        chosen = sshd_crypto.wanted(since)
        server = chosen["KexAlgorithms"] + chosen["HostKeyAlgorithms"] + chosen["MACs"] + chosen["Ciphers"]
        assert not [name for name in server if "nistp" in name or "sha1" in name or name == "ssh-rsa"
                    or "cbc" in name or "group-exchange" in name], since
        assert not {"ssh-rsa", "ssh-dss"} & set(chosen["PubkeyAcceptedAlgorithms"])


def test_choice_is_cut_to_what_the_build_knows_in_the_tables_order():
    chosen = sshd_crypto.choose((9, 9), supported(KEX_87))  # a 9.9 build without the newer hybrids (FIPS-like)
    assert chosen["KexAlgorithms"].split(",") == ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
                                                  "curve25519-sha256@libssh.org", "diffie-hellman-group18-sha512",
                                                  "diffie-hellman-group16-sha512"]
    assert sshd_crypto.choose((9, 9), supported(KEX_99))["KexAlgorithms"].startswith(
        "mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,")
    assert chosen["MACs"] == "hmac-sha2-256-etm@openssh.com"  # hmac-sha2-512-etm and umac-128-etm unknown here
    assert chosen["HostKeyAlgorithms"] == "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-256"
    assert chosen["PubkeyAcceptedAlgorithms"].split(",") == [
        "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com", "sk-ssh-ed25519@openssh.com", "rsa-sha2-512",
        "rsa-sha2-256", "ecdsa-sha2-nistp256"]
    for option, value in chosen.items():
        assert set(value.split(",")) <= set(supported(KEX_99)[option]), option


def test_before_85_the_user_key_option_has_its_old_name():
    chosen = sshd_crypto.choose((8, 4), supported(KEX_87))
    assert "PubkeyAcceptedKeyTypes" in chosen and "PubkeyAcceptedAlgorithms" not in chosen
    assert "sntrup" not in chosen["KexAlgorithms"]


def test_too_old_or_nothing_known_is_refused_with_the_fix():
    with pytest.raises(SshdCryptoError, match=r"OpenSSH 7\.2 is older than 7\.4.*harden_sshd_crypto_enabled: false"):
        sshd_crypto.choose((7, 2), supported(KEX_87))
    with pytest.raises(SshdCryptoError, match=r"knows none of the MACs.*harden_sshd_options\.MACs"):
        sshd_crypto.choose((9, 2), {**supported(KEX_87), "MACs": ["hmac-sha1", "hmac-md5"]})


AUTHORIZED_KEYS = """\
# ec2-user's keys
ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFake alice@laptop
from="10.0.0.0/8",command="echo \\"a b\\"; true",no-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQABFake bob
no-port-forwarding ssh-dss AAAAB3NzaC1kc3MAAACBFake old

sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tFake key
"""


def test_key_types_of_authorized_keys_lines_with_options_and_comments():
    assert sshd_crypto.key_types(AUTHORIZED_KEYS) == ["ssh-ed25519", "ssh-rsa", "ssh-dss", "sk-ssh-ed25519@openssh.com"]
    assert sshd_crypto.key_types("") == []


@pytest.mark.parametrize("key_type, algorithms, accepted", [
    ("ssh-rsa", ["rsa-sha2-512"], True),  # an RSA key signs with SHA-2
    ("ssh-rsa", ["ssh-ed25519"], False),
    ("ssh-rsa-cert-v01@openssh.com", ["rsa-sha2-256-cert-v01@openssh.com"], True),
    ("ssh-dss", list(sshd_crypto.PUBKEY_ALGORITHMS), False),
    ("ecdsa-sha2-nistp256", list(sshd_crypto.PUBKEY_ALGORITHMS), True),
    ("ecdsa-sha2-nistp256", list(sshd_crypto.HOST_KEY_ALGORITHMS), False),
])
def test_a_key_type_is_accepted_when_one_of_its_signatures_is(key_type, algorithms, accepted):
    assert sshd_crypto.accepted(key_type, algorithms) is accepted


def test_an_admin_whose_only_key_is_refused_is_named_with_the_type_and_the_fix():
    keys = {"ec2-user": {"/home/ec2-user/.ssh/authorized_keys": ["ssh-dss"]},
            "ops": {"/home/ops/.ssh/authorized_keys": ["ssh-dss", "ssh-rsa"]},
            "new": {}}
    (refusal,) = sshd_crypto.admin_refusals(keys, list(sshd_crypto.PUBKEY_ALGORITHMS), "PubkeyAcceptedAlgorithms")
    assert "\n" not in refusal
    assert refusal.startswith("harden_ssh_admin_users: ec2-user would be locked out")
    assert "(ssh-dss) in /home/ec2-user/.ssh/authorized_keys" in refusal
    assert "add an ssh-ed25519 key for ec2-user first" in refusal
    assert "harden_sshd_options.PubkeyAcceptedAlgorithms" in refusal
    only_ed25519 = ["ssh-ed25519"]
    assert len(sshd_crypto.admin_refusals(keys, only_ed25519, "PubkeyAcceptedAlgorithms")) == 2


def test_a_host_key_set_sshd_could_not_serve_is_refused():
    assert sshd_crypto.host_key_refusal(["ssh-rsa", "ecdsa-sha2-nistp256"], sshd_crypto.HOST_KEY_ALGORITHMS) is None
    refusal = sshd_crypto.host_key_refusal(["ecdsa-sha2-nistp256"], sshd_crypto.HOST_KEY_ALGORITHMS)
    assert refusal and "ecdsa-sha2-nistp256" in refusal and "ssh-keygen -A" in refusal
    assert sshd_crypto.host_key_refusal([], sshd_crypto.HOST_KEY_ALGORITHMS) is None


def test_sshd_dash_t_output_and_authorized_keys_paths():
    settings = sshd_crypto.sshd_settings("hostkey /etc/ssh/a\nhostkey /etc/ssh/b\n"
                                         "pubkeyacceptedalgorithms ssh-ed25519,rsa-sha2-512\n"
                                         "authorizedkeysfile .ssh/authorized_keys /etc/ssh/keys/%u %%h\n")
    assert settings["hostkey"] == ["/etc/ssh/a", "/etc/ssh/b"]
    assert sshd_crypto.algorithm_list(settings, "pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms") == [
        "ssh-ed25519", "rsa-sha2-512"]
    patterns = [*settings["authorizedkeysfile"][0].split(), "none", "/k/%U/%h"]
    assert sshd_crypto.authorized_keys_paths(patterns, "ops", "/home/ops", 1001) == [
        "/home/ops/.ssh/authorized_keys", "/etc/ssh/keys/ops", "/home/ops/%h", "/k/1001//home/ops"]
