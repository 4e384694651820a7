"""A dump much smaller than the job's previous one: compared before it is published.

The run's raw bytes and rows per table are compared with the manifest of the job's previous
published dump. Beyond the job's limits (`anomaly:`; by default the raw bytes 20 % smaller, a
table with 50 % fewer rows, or a table gone) the run is anomalous: it publishes (the data may
really have shrunk) and exits 13, or, with `anomaly.action: refuse`, publishes nothing and exits
14. Pure: the manifests are read by the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

ACTIONS = ("publish", "refuse")


@dataclass(frozen=True)
class AnomalyLimits:
    action: str = "publish"
    raw_bytes_drop_percent: float = 20.0
    table_rows_drop_percent: float = 50.0
    table_gone: bool = True


@dataclass(frozen=True)
class Finding:
    what: str  # "(raw bytes)" or a table's name
    before: int
    after: Optional[int]  # None: the table is gone
    drop_percent: float
    limit_percent: Optional[float]

    def describe(self) -> str:
        if self.after is None:
            return f"table {self.what} is gone (it had {self.before} rows)"
        unit = "bytes" if self.what == RAW else "rows"
        subject = "the dump" if self.what == RAW else f"table {self.what}"
        return (f"{subject} has {self.after} {unit}, {self.drop_percent:.0f} % fewer than {self.before} "
                f"(limit {self.limit_percent:g} %)")


RAW = "(raw bytes)"


@dataclass(frozen=True)
class Comparison:
    previous: Optional[dict[str, Any]]  # url, date, run_id of the manifest compared with; None: none found
    findings: list[Finding] = field(default_factory=list)

    @property
    def anomalous(self) -> bool:
        return bool(self.findings)

    @property
    def tables(self) -> list[str]:
        return [f.what for f in self.findings if f.what != RAW]

    def describe(self) -> str:
        if self.previous is None:
            return "no earlier published dump of the job to compare with"
        against = f"the dump of {self.previous.get('date')} ({self.previous.get('url')})"
        if not self.findings:
            return f"within the limits against {against}"
        return f"smaller than {against}: " + "; ".join(f.describe() for f in self.findings)

    def record(self) -> dict[str, Any]:
        return {"anomalous": self.anomalous, "previous": self.previous, "tables": self.tables,
                "findings": [{"what": f.what, "before": f.before, "after": f.after,
                              "drop_percent": round(f.drop_percent, 1), "limit_percent": f.limit_percent}
                             for f in self.findings]}


def _drop(before: int, after: int) -> float:
    return 100.0 * (before - after) / before if before > 0 else 0.0


def compare(previous: Optional[dict[str, Any]], raw_bytes: int, tables: dict[str, int],
            limits: AnomalyLimits) -> Comparison:
    """This run (raw bytes, rows per table) against the previous published manifest (None: none)."""
    if previous is None:
        return Comparison(None)
    source = {"url": previous.get("url"), "date": previous.get("date"), "run_id": previous.get("run_id")}
    findings = []
    before_raw = previous.get("raw_bytes")
    if isinstance(before_raw, int) and _drop(before_raw, raw_bytes) > limits.raw_bytes_drop_percent:
        findings.append(Finding(RAW, before_raw, raw_bytes, _drop(before_raw, raw_bytes),
                                limits.raw_bytes_drop_percent))
    before_tables = previous.get("tables") if isinstance(previous.get("tables"), dict) else {}
    for name in sorted(before_tables):
        before = before_tables[name]
        if not isinstance(before, int):
            continue
        if name not in tables:
            if limits.table_gone:
                findings.append(Finding(name, before, None, 100.0, None))
            continue
        drop = _drop(before, tables[name])
        if drop > limits.table_rows_drop_percent:
            findings.append(Finding(name, before, tables[name], drop, limits.table_rows_drop_percent))
    return Comparison(source, findings)
