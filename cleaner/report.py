"""``cleaner report``: what the receipts say, and whether their chain holds end to end.

Counts deletions, already-gone and failed actions by day and reason (receipts recorded
within ``--since``), finds deletions later than their ``deadline``, and verifies every
cycle object, every record in it, and HEAD, whatever ``--since`` says.

Exit status: 0 the chain holds; 1 a record or object is missing, altered or out of
order (each problem names the object and line); 2 bad arguments, or a store that cannot
be opened or read.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

import orjson

from cleaner.chain import JSON, Layout, parse_timestamp
from cleaner.sealing import Head, SealError, read_head
from cleaner.storage import StorageError, Store, open_store
from cleaner.verify import ObjectSummary, Problem, link_objects, read_object

_SINCE = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_COUNTED = ("deleted", "already_gone", "failed")


@dataclass
class Late:
    """The deletions that came after their deadline."""

    count: int = 0
    max_late_s: float = 0.0
    oldest: dict[str, JSON] | None = None  # the late batch created first


@dataclass
class AuditReport:
    """Everything ``cleaner report`` prints."""

    since: datetime
    rows: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # day, reason, outcome
    late: Late = field(default_factory=Late)
    unconfirmed: int = 0  # intents with no receipt in their cycle
    objects: int = 0
    records: int = 0
    pending_cycles: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def chain_ok(self) -> bool:
        return not self.problems

    def total(self, outcome: str) -> int:
        return sum(n for (_, _, out), n in self.rows.items() if out == outcome)

    def as_json(self) -> dict[str, JSON]:
        by_day: dict[tuple[str, str], dict[str, JSON]] = {}
        for (day, reason, outcome), n in sorted(self.rows.items()):
            row = by_day.setdefault((day, reason), {"day": day, "reason": reason})
            row[outcome] = n
        return {
            "since": self.since.isoformat(),
            **{outcome: self.total(outcome) for outcome in _COUNTED},
            "by_day": list(by_day.values()),
            "late": {
                "count": self.late.count,
                "max_late_s": self.late.max_late_s,
                "oldest": self.late.oldest,
            },
            "unconfirmed_intents": self.unconfirmed,
            "chain_ok": self.chain_ok,
            "chain": {
                "objects": self.objects,
                "records": self.records,
                "pending_cycles": self.pending_cycles,
                "problems": [p.as_json() for p in self.problems],
            },
        }


async def build_report(
    store: Store, *, since: datetime, workspace: str | None = None
) -> AuditReport:
    """Read and verify the whole trail; count receipts recorded at or after ``since``."""
    layout = Layout(workspace)
    report = AuditReport(since=since)
    pending = await store.list(layout.pending)
    report.pending_cycles = len({path.split("/")[-2] for path in pending})
    summaries: list[ObjectSummary] = []
    for path in await store.list(layout.cycles):
        summary = await read_object(store, path, on_record=lambda r: _count(report, r))
        summaries.append(summary)
        report.records += summary.records
        report.problems.extend(summary.problems)
        report.unconfirmed += len(summary.open_intents)
    report.objects = len(summaries)
    try:
        head: Head | None = await read_head(store, layout)
    except SealError as exc:
        report.problems.append(Problem(layout.head, None, str(exc)))
        head = None
    report.problems.extend(link_objects(summaries, head, head_path=layout.head))
    return report


def _count(report: AuditReport, record: dict[str, JSON]) -> None:
    if record.get("kind") != "receipt" or not isinstance(record.get("at"), str):
        return
    at = parse_timestamp(str(record["at"]))
    if at < report.since:
        return
    outcome, reason = str(record.get("outcome")), str(record.get("reason"))
    report.rows[(str(record["at"])[:10], reason, outcome)] += 1
    deadline, deleted_at = record.get("deadline"), record.get("deleted_at") or record["at"]
    if outcome != "deleted" or not isinstance(deadline, str):
        return
    late_s = (parse_timestamp(str(deleted_at)) - parse_timestamp(deadline)).total_seconds()
    if late_s <= 0:
        return
    late = report.late
    late.count += 1
    late.max_late_s = max(late.max_late_s, late_s)
    created = str(record.get("created_at") or deadline)
    if late.oldest is None or created < str(late.oldest["created_at"]):
        late.oldest = {
            "batch_id": record.get("batch_id"),
            "created_at": created,
            "deadline": deadline,
            "deleted_at": deleted_at,
            "late_s": late_s,
        }


def parse_since(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``45s``."""
    match = _SINCE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 30d, 12h or 90m, not {text!r}")
    return timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])


def main(
    argv: Sequence[str],
    *,
    audit_url: str,
    now: datetime,
    workspace: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Run ``cleaner report [--since 30d] [--format table|json]``; returns the exit status."""
    import asyncio

    stdout = out or sys.stdout
    parser = argparse.ArgumentParser(prog="cleaner report", description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=parse_since, default=timedelta(days=30))
    parser.add_argument("--format", choices=("table", "json"), default="table")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2
    try:
        store = open_store(audit_url)
        report = asyncio.run(build_report(store, since=now - args.since, workspace=workspace))
    except (StorageError, ValueError) as exc:
        print(f"cleaner report: cannot read the audit store: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        stdout.write(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        stdout.write(render_table(report))
    return 0 if report.chain_ok else 1


def render_table(report: AuditReport) -> str:
    """The human form: one row per day and reason, then lateness and the chain verdict."""
    lines = [f"{'day':<10}  {'reason':<36}  {'deleted':>8}  {'already_gone':>12}  {'failed':>6}"]
    days = sorted({(day, reason) for day, reason, _ in report.rows})
    for day, reason in days:
        n = [report.rows[(day, reason, outcome)] for outcome in _COUNTED]
        lines.append(f"{day:<10}  {reason:<36}  {n[0]:>8}  {n[1]:>12}  {n[2]:>6}")
    n = [report.total(outcome) for outcome in _COUNTED]
    lines.append(f"{'total':<10}  {'':<36}  {n[0]:>8}  {n[1]:>12}  {n[2]:>6}")
    late = report.late
    if late.oldest is not None:
        lines.append(
            f"late: {late.count} deletions after their deadline (worst {late.max_late_s:.0f} s);"
            f" oldest {late.oldest['batch_id']} created {late.oldest['created_at']},"
            f" {float(str(late.oldest['late_s'])):.0f} s late"
        )
    else:
        lines.append("late: none")
    if report.unconfirmed:
        lines.append(f"unconfirmed: {report.unconfirmed} intents without a receipt")
    verdict = "ok" if report.chain_ok else f"BROKEN ({len(report.problems)} problems)"
    lines.append(
        f"chain: {verdict}: {report.objects} cycle objects, {report.records} records,"
        f" {report.pending_cycles} cycles pending"
    )
    lines.extend(f"  {problem}" for problem in report.problems)
    return "\n".join(lines) + "\n"
