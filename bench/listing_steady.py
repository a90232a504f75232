"""List requests per cycle with cleaner.listing, for a workspace that retains many batches.

Run: `.venv/bin/python bench/listing_steady.py [--retained 300000] [--cycles 24]
[--basis created_at|ended_at]`

The emulator runs in this process on a manual clock (no HTTP: this counts requests, it does
not time them). It holds ``--retained`` ended batches spread over the retention, receives
new batches at the same rate, and a cycle runs every ``--interval-min`` minutes: retrieve,
page the segments the listing core asks for, plan, delete what is due, finish. Each line
shows the pages one cycle listed against the target
``ceil(new/1000) + ceil(crossed processing/1000) + ceil(crossed retention/1000) + 3``.
"""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime, timedelta

from cleaner.emulator import Emulator, EmulatorConfig, ManualClock, Population
from cleaner.emulator.wire import ApiError
from cleaner.listing import ListingMemory, Mode, decide, fingerprint
from cleaner.listing_scan import Scan
from cleaner.models import Action, ActionKind, AgeBasis, Batch
from cleaner.policy import RetentionPolicy
from cleaner.policy import decide as policy_decide
from cleaner.wire import parse_batch

DAY = 86400.0


def cycle(
    emulator: Emulator, memory: ListingMemory | None, policy: RetentionPolicy, now: datetime
) -> tuple[ListingMemory, Scan, int]:
    """One cycle against the emulator; returns the next memory, the scan and actions."""
    stamp = fingerprint(policy)
    plan = decide(memory, now=now, policy=policy, policy_fingerprint=stamp)
    scan = Scan(
        plan,
        memory,
        now=now,
        policy=policy,
        judge=lambda batch: policy_decide(batch, policy, now),
        policy_fingerprint=stamp,
    )
    seen: dict[str, Batch] = {}
    for batch_id in scan.retrieve:
        try:
            seen[batch_id] = batch = parse_batch(emulator.retrieve(batch_id, ""))
        except ApiError:
            scan.missing(batch_id)
        else:
            scan.retrieved(batch)
    while (segment := scan.next_segment()) is not None:
        before, after = segment.before_id, None
        while True:
            data, _ = emulator.list_page(limit=1000, after_id=after, before_id=before, base_url="")
            items = data["data"]
            assert isinstance(items, list)
            batches = [parse_batch(item) for item in items]
            seen.update((b.id, b) for b in batches)
            more = bool(data["has_more"])
            if not scan.absorb(segment, batches, has_more=more) or not more:
                break
            before, after = (batches[0].id, None) if before else (None, batches[-1].id)
    done = []
    for batch_id, batch in seen.items():
        action = policy_decide(batch, policy, now)
        if not isinstance(action, Action):
            continue
        if action.kind is ActionKind.CANCEL:
            emulator.cancel(batch_id, "")
        if parse_batch(emulator.get(batch_id)).ended:
            emulator.delete(batch_id)
            done.append(batch_id)
    return scan.finish(done=done), scan, len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retained", type=int, default=300_000)
    parser.add_argument("--cycles", type=int, default=24)
    parser.add_argument("--interval-min", type=float, default=5.0)
    parser.add_argument("--basis", choices=[b.value for b in AgeBasis], default="created_at")
    args = parser.parse_args()
    retention_days = 30
    policy = RetentionPolicy(
        retention=timedelta(days=retention_days),
        processing_retention=timedelta(hours=24),
        age_basis=AgeBasis(args.basis),
    )
    clock = ManualClock(datetime(2026, 11, 1, tzinfo=UTC))
    emulator = Emulator(EmulatorConfig(api_key="k", processing_time_s=3600), clock=clock)
    emulator.seed(
        Population(count=args.retained, status="ended", age_s=0, spread_s=retention_days * DAY)
    )
    per_s = args.retained / (retention_days * DAY)
    memory, previous = None, None
    for number in range(args.cycles):
        now = clock()
        created = [parse_batch(b).created_at for b in emulator.batches()]
        memory, scan, deleted = cycle(emulator, memory, policy, now)
        line = f"cycle {number:3d} {scan.mode.value:11s} pages {scan.counts.pages:4d}"
        line += f" retrieves {scan.counts.retrieves:3d} deleted {deleted:4d}"
        if previous is not None and scan.mode is Mode.INCREMENTAL:
            new = sum(c > previous for c in created)
            crossed = [
                sum(previous - w <= c < now - w for c in created)
                for w in (policy.processing_retention, policy.retention)
            ]
            target = sum(math.ceil(n / 1000) for n in (new, *crossed)) + 3
            line += f" new {new} crossed {crossed} target {target}"
        print(line, flush=True)
        previous = now
        step = args.interval_min * 60
        for _ in range(round(per_s * step)):
            clock.advance(1 / per_s)
            emulator.add_batch()
        clock.set(now + timedelta(seconds=step))


if __name__ == "__main__":
    main()
