# Copyright: JRAM infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recognise hard-coded credentials in the text of one file: AWS access key ids, secret access
keys and session tokens, and database passwords (``-p…``/``--password…`` options of the MySQL
clients, ``MYSQL_PWD``, ``password=`` in option files, ``*PASS*``-named variables, URLs).

Pure logic, no file I/O and nothing that talks to Ansible. A :class:`Finding` never holds the
secret: only where it is, what kind it is, the name it was assigned to and a masked form. The
secret values are read only to decide whether they are literals (not ``$VAR``, ``{{ var }}``,
``$(cmd)``) or placeholders; they leave this module in no return value and no exception."""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass

KINDS = {
    "aws_access_key_id": "an AWS access key id (AKIA… long-term, ASIA… temporary)",
    "aws_secret_access_key": "an AWS secret access key",
    "aws_session_token": "an AWS session token",
    "password_option": "a literal password on a command line (-pVALUE of a MySQL client, --password=VALUE)",
    "mysql_pwd": "a literal MYSQL_PWD environment value",
    "option_file_password": "password= in an option file section such as [client] of ~/.my.cnf",
    "password_assignment": "a literal value assigned to a name ending in PASS, PASSWD, PASSWORD, PWD, PW or SECRET",
    "url_password": "a password inside a database URL (mysql://user:password@host)",
}

# The kinds by what they are keys to, for the options and reports that name a group
# (credential_scan's fail_on_kinds accepts a group name for its kinds).
KIND_GROUPS = {
    "aws": ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"),
    "database": ("password_option", "mysql_pwd", "option_file_password", "password_assignment", "url_password"),
}

MASK = "****"
# The example credentials of the AWS documentation, found in vendored docs and tests everywhere.
DOC_EXAMPLE = "EXAMPLE"
# Values filled in elsewhere: Jinja ({{ x }}, {% %}), Python formats (%(x)s, %s, {}, {0}), YAML tags
# (!vault), build templates (@DB_PASS@) and Windows variables (%DB_PASS%).
TEMPLATE = re.compile(r"\{\{|\{%|%\([\w.]+\)[sdr]?|%[sdr]\b|\{\d*\}|^!|^@\w+@?$|^%\w+%$")

MYSQL_CLIENTS = (
    "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow", "mysqlpump", "mysqlbinlog",
    "mysqlslap", "mysqlsh", "mariadb", "mariadb-dump", "mariadb-admin", "mariadb-import", "mariadb-check",
    "mariadb-show", "mariadb-binlog", "mariadb-slap",
)
# Files whose bare words are identifiers, not literals: only quoted values count there.
CODE_EXTENSIONS = (".py", ".rb", ".pl", ".pm", ".js", ".mjs", ".ts", ".php", ".java", ".go", ".groovy", ".cs", ".lua")
CODE_SHEBANG = re.compile(r"^#!.*\b(python[0-9.]*|perl|ruby|node|php|lua)\b")
INI_EXTENSIONS = (".cnf", ".ini")
SECTION = re.compile(r"^\[[A-Za-z0-9_][A-Za-z0-9_.:@ -]*\]\s*$")
SECTIONS = re.compile(r"^\[[A-Za-z0-9_][A-Za-z0-9_.:@ -]*\][ \t]*\r?$", re.MULTILINE)
INI_LINE = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.-]*)\s*=\s*(?P<value>.*?)\s*$")

_B64 = "A-Za-z0-9/+"
ACCESS_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?P<value>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])")
# A 40-character secret right after an access key id: the CSV the IAM console hands out,
# "AKIA…,secret" or "AKIA… secret".
SECRET_AFTER_ID = re.compile(
    rf"(?:AKIA|ASIA)[A-Z0-9]{{16}}[\"']?\s*[,:;\s]\s*[\"']?(?P<value>[{_B64}]{{40}})(?![{_B64}=])")
# NAME <sep> VALUE, where the separator is =, :=, =>, ": " (YAML), ":" after a quoted name (JSON,
# Python dicts) or, for the AWS names only, white space ("aws configure set NAME VALUE").
ASSIGNMENT = re.compile(
    r"(?<![\w.$/-])(?<!\$\{)(?P<q>[\"']?)(?P<name>[A-Za-z_][\w.-]*)(?P=q)"
    r"(?P<sep>\s*(?:=>|:=|=(?!=)|:(?=\s)|(?<=[\"']):)\s*|\s+)")
AWS_SECRET_NAME = re.compile(
    r"(?i)(?:^|[_.-])(?:aws[-_]?)?secret[-_]?(?:access[-_]?)?key$|secretaccesskey$|(?:^|[_.-])aws[-_]?secret$")
AWS_TOKEN_NAME = re.compile(r"(?i)(?:^|[_.-])(?:aws[-_]?)?(?:session|security)[-_]?token$")
AWS_ACCESS_KEY_NAME = re.compile(r"(?i)access[-_]?key[-_]?id$|accesskeyid$")
LONG_PASSWORD_OPTION = re.compile(r"(?i)^--(?:[a-z0-9]+-)*(?:password|passwd|pass|pwd)(?:=|$)")
URL_PASSWORD = re.compile(
    r"(?i)\b(?P<name>mysql|mariadb|mysql\+\w+|postgres(?:ql)?|mongodb(?:\+srv)?|redis|rediss|amqps?)://"
    r"[^:/\s@'\"]*:(?P<value>[^@\s/'\"]+)@")
AWS_HINT = re.compile(r"(?i)secret|token|AKIA|ASIA")
OPTION_HINT = re.compile(r"(?i)-p[^\s]|--[\w-]*(?:pass|pwd)")
PASSWORD_HINT = re.compile(r"(?i)pass|pw|secret")
# Searched in the lower-cased text (faster than a case-insensitive pattern).
ANY_HINT = re.compile(r"secret|token|akia|asia|://|-p[^\s]|pass|pw")
_PASSWORD_WORDS = ("pass", "passwd", "password", "pwd", "pw", "passphrase", "secret")
# Run-together names (DBPW, ROOTPWD, DBPASS, MYSQLPASSWORD): a password word after what it is the
# password of. A bare suffix would take BYPASS, COMPASS and TRESPASS for passwords.
_JOINED_PASSWORD_NAME = re.compile(
    r"[a-z0-9]*(?:pw|pwd)|(?:db|sql|mysql|mariadb|maria|rds|pg|root|admin|user|app|dump|my)"
    r"(?:pass|passwd|passphrase|secret)")
# A value that names a secret in AWS Secrets Manager (its ARN, or a name such as rds/nazca given to
# a name ending in SECRET) instead of holding one.
SECRET_ID = re.compile(r"arn:aws[\w-]*:secretsmanager:\S*|[a-z0-9][a-z0-9_.+=@-]*(?:/[a-z0-9_.+=@-]+)+")
# Parts of names that switch a password feature rather than hold one (MARIADB_ALLOW_EMPTY_PASSWORD).
_NOT_A_PASSWORD = {"allow", "empty", "random", "generate", "skip", "prompt", "ask", "old", "no"}
# Values that stand for no password. Words such as "password", "secret", "PASS" or "changeme" are
# not here: they are real (weak) passwords on real hosts (mysqldump -ppassword).
_PLACEHOLDERS = {"", "none", "null", "nil", "~", "redacted", "...", "…"}
# Booleans: the value of a switch in YAML or JSON ("password: false"), a literal anywhere else
# (DB_PASS=on in a script is the password "on").
_BOOLEANS = {"true", "false", "yes", "no", "on", "off"}
_OPERATORS = "|&;()<>`"


class CredentialScanError(Exception):
    """Base class of the scanner's errors; messages never carry a scanned value."""


