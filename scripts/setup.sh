#!/bin/bash
# Install what the project needs on a fresh Debian or Ubuntu machine, as root: the Debian
# packages the sandbox runs on and a .venv with the pinned Python requirements. Idempotent:
# does nothing (quickly) when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "setup: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root: the sandbox installs Debian packages and runs rootful podman (try: sudo make ${MAKECMDGOALS:-setup})"
command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1 \
    || fail "this needs a Debian or Ubuntu machine with apt-get and dpkg; none found on PATH"

APT_PACKAGES=(podman runc debootstrap mariadb-server mariadb-client python3 python3-venv python3-pip
              zstd pigz gzip curl git ca-certificates uidmap iproute2)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    # The sandbox runs its own MariaDB: keep the distribution's service from starting.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 0755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing pinned Python requirements into .venv"
    # pip's notes about index locations configured on this machine but absent are noise here.
    pip_install() {
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" \
            2> >(grep -v "^WARNING: Location '" >&2)
    }
    python3 -m venv .venv
    pip_install --upgrade pip
    pip_install -r requirements.txt
    pip_install --no-deps -e .
    echo "$want" >"$stamp"
fi

# ansible-test runs each sanity test in a virtual environment of its own with its pinned
# requirements (under ~/.ansible/test/venv): create them once, so that make lint needs no network.
sanity_stamp=.venv/.sanity-venvs
sanity_want=$(.venv/bin/ansible-test --version 2>/dev/null)-$(sha256sum scripts/ansible_test_get_pip.py | cut -d' ' -f1)
if [ "$(cat "$sanity_stamp" 2>/dev/null)" != "$sanity_want" ]; then
    echo "setup: creating ansible-test's sanity environments"
    bash scripts/sanity.sh --prime-venvs >/dev/null
    echo "$sanity_want" >"$sanity_stamp"
fi

# Make the collection importable as jram.dumphost from this checkout.
link=.collections/ansible_collections/jram/dumphost
if [ "$(readlink "$link" 2>/dev/null)" != "../../.." ]; then
    mkdir -p "$(dirname "$link")"
    ln -sfn ../../.. "$link"
fi
