"""Per-object digests of a dump, streamed line by line for `compare`.

A mysqldump stream is cut into sections at mysqldump's own headers (table structure and data,
views, routines, events). Per section: a hash of the exact text (volatile lines left out), a hash
of its statements other than data, the row count, and an order-independent digest of the rows
(the sum of each row's SHA-256 modulo 2^256), so that the same rows in another batching or order
still match. A CSV export is one section whose rows are its records."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# Lines that differ between two dumps of the same data: dates, hosts, versions, MariaDB's sandbox line.
VOLATILE = (b"-- Dump completed", b"-- Host: ", b"-- Server version", b"-- MySQL dump ", b"-- MariaDB dump ",
            b"/*M!999999\\- enable the sandbox mode */")
SECTION = [
    (re.compile(rb"^-- (?:Table structure|Dumping data) for table `((?:[^`]|``)+)`"), "table"),
    (re.compile(rb"^-- (?:Temporary (?:table|view) structure|Final view structure) for view `((?:[^`]|``)+)`"),
     "view"),
    (re.compile(rb"^-- Dumping routines for database '((?:[^']|'')+)'"), "routines"),
    (re.compile(rb"^-- Dumping events for database '((?:[^']|'')+)'"), "events"),
    (re.compile(rb"^-- Current Database: `((?:[^`]|``)+)`"), "database"),
]
INSERT = re.compile(rb"^(?:INSERT|REPLACE)(?: IGNORE)? INTO `(?:[^`]|``)+` VALUES ?")
TUPLE = re.compile(rb"\((?:'(?:[^'\\]|\\.)*'|[^'()])*\)", re.DOTALL)
AUTO_INCREMENT = re.compile(rb" AUTO_INCREMENT=\d+")
MOD = 1 << 256


@dataclass
class Section:
    name: str
    kind: str
    exact: hashlib._Hash = field(default_factory=hashlib.sha256)
    ddl: hashlib._Hash = field(default_factory=hashlib.sha256)
    rows: int = 0
    content: int = 0

    def add_row(self, row: bytes) -> None:
        self.rows += 1
        self.content = (self.content + int.from_bytes(hashlib.sha256(row).digest(), "big")) % MOD

    def summary(self) -> dict:
        return {"kind": self.kind, "rows": self.rows, "ddl_sha256": self.ddl.hexdigest(),
                "content_sha256": f"{self.content:064x}", "exact_sha256": self.exact.hexdigest()}


def dump_sections(lines: Iterator[bytes], ignore_auto_increment: bool = False) -> dict[str, dict]:
    sections: dict[str, Section] = {}
    database = None
    current = sections.setdefault("(preamble)", Section("(preamble)", "preamble"))
    in_rows = False  # inside a MariaDB-style INSERT with one row per line
    for line in lines:
        if line.startswith(VOLATILE):
            continue
        if ignore_auto_increment and b" AUTO_INCREMENT=" in line:
            line = AUTO_INCREMENT.sub(b"", line)
        if in_rows:
            current.exact.update(line + b"\n")
            if line.startswith(b"("):
                current.add_row(line[:-1] if line.endswith((b",", b";")) else line)
                if line.endswith(b";"):
                    in_rows = False
                continue
            in_rows = False
        if line.startswith(b"-- "):
            for pattern, kind in SECTION:
                m = pattern.match(line)
                if m:
                    name = m.group(1).decode("utf-8", "replace")
                    if kind == "database":
                        database = name
                    key = _key(kind, name, database)
                    current = sections.setdefault(key, Section(key, kind))
                    break
        current.exact.update(line + b"\n")
        m = INSERT.match(line)
        if m:
            rest = line[m.end():]
            if not rest:
                in_rows = True
                continue
            for t in TUPLE.finditer(rest):
                current.add_row(t.group())
            continue
        if line and not line.startswith(b"--"):
            current.ddl.update(line + b"\n")
    return {name: s.summary() for name, s in sections.items()}


def _key(kind: str, name: str, database: str | None) -> str:
    if kind in ("routines", "events", "database"):
        return f"({kind} {name})"
    qualified = f"{database}.{name}" if database else name
    return qualified if kind == "table" else f"{qualified} (view)"


def csv_sections(lines: Iterator[bytes]) -> dict[str, dict]:
    """One section `(query)`: the header line as its DDL, the records as its rows."""
    section = Section("(query)", "query")

    def text() -> Iterator[str]:
        for line in lines:
            section.exact.update(line + b"\n")
            yield line.decode("utf-8", "replace") + "\n"

    first = True
    for record in csv.reader(text()):
        encoded = "\x1f".join(record).encode("utf-8")
        if first:
            section.ddl.update(encoded)
            first = False
        else:
            section.add_row(encoded)
    return {"(query)": section.summary()}
