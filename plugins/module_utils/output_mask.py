# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mask password-shaped tokens in text a module returns (diffs, error messages, warnings).

Legacy crontab lines and the messages quoting them may hold a hard-coded password
(``mysqldump -pS3cret``, ``MYSQL_PWD=…``, ``--password=…``, ``IDENTIFIED BY '…'``) or an AWS key;
whatever reaches ``--diff``, ``-vvv`` or an AWX log must not. Masking errs on the side of hiding:
a token that merely looks like a password is masked too, since the output only has to say which
line changed, not what it holds. After the rules below, any line in which
:func:`credential_patterns.scan_text` still finds a credential is replaced as a whole.

Pure: no I/O."""

from __future__ import annotations

import re

from ansible_collections.jram.dumphost.plugins.module_utils import credential_patterns as cp

MASK = cp.MASK
# -pVALUE of the MySQL clients (and anything shaped like it): not inside a word or a long option.
_SHORT_P = re.compile(r"(?<![\w./-])-p(?=[^\s|&;<>])")
# --password=VALUE, --db-pass=VALUE, --pwd VALUE ...
_LONG = re.compile(r"(?i)(?<![\w-])--[\w-]*(?:password|passwd|pass|pwd)(?P<sep>=|[ \t]+(?=[^\s-]))")
# NAME=VALUE (shell, env files, cron environment lines) and NAME: VALUE / "NAME": VALUE.
_ASSIGN = re.compile(r"(?P<name>[A-Za-z_][\w.-]*)(?P<q>[\"']?)(?P<sep>[ \t]*(?:=|:[ \t])[ \t]*)")
_IDENTIFIED = re.compile(r"(?i)\bIDENTIFIED[ \t]+(?:WITH[ \t]+\S+[ \t]+)?(?:BY|AS)[ \t]+(?:PASSWORD[ \t]+)?"
                         r"(?P<value>'(?:[^'\\]|\\.|'')*'?|\"(?:[^\"\\]|\\.)*\"?|\S+)")
_B64 = "A-Za-z0-9/+"
_SECRET_KEY = re.compile(rf"(?<![{_B64}])[{_B64}]{{40}}(?![{_B64}=])")
_LONG_TOKEN = re.compile(rf"(?<![{_B64}])[{_B64}]{{100,}}={{0,2}}(?![{_B64}=])")


def _secret_name(name: str) -> bool:
    return bool(cp.is_password_name(name) or cp.AWS_SECRET_NAME.search(name) or cp.AWS_TOKEN_NAME.search(name)
                or name.upper() in ("MYSQL_PWD", "PGPASSWORD"))


_BARE = re.compile(r"[^\s|&;<>()`'\"]*")


def _token_end(line: str, start: int) -> int:
    """Where the value starting at ``start`` ends: through its closing quote when it starts with
    one, else at the first blank, quote or shell operator. A quote followed by a blank is no
    value (the end of a quoted fragment in a message)."""
    if start < len(line) and line[start] in "'\"":
        if start + 1 >= len(line) or line[start + 1].isspace():
            return start
        close = line.find(line[start], start + 1)
        if close != -1:
            return _BARE.match(line, close + 1).end()
        blank = re.search(r"\s", line[start:])
        return start + blank.start() if blank else len(line)
    return _BARE.match(line, start).end()


def _mask_words(line: str, pattern: re.Pattern, keep=lambda m: m.end()) -> str:
    """Replace the value that follows each match of ``pattern`` with the mask."""
    out, pos = [], 0
    for match in pattern.finditer(line):
        start = keep(match)
        if start < pos:
            continue
        end = _token_end(line, start)
        if end <= start:
            continue
        out.append(line[pos:start] + MASK)
        pos = end
    out.append(line[pos:])
    return "".join(out)


def _assign_start(match: re.Match) -> int:
    return match.end() if _secret_name(match.group("name")) else -1


def mask_line(line: str) -> str:
    """One line with every password-shaped token masked (``-p****``, ``MYSQL_PWD=****``)."""
    if not line.strip():
        return line
    masked = _IDENTIFIED.sub(lambda m: m.group(0)[:m.start("value") - m.start()] + MASK, line)
    masked = cp.URL_PASSWORD.sub(lambda m: m.group(0)[:m.start("value") - m.start()] + MASK + "@", masked)
    masked = _mask_words(masked, _SHORT_P)
    masked = _mask_words(masked, _LONG)
    masked = _mask_words(masked, _ASSIGN, _assign_start) if "=" in masked or ":" in masked else masked
    masked = cp.ACCESS_KEY_ID.sub(lambda m: m.group("value")[:4] + MASK, masked)
    masked = _SECRET_KEY.sub(MASK, masked)
    masked = _LONG_TOKEN.sub(MASK, masked)
    return masked


def mask_text(text: str) -> str:
    """Every line of ``text`` masked; a line in which the credential scanner still finds something
    is replaced by a note saying so. Line breaks (and ``\\r``) are kept."""
    if not text:
        return text
    out = []
    for line in text.split("\n"):
        body, cr = (line[:-1], "\r") if line.endswith("\r") else (line, "")
        masked = mask_line(body)
        if cp.ANY_HINT.search(masked.lower()) and cp.scan_text(masked):
            masked = f"{MASK} (a line holding a credential, masked whole)"
        out.append(masked + cr)
    return "\n".join(out)


def mask_value(value):
    """A result value (dict, list, str) with every string masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(item) for item in value]
    return value