class ScanOptionError(CredentialScanError):
    """A module option is malformed (refused before anything is read)."""


@dataclass(frozen=True)
class Finding:
    """One credential in one file. Holds no part of the secret except, for an access key id, the
    four-letter prefix that says whether it is long-term (AKIA) or temporary (ASIA)."""

    path: str
    line: int
    kind: str
    name: str | None
    masked: str
    archived: bool = False

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "kind": self.kind, "name": self.name, "masked": self.masked,
                "archived": self.archived}

    def where(self) -> str:
        return f"{self.path}:{self.line}:{self.kind}"


def mask(kind: str, value: str) -> str:
    """What a report may show of ``value``: the AKIA/ASIA prefix of an access key id, nothing of
    anything else."""
    if kind == "aws_access_key_id":
        return value[:4] + MASK
    return MASK


def is_binary(head: bytes) -> bool:
    """A file is binary when its first block holds a NUL byte (what grep and git decide on)."""
    return b"\0" in head


def file_style(path: str, first_line: str) -> str:
    """``code`` for program sources (only quoted values are literals there), ``ini`` for MySQL
    option files, ``shell`` for everything else (scripts, crontabs, env and YAML files)."""
    base = os.path.basename(path).lower()
    if base.endswith(CODE_EXTENSIONS) or CODE_SHEBANG.match(first_line):
        return "code"
    if base.endswith(INI_EXTENSIONS):
        return "ini"
    return "shell"


