"""Reading a mysqldump stream as it passes: rows per table, the table being dumped, the trailer.

Fast and exact because mysqldump never writes a raw line break inside a value: a statement ends
at the first ";\\n" and a line begins only where mysqldump began one. MariaDB's client writes one
row per line after `INSERT INTO t VALUES`, so the rows of a statement are the line breaks before
its ");\\n" (one bytes.find and one single-byte bytes.count per statement or block, in C over the
whole block); Oracle's client writes a whole extended INSERT on one line (rows are counted
string-aware, outside quotes). Memory and copies are bounded: only a short incomplete line outside
the rows is carried between chunks, and only it is joined with the next chunk's first line.

The two searches over every byte of row data (the statement's end, the line breaks before it)
run on StringZilla's SIMD kernels when the `stringzilla` package is installed: about 0.12
CPU-second per GiB against 0.8 with the standard library's bytes.count and re, which stay the
fallback (`DUMPJOB_SCAN=stdlib` forces them; see docs/dumpjob.md, "Performance")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import ConfigError

TRAILER = b"-- Dump completed"
DATA_HEADER = re.compile(rb"^-- Dumping data for table `((?:[^`]|``)+)`")
CURRENT_DB = re.compile(rb"^-- Current Database: `((?:[^`]|``)+)`")
INSERT = re.compile(rb"^(?:INSERT|REPLACE)(?: IGNORE)? INTO `((?:[^`]|``)+)` VALUES")
ESCAPE = re.compile(rb"\\.", re.DOTALL)
STRING_PAIR = re.compile(rb"'[^']*'")
NOT_QUOTE_OR_PAREN = bytes(b for b in range(256) if b not in b"'(")
MAX_CARRY = 1 << 20
STATEMENT_END = re.compile(rb"\);\n")  # re finds it about twice as fast as bytes.find (a memchr on ")")


@dataclass(frozen=True)
class Search:
    """The byte searches the scanner runs over all row data: find_statement_end(data, start), the
    offset of the next ");\n" or -1, and count(data, needle, start, end), bytes.count's meaning."""

    name: str  # stringzilla | stdlib
    version: str
    find_statement_end: Callable[[bytes, int], int]
    count: Callable[[bytes, bytes, int, int], int]


def _stdlib_end(data: bytes, start: int) -> int:
    m = STATEMENT_END.search(data, start)
    return m.start() if m else -1


STDLIB = Search("stdlib", "", _stdlib_end, lambda data, needle, start, end: data.count(needle, start, end))


def search_implementation(prefer: Optional[str] = None) -> Search:
    """`prefer` (default: the environment's DUMPJOB_SCAN, to measure one against the other), else
    StringZilla when the `stringzilla` package is installed, else the standard library."""
    prefer = prefer or os.environ.get("DUMPJOB_SCAN") or None
    if prefer not in (None, "stringzilla", "stdlib"):
        raise ConfigError(f"DUMPJOB_SCAN={prefer!r} names no scanner implementation; use stringzilla or stdlib, or "
                          "unset it")
    if prefer != "stdlib":
        try:
            import stringzilla
        except ImportError:
            if prefer == "stringzilla":
                raise ConfigError("DUMPJOB_SCAN=stringzilla but the 'stringzilla' package is not installed; install "
                                  "it or unset DUMPJOB_SCAN") from None
        else:
            find = stringzilla.find
            return Search("stringzilla", stringzilla.__version__,
                          lambda data, start: find(data, b");\n", start), stringzilla.count)
    return STDLIB


