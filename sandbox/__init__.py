"""The local sandbox: a private MariaDB, moto in server mode, an IMDS emulator and a podman
container standing for the dump host in its legacy state. `python -m sandbox --help`."""