def is_password_name(name: str) -> bool:
    """True for DB_PASS, db_password, MYSQL_PWD, PGPASSWORD, rootPassword, spring.datasource.password,
    DBPW, DB_SECRET, SECRET; false for password_file, PASS_MAX_DAYS, BYPASS, COMPASS, PWD/OLDPWD (the
    shell's directories), secret_id and switches like MARIADB_ALLOW_EMPTY_PASSWORD."""
    lower = name.lower()
    if lower in ("pwd", "oldpwd"):
        return False
    parts = [p for p in re.split(r"[_.-]+|(?<=[a-z0-9])(?=[A-Z])", name) if p]
    if not parts or _NOT_A_PASSWORD.intersection(p.lower() for p in parts):
        return False
    last = parts[-1].lower().rstrip("0123456789")  # DB_PASS2, MYSQL_PWD_1
    if not last and len(parts) > 1:
        last = parts[-2].lower()
    return last in _PASSWORD_WORDS or last.endswith(("password", "passwd")) \
        or bool(_JOINED_PASSWORD_NAME.fullmatch(last))


@dataclass(frozen=True)
class Word:
    """One shell word: its text without quotes, where it starts and ends in the line, its text as
    written, and whether any letter or digit of it was unquoted."""

    value: str
    start: int
    end: int
    raw: str
    bare: bool


def read_word(text: str, pos: int) -> Word:
    """Read the shell word that starts at ``pos`` (stops at unquoted white space or an operator)."""
    out = []
    i, n = pos, len(text)
    bare = False
    while i < n:
        c = text[i]
        if c in " \t\n" or c in _OPERATORS:
            break
        if c == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            out.append(text[i + 1:j])
            i = j + 1
            continue
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(text[i])
                i += 1
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            out.append(text[i + 1])
            bare = True
            i += 2
            continue
        bare = bare or c.isalnum()
        out.append(c)
        i += 1
    end = min(i, n)
    return Word("".join(out), pos, end, text[pos:end], bare)


def shell_segments(text: str) -> list[list[Word]]:
    """The simple commands of a line: words split at |, ||, &&, ;, &, (, ), backticks and redirections,
    and at a comment's # (the comment is scanned as a command of its own: commented-out commands
    still hold their secrets)."""
    segments: list[list[Word]] = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\n":
            i += 1
        elif c in _OPERATORS or c == "#":
            if segments[-1]:
                segments.append([])
            i += 1
        else:
            word = read_word(text, i)
            segments[-1].append(word)
            i = max(word.end, i + 1)
    return [s for s in segments if s]