class DumpScanner:
    """Feed it the raw dump in order; read `rows`, `table`, `trailer_ok` at any time."""

    def __init__(self, multi_database: bool = False, search: Optional[Search] = None):
        self.search = search or search_implementation()
        self.rows: dict[str, int] = {}
        self.table: str | None = None
        self.database: str | None = None
        self.multi_database = multi_database
        self._state = "outside"  # outside | lines (row per line) | tuples (one-line INSERT)
        self._carry = b""
        self._edge = b""  # rows per line: the last two bytes of the last chunk
        self._skip_line = False
        self._in_string = False
        self._escape = False
        self._tail = b""

    # -- public ---------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._tail = (self._tail + chunk[-512:])[-512:]
        start = 0
        if self._carry:
            # Complete the carried line with the chunk's first line only; the rest is read in place.
            nl = chunk.find(b"\n")
            start = len(chunk) if nl < 0 else nl + 1
            head, self._carry = self._carry + chunk[:start], b""
            self._run(head, 0)
            if self._carry or start == len(chunk):  # a line still unfinished: nothing left to read
                if start < len(chunk):
                    self._carry += chunk[start:]
                return
        self._run(chunk, start)

    def _run(self, data: bytes, pos: int) -> None:
        end = len(data)
        while pos < end:
            if self._state == "lines":
                pos = self._rows_per_line(data, pos)
            elif self._state == "tuples":
                pos = self._tuples(data, pos)
            else:
                pos = self._outside(data, pos)
                if pos < 0:
                    return

    @property
    def trailer(self) -> str | None:
        """The last line when it is mysqldump's `-- Dump completed` trailer."""
        last = self._tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
        return last.decode("utf-8", "replace") if last.startswith(TRAILER) else None

    @property
    def trailer_ok(self) -> bool:
        return self.trailer is not None

    # -- states ---------------------------------------------------------------------------
    def _outside(self, data: bytes, pos: int) -> int:
        nl = data.find(b"\n", pos)
        if nl < 0:
            rest = data[pos:]
            if not self._skip_line and rest.startswith((b"INSERT", b"REPLACE")):
                m = INSERT.match(rest)
                if m and m.end() < len(rest):  # a one-line INSERT longer than this chunk: count it as it comes
                    return self._insert(m, pos, len(rest))
            if self._skip_line or len(rest) > MAX_CARRY:
                self._skip_line = True  # an overlong non-statement line (never one we parse)
            else:
                self._carry = rest
            return -1
        if self._skip_line:
            self._skip_line = False
            return nl + 1
        line = data[pos:nl]
        if line.startswith(b"-- "):
            m = DATA_HEADER.match(line)
            if m:
                self.table = self._name(m.group(1))
                self.rows.setdefault(self.table, 0)
            else:
                m = CURRENT_DB.match(line)
                if m:
                    self.database = m.group(1).replace(b"``", b"`").decode("utf-8", "replace")
        elif line.startswith((b"INSERT", b"REPLACE")):
            m = INSERT.match(line)
            if m:
                return self._insert(m, pos, len(line))
        return nl + 1

    def _insert(self, m: re.Match, pos: int, line_length: int) -> int:
        """Enter an INSERT whose header `m` matched at `pos`; the line is `line_length` bytes (so far)."""
        self.table = self._name(m.group(1))
        self.rows.setdefault(self.table, 0)
        if m.end() == line_length:
            self._state = "lines"
            return pos + m.end()  # the "\n(" of the first row starts here
        self._state = "tuples"
        self._in_string = self._escape = False
        return pos + m.end()

    def _rows_per_line(self, data: bytes, pos: int) -> int:
        # "VALUES\n(...),\n(...);\n": each row line starts after a line break, and the statement
        # ends at the first ");\n" (a value holds no raw line break). The rows are the line breaks
        # before it. The last two bytes of a chunk are kept to see a ");\n" split across chunks.
        edge, self._edge = self._edge, b""
        if edge:
            k = (edge + data[pos:pos + 2]).find(b");\n")
            if k >= 0:  # it spans the chunks: the line breaks before it were counted already
                self._state = "outside"
                return pos + k + 3 - len(edge)
        stop = self.search.find_statement_end(data, pos)
        if stop < 0:
            self.rows[self.table] += self.search.count(data, b"\n", pos, len(data))
            self._edge = (edge + data[max(pos, len(data) - 2):])[-2:]
            return len(data)
        self.rows[self.table] += self.search.count(data, b"\n", pos, stop)
        self._state = "outside"
        return stop + 3

    def _tuples(self, data: bytes, pos: int) -> int:
        stop = data.find(b";\n", pos)
        limit = stop
        if stop < 0:
            limit = len(data) - 1 if data.endswith(b";") else len(data)
            self._carry = data[limit:]
        segment = data[pos:limit]
        if self._escape and segment:
            segment = segment[1:]
            self._escape = False
        # Escapes occur only inside strings; dropping them leaves strings as plain '...' pairs.
        if b"\\" in segment:
            segment = ESCAPE.sub(b"", segment)
            if segment.endswith(b"\\"):
                self._escape = True
                segment = segment[:-1]
        tokens = segment.translate(None, NOT_QUOTE_OR_PAREN)
        if self._in_string:
            tokens = b"'" + tokens
        # Two adjacent quotes are a string without a parenthesis (or a string's end and the next
        # one's start): dropping them keeps every parenthesis's side of the quotes, and leaves the
        # regular expression only the strings that hold one.
        outside = STRING_PAIR.sub(b"", tokens.replace(b"''", b""))
        quote = outside.find(b"'")
        self._in_string = quote >= 0
        self.rows[self.table] += outside.count(b"(", 0, quote if quote >= 0 else len(outside))
        if stop < 0:
            return len(data)
        self._state = "outside"
        return stop + 2

    def _name(self, raw: bytes) -> str:
        name = raw.replace(b"``", b"`").decode("utf-8", "replace")
        if self.multi_database and self.database:
            return f"{self.database}.{name}"
        return name
