#!/bin/bash
# ansible-test sanity on the collection exactly as it ships: the tarball `ansible-galaxy collection
# build` makes (galaxy.yml's build_ignore applied), unpacked where ansible-test needs it
# (ansible_collections/jram/dumphost/) next to the amazon.aws and community.aws the venv's ansible
# package carries, plus tests/sanity/ (the ignore file). Extra arguments go to ansible-test, e.g.
# `scripts/sanity.sh --test pep8` or `--prime-venvs`.
#
# ansible-test runs every test in a virtual environment of its own (~/.ansible/test/venv) with its
# pinned requirements; it bootstraps pip there with a script it downloads from a host outside the
# package index, so the offline stand-in scripts/ansible_test_get_pip.py is put in its cache first.
# The first run creates those environments from the package index (about a minute); later runs
# reuse them and need no network.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin

pip_version=$("$BIN/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._internal.host_configs import NativePythonConfig
print(get_venv_packages(NativePythonConfig(version="3.11", path="'"$BIN"'/python"))["pip"])')
cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
if ! cmp -s scripts/ansible_test_get_pip.py "$cache"; then
    mkdir -p "$(dirname "$cache")"
    cp scripts/ansible_test_get_pip.py "$cache"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$BIN/ansible-galaxy" collection build --output-path "$work/dist" . >/dev/null
root=$work/ansible_collections
mkdir -p "$root/jram/dumphost/tests"
tar -xzf "$work"/dist/jram-dumphost-*.tar.gz -C "$root/jram/dumphost"
cp -r tests/sanity "$root/jram/dumphost/tests/"
site=$("$BIN/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[0])')
for dependency in amazon community; do
    ln -s "$site/$dependency" "$root/$dependency"
done
cd "$root/jram/dumphost"
"$BIN/ansible-test" sanity --local --python 3.11 --color no "$@"