def _expansion_first(raw: str) -> bool:
    """Whether a shell word as written starts with an expansion ($VAR, ${VAR}, $(cmd), `cmd`, "$VAR"),
    so that its value comes from elsewhere; '$VAR' in single quotes is literal."""
    rest = raw.lstrip('"')
    return not raw.startswith("'") and rest[:1] in ("$", "`")


def _after(raw: str, marker: str) -> str:
    """The raw text after ``marker`` (-p, =) in a word, with the quote it is inside of, if any."""
    j = raw.find(marker)
    prefix, rest = raw[:j], raw[j + len(marker):]
    if "'" in prefix:
        return "'" + rest
    return '"' + rest if '"' in prefix else rest


def _is_reference(raw: str, value: str, style: str, bare: bool = False) -> bool:
    """A value that names a secret rather than holds it: $VAR, "$(cmd)", {{ vault_x }}, %(x)s, !vault,
    and in program sources any unquoted word (an identifier) or an interpolation."""
    if style == "code" and (bare or re.search(r"\$\{|\$[A-Za-z_]|#\{", value)):
        return True
    if style != "ini" and _expansion_first(raw):
        return True
    return bool(TEMPLATE.search(value))


def _is_placeholder(value: str, switch: bool = False) -> bool:
    """Empty, null, a mask (****, xxx, REDACTED), <password>, or the start of a structure ({...}, [...],
    @{...}); with ``switch`` (an unquoted YAML value) also a boolean."""
    if value.lstrip().startswith(("{", "[", "@{", "@(")):
        return True
    v = value.strip().strip(",;").lower()
    if (v.isdigit() and len(v) <= 2) or not any(c.isalnum() for c in v):
        return True  # an enum or flag (TASK_LOGON_PASSWORD = 1), or punctuation: not a password
    return (v in _PLACEHOLDERS or (switch and v in _BOOLEANS) or set(v) <= set("*x.")
            or bool(re.fullmatch(r"<[^>]*>|\[[^\]]*\]|\{[^}]*\}", v))
            or v in ("|", ">", "|-", ">-", "|+", ">+"))


def _is_secret_id(name: str, value: str) -> bool:
    """A Secrets Manager ARN anywhere, or a secret's name (rds/nazca) given to a name ending in SECRET:
    where the secret is, not the secret."""
    if value.startswith("arn:aws") and SECRET_ID.fullmatch(value):
        return True
    last = re.split(r"[_.-]+|(?<=[a-z0-9])(?=[A-Z])", name)[-1].lower()
    return last.endswith("secret") and bool(SECRET_ID.fullmatch(value))


def _is_doc_example(value: str) -> bool:
    """The AWS documentation's keys and tokens (AKIA…7EXAMPLE, …EXAMPLEKEY, tokens with EXAMPLE
    inside) and filled-in shapes such as ASIAXXXXXXXXXXXXXXXX."""
    return DOC_EXAMPLE in value or len(set(value[4:])) == 1


class _Line:
    """A logical line (physical lines joined at a trailing backslash) and the physical line each
    character came from."""

    def __init__(self, text: str, starts: list[int], first: int):
        self.text = text
        self.starts = starts
        self.first = first

    def number(self, offset: int) -> int:
        return self.first + bisect.bisect_right(self.starts, offset) - 1


def _continues(physical: str) -> bool:
    physical = physical.rstrip("\r")
    return (len(physical) - len(physical.rstrip("\\"))) % 2 == 1


def logical_lines(text: str):
    """The logical lines of ``text`` that may hold a credential: those with one of the rules' words,
    joined with the lines they continue or are continued from. The words are found in one pass over
    the whole text; the other lines are never built."""
    lines = text.split("\n")
    lower = text.lower()
    candidates, number, last = [], 0, 0
    for m in ANY_HINT.finditer(lower):
        number += lower.count("\n", last, m.start())
        last = m.start()
        if not candidates or candidates[-1] != number:
            candidates.append(number)
    done = -1
    for index in candidates:
        if index <= done:
            continue
        start = index
        while start > 0 and start - 1 > done and _continues(lines[start - 1]):
            start -= 1
        parts, starts, length, i = [], [], 0, start
        while True:
            physical = lines[i].rstrip("\r")
            continued = _continues(physical) and i + 1 < len(lines)
            piece = physical[:-1] + " " if continued else physical
            starts.append(length)
            parts.append(piece)
            length += len(piece)
            i += 1
            if not continued:
                break
        done = i - 1
        yield _Line("".join(parts), starts, start + 1)


