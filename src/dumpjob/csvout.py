"""RFC 4180 CSV for the `query` kind: a header line, CRLF line ends, fields quoted when they hold
a comma, a double quote, a line break, leading or trailing blanks, or are empty; quotes doubled.

NULL is written as the job's `csv.null` token unquoted (default `NULL`, as `mysql --batch`
prints it); a string equal to the token is quoted, so the two stay distinguishable (MySQL's
`LOAD DATA ... FIELDS OPTIONALLY ENCLOSED BY '"'` reads them back exactly). Binary values
(BLOB, BINARY) are written as `0x` followed by upper-case hex. Values are the server's own text
(no float or date reformatting)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional, Union

from .config import CsvFormat

Value = Optional[Union[str, bytes]]
SPECIAL = (",", '"', "\r", "\n")


class CsvEncoder:
    def __init__(self, fmt: CsvFormat):
        self.null = fmt.null
        self.eol = fmt.line_terminator
        self.header = fmt.header

    def field(self, value: Value) -> str:
        if value is None:
            return self.null
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "0x" + bytes(value).hex().upper()
        text = value if isinstance(value, str) else str(value)
        if (not text or text == self.null or any(c in text for c in SPECIAL)
                or text[0] in " \t" or text[-1] in " \t"):
            return '"' + text.replace('"', '""') + '"'
        return text

    def line(self, values: Sequence[Value]) -> str:
        return ",".join(self.field(v) for v in values) + self.eol

    def lines(self, rows: Iterable[Sequence[Value]]) -> bytes:
        return "".join(self.line(r) for r in rows).encode("utf-8")
