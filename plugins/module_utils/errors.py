# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors of the cutover logic.

Every message is one line that names the cause and the next step. Modules turn them into
``fail_json(msg=...)`` in one place; nothing here talks to Ansible."""

from __future__ import annotations


class CutoverError(Exception):
    """Base class: something prevents the requested change; nothing was changed unless said."""


class InvalidOptionError(CutoverError):
    """A module option is malformed or inconsistent (refused before anything is read or changed)."""


class ScheduleError(InvalidOptionError):
    """A cron schedule is malformed or cannot be converted exactly to the host's time zone."""


class LegacyLineError(CutoverError):
    """The legacy cron line cannot be identified unambiguously."""


class TransitionRefusedError(CutoverError):
    """The requested phase change is not a move of the phase graph (e.g. skipping a phase)."""


class GateRefusedError(CutoverError):
    """A gate of the phase graph is not satisfied (validated days, soak time, production runs)."""


class LedgerError(CutoverError):
    """The cutover ledger cannot be read or written."""


class HostError(CutoverError):
    """Reading or writing a file or the crontab on the host failed."""