class _Collector:
    def __init__(self, path: str):
        self.path = path
        self.found: list[tuple[int, int, int, Finding]] = []  # (line, start, end, finding)
        self.spans: list[tuple[int, int]] = []

    def add(self, line: _Line, start: int, end: int, kind: str, name: str | None, value: str) -> None:
        if any(start < e and s < end for s, e in self.spans):
            return  # already reported by a more specific rule
        self.spans.append((start, end))
        number = line.number(start)
        self.found.append((number, start, end, Finding(self.path, number, kind, name, mask(kind, value))))

    def next_line(self) -> None:
        self.spans = []


def _scan_aws(line: _Line, style: str, out: _Collector) -> None:
    text = line.text
    for m in ASSIGNMENT.finditer(text):
        name, sep = m.group("name"), m.group("sep")
        secret, token = AWS_SECRET_NAME.search(name), AWS_TOKEN_NAME.search(name)
        if not (secret or token):
            continue
        if sep.strip() == ":" and not m.group("q") and text[:m.start()].strip(" -"):
            continue  # "name: value" only as a YAML key at the start of its line
        word = read_word(text, m.end())
        value = word.value.rstrip(",;)]}")
        if not value or _is_reference(word.raw, value, style, word.bare) or _is_placeholder(value) \
                or _is_doc_example(value):
            continue
        if not re.fullmatch(rf"[{_B64}]+={{0,2}}", value):
            continue
        specific = bool(re.search(r"(?i)aws|access", name))
        if secret and (len(value) == 40 or (specific and len(value) >= 16)):
            out.add(line, word.start, word.end, "aws_secret_access_key", name, value)
        elif token and len(value) >= (16 if specific else 100):
            out.add(line, word.start, word.end, "aws_session_token", name, value)
    for m in SECRET_AFTER_ID.finditer(text):
        if not _is_doc_example(m.group("value")):
            out.add(line, m.start("value"), m.end("value"), "aws_secret_access_key", None, m.group("value"))
    for m in ACCESS_KEY_ID.finditer(text):
        value = m.group("value")
        if _is_doc_example(value):
            continue
        before = re.search(r"[\"']?(?P<name>[A-Za-z_][\w.-]*)[\"']?\s*(?:=>|[:=]|\s)\s*[\"']?$", text[:m.start()])
        name = before.group("name") if before and AWS_ACCESS_KEY_NAME.search(before.group("name")) else None
        out.add(line, m.start(), m.end(), "aws_access_key_id", name, value)


def _is_mysql_client(word: Word) -> bool:
    value = word.value.strip("[](),;\"'")
    return os.path.basename(value) in MYSQL_CLIENTS


def _scan_options(line: _Line, style: str, out: _Collector) -> None:
    for segment in shell_segments(line.text):
        client = next((i for i, w in enumerate(segment) if _is_mysql_client(w)), None)
        for i, word in enumerate(segment):
            value = word.value.strip("[](),;")
            if client is not None and i > client and value.startswith("-p") and len(value) > 2:
                secret = value[2:]
                if not (_is_reference(_after(word.raw, "-p"), secret, style, word.bare) or _is_placeholder(secret)):
                    out.add(line, word.start, word.end, "password_option", "-p", secret)
                continue
            m = LONG_PASSWORD_OPTION.match(value)
            if not m:
                continue
            name = value[:m.end()].rstrip("=")
            if _NOT_A_PASSWORD.intersection(name.lower().strip("-").split("-")):
                continue  # --no-password, --ask-password: switches, not values
            if value[m.end() - 1:m.end()] == "=":
                secret, source, raw = value[m.end():], word, _after(word.raw, "=")
            elif client is None and i + 1 < len(segment) and not segment[i + 1].value.startswith("-"):
                source = segment[i + 1]
                secret, raw = source.value.strip("[](),;"), source.raw
            else:
                # --password alone prompts; a MySQL client takes its value only after "=", so in
                # "mysql --password basis" the next word is the database and the client prompts.
                continue
            if secret and not (_is_reference(raw, secret, style, source.bare) or _is_placeholder(secret)):
                out.add(line, word.start, source.end, "password_option", name, secret)


