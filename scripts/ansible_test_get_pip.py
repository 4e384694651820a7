"""Offline stand-in for the pip bootstrap script ansible-test downloads.

ansible-test creates one virtual environment per sanity test without pip, then runs
``get-pip.py [pip options] pip==X ... --no-setuptools --no-wheel`` fetched from
ci-files.testing.ansible.com, a host this project cannot reach. This does the same from the
interpreter's bundled pip (ensurepip) and the package index pip is configured for; scripts/setup.sh
puts it where ansible-test looks for its cached copy (~/.ansible/test/cache/get_pip_<version>.py)."""

import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")

environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)  # sets PIP_CONFIG_FILE=/dev/null in os.environ: keep the machine's pip settings
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args], env=environ, check=False).returncode)
