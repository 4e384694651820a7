# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who may reach the instance metadata service, and the nftables rule set and systemd unit that
enforce it on the dump host (jram.dumphost.imds_access).

Pure: no file, no command, no Ansible. Every error is one line naming the cause and the next step."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.jram.dumphost.plugins.module_utils.errors import InvalidOptionError

# Phases in which a job's legacy cron line may still run as its legacy user (everything but retired).
RETIRED = "retired"
# Key-retirement states of a user whose static key has left the host (roles/static_keys).
KEYS_GONE = ("retired", "deleted")
KEYS_BACK = "rolled_back"

TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$")
UNIT_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,200}\.service$")


def _add(out: dict, user: str, reason: str) -> None:
    reasons = out.setdefault(user, [])
    if reason not in reasons:
        reasons.append(reason)


def allow_list(users: list, legacy_jobs: dict, job_phases: dict, key_users: dict, key_holders: list) -> dict:
    """The users allowed to reach the metadata service, each with why: ``{user: [reason, ...]}``.

    - ``users``: always allowed (root, the dump program's user, the inventory's extra users);
    - the legacy user of each job in ``legacy_jobs`` (cutover_jobs: ``{job: {legacy: {user}}}``) whose
      phase (``job_phases``, from the cutover ledger; a job it does not know is in legacy) is not
      ``retired``: its legacy cron line may still run and, once its static key is retired, needs the role;
    - a legacy user whose static key has not been retired yet: key retirement proves as that user that the
      AWS CLI gets the instance role. ``key_users`` is the key-retirement ledger's users (``{user: {state}}``).
      While that ledger records no user at all, key retirement has not run and every legacy user may still
      hold a key; once it ran, the ledger knows who did: a user it does not record held none;
    - a user whose retired key a rollback of key retirement wrote back (state ``rolled_back``);
    - ``key_holders``: users holding key material now that key retirement is about to prove as.
    """
    out: dict = {}
    for user in users:
        _add(out, user, "always allowed")
    legacy_users: dict = {}
    for job in sorted(legacy_jobs):
        user = ((legacy_jobs[job] or {}).get("legacy") or {}).get("user")
        if not user:
            raise InvalidOptionError(f"legacy_jobs: job {job} names no legacy.user: give each job of cutover_jobs "
                                     "its legacy cron user")
        legacy_users.setdefault(user, [])
        phase = job_phases.get(job, "legacy")
        if phase != RETIRED:
            legacy_users[user].append(f"{job} ({phase})")
    for user, running in sorted(legacy_users.items()):
        if running:
            _add(out, user, "legacy job(s) not retired: " + ", ".join(running))
    for user in sorted(legacy_users):
        state = _state(key_users.get(user))
        if not key_users and not state:
            _add(out, user, "static key not retired yet (key retirement has not run)")
        elif state and state not in KEYS_GONE and state != KEYS_BACK:
            _add(out, user, f"static key not retired yet (key retirement: {state})")
    for user in sorted(key_users):
        if _state(key_users[user]) == KEYS_BACK:
            _add(out, user, "static key written back by the rollback of key retirement")
    for user in key_holders:
        _add(out, user, "holds a static key that key retirement proves the instance role for")
    return out


def _state(entry) -> str:
    if isinstance(entry, dict):
        return str(entry.get("state") or "")
    return str(entry or "")


def check_table(table: str) -> None:
    if not TABLE_RE.match(table or ""):
        raise InvalidOptionError(f"table {table!r} is not an nftables table name (a letter, then letters, digits "
                                 "or _, at most 63): fix imds_access_table")


def check_unit(unit: str) -> None:
    if not UNIT_RE.match(unit or ""):
        raise InvalidOptionError(f"unit {unit!r} is not a systemd service name (NAME.service): fix imds_access_unit")


def check_users(users: list, what: str) -> None:
    for user in users:
        if not isinstance(user, str) or not USER_RE.match(user):
            raise InvalidOptionError(f"{what}: {user!r} is not a user name: fix the list")


def addresses(values: list) -> list:
    """The metadata service's addresses as ip_address objects, in order, without repeats."""
    if not values:
        raise InvalidOptionError("addresses is empty: give the metadata service's address "
                                 "(169.254.169.254, and fd00:ec2::254 with IPv6)")
    out = []
    for value in values:
        try:
            address = ipaddress.ip_address(str(value).strip("[]"))
        except ValueError:
            raise InvalidOptionError(f"addresses: {value!r} is not an IP address: give the metadata service's "
                                     "address, not a host name (imds_access_addresses)") from None
        if address not in out:
            out.append(address)
    return out


def check_port(port) -> int:
    try:
        value = int(port)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= 65535:
        raise InvalidOptionError(f"port {port!r} is not a TCP port (1-65535): fix imds_access_port")
    return value


def render_rules(table: str, address_list: list, port: int, uids: dict) -> str:
    """The rule file: declare the table, delete it and define it again, so that ``nft -f`` replaces it in
    one transaction (and loads it where it does not exist yet). ``uids`` maps each allowed user to its uid.

    Output traffic to the metadata address and port from a socket whose owner is not allowed is refused
    with a TCP reset, so a request fails at once instead of timing out."""
    allowed = sorted(set(uids.values()))
    uid_set = "{ " + ", ".join(str(uid) for uid in allowed) + " }"
    names = ", ".join(f"{user} ({uid})" for user, uid in sorted(uids.items(), key=lambda item: (item[1], item[0])))
    lines = [
        "#!/usr/sbin/nft -f",
        "# Managed by jram.dumphost.imds_access: only these users reach the instance metadata service",
        f"# at {', '.join(str(a) for a in address_list)} port {port}: {names}.",
        "# Loaded at boot by its own systemd unit; changed by the playbooks (docs/imds_access.md), not by hand.",
        f"table inet {table} {{}}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "\tchain output {",
        "\t\ttype filter hook output priority filter; policy accept;",
    ]
    for address in address_list:
        family = "ip" if address.version == 4 else "ip6"
        lines.append(f"\t\t{family} daddr {address} tcp dport {port} meta skuid != {uid_set} counter "
                     f"reject with tcp reset comment \"metadata service: allowed users only\"")
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def render_unit(table: str, rules_path: str, nft: str) -> str:
    """The systemd unit that loads the rule file at boot (before the network and cron) and deletes the
    table when stopped. Of its own, so the distribution's nftables.service and its configuration are
    left alone."""
    return "\n".join([
        "# Managed by jram.dumphost.imds_access (docs/imds_access.md).",
        "[Unit]",
        f"Description=jram.dumphost: instance metadata service for the allowed users only (nftables inet {table})",
        "DefaultDependencies=no",
        "Wants=network-pre.target",
        "Before=network-pre.target shutdown.target cron.service crond.service",
        "Conflicts=shutdown.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart={nft} -f {rules_path}",
        f"ExecReload={nft} -f {rules_path}",
        f"ExecStop=-{nft} delete table inet {table}",
        "",
        "[Install]",
        "WantedBy=sysinit.target",
        "",
    ])