def _scan_assignments(line: _Line, style: str, in_section: bool, out: _Collector) -> None:
    text = line.text
    ini = INI_LINE.match(text) if (style == "ini" or in_section) else None
    if ini and is_password_name(ini.group("name")):
        value = ini.group("value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        start, end = ini.start("value"), max(ini.end("value"), ini.start("value") + 1)
        if not (_is_placeholder(value) or _is_reference(value, value, "ini")):
            kind = "mysql_pwd" if ini.group("name").upper() == "MYSQL_PWD" else "option_file_password"
            out.add(line, start, end, kind, ini.group("name"), value)
        return
    for m in ASSIGNMENT.finditer(text):
        name, sep = m.group("name"), m.group("sep")
        if not sep.strip() or not is_password_name(name):
            continue
        word = read_word(text, m.end())
        if sep.strip() == ":":
            if m.group("q"):
                # "name": value in JSON, a Python or Jinja dict: only a quoted value is a literal.
                if word.bare:
                    continue
            elif text[:m.start()].strip(" -") or re.sub(r"\s+#.*$", "", text[word.end:]).strip():
                continue  # YAML name: value counts only as a key starting its line, the value its only word
        value = word.value.rstrip(",;)]}")  # the end of a call, list or dict
        yaml_switch = sep.strip() == ":" and not m.group("q") and word.bare
        if _is_reference(word.raw, value, style, word.bare) or _is_placeholder(value, yaml_switch) \
                or _is_secret_id(name, value):
            continue
        kind = "mysql_pwd" if name.upper() == "MYSQL_PWD" else "password_assignment"
        out.add(line, word.start, max(word.end, word.start + 1), kind, name, value)


def _scan_urls(line: _Line, out: _Collector) -> None:
    for m in URL_PASSWORD.finditer(line.text):
        value = m.group("value")
        if re.search(r"\$|\{\{|%\(", value) or _is_placeholder(value):
            continue
        out.add(line, m.start("value"), m.end("value"), "url_password", m.group("name").lower() + "://", value)


def scan_text(text: str, path: str = "") -> list[Finding]:
    """Every credential in ``text`` (the content of the file ``path``), in line order."""
    first_line = text.split("\n", 1)[0]
    style = file_style(path, first_line)
    # Option file sections ([client], [mysqldump]); in a script (a heredoc writing an option file)
    # the lines that follow stay shell lines.
    sections = [] if style != "shell" or first_line.startswith("#!") else \
        [text.count("\n", 0, m.start()) + 1 for m in SECTIONS.finditer(text)]
    out = _Collector(path)
    for line in logical_lines(text):
        out.next_line()
        if SECTION.match(line.text):
            continue
        in_section = bool(sections) and sections[0] < line.first
        if AWS_HINT.search(line.text):
            _scan_aws(line, style, out)
        if "://" in line.text:
            _scan_urls(line, out)
        if OPTION_HINT.search(line.text):
            _scan_options(line, style, out)
        if PASSWORD_HINT.search(line.text):
            _scan_assignments(line, style, in_section, out)
    return [item[-1] for item in sorted(out.found, key=lambda item: item[:2])]


def summary(findings: list[Finding]) -> str:
    """The one-line list a failed task shows: path:line:kind, never a value."""
    return ", ".join(f.where() for f in findings)
