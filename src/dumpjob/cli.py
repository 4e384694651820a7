"""Command line entry point (the commands arrive with the dump program)."""

import sys


def main() -> int:
    print("dumpjob: no commands yet", file=sys.stderr)
    return 2
