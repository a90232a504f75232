"""Drain benchmarks: against the rate limit, against the official SDK, and memory at scale.

Run: `.venv/bin/python bench/run.py [--quick] [--only 1,3]` (not part of the test suite).

Each scenario starts the emulator in its own process on 127.0.0.1 with a seeded population
and server-side latency, runs `cleaner run --once` against it as a separate process (under
`launch.py`, which reports its wall time, peak RSS and CPU seconds), and reads the emulator's
request counters and journal afterwards.

1. rate-bound drain: expired ended batches plus young ones behind a requests-per-minute limit,
   with CLEANER_REQUESTS_PER_MINUTE set to the same budget.
2. latency-bound drain: no rate limit, 100 ms latency; cleaner against the SDK loop in
   `sdk_loop.py`, each on its own identically seeded emulator.
3. cancel path: running batches past their processing retention, 5 s to settle a cancel.
4. scale: 1 % expired out of 10k, 100k and 1M batches: peak RSS, CPU per batch listed and
   per batch deleted (a listing-only run, retention too long for anything to be due, and a
   deleting run on the same population; a run against an empty emulator gives the fixed
   start-up cost).

Prints a table, writes the figures to `bench/results/{full,quick}.json`, and ends with one
line of `key=value` pairs for scripts. `--quick` runs every scenario at a tenth of the size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import BENCH, REPO, Emulator, run_cleaner, run_sdk_loop

UNLIMITED_RPM = "1000000"  # the highest CLEANER_REQUESTS_PER_MINUTE accepted: no pacing
PAGE = 1000
SCALE_LATENCY_MS = 50  # scenario 4: the same server-side latency as scenario 1

Figures = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    metric: str
    value: str
    target: str = ""
    ok: bool | None = None


def rate_bound(scale: int, workdir: Path) -> Figures:
    """Scenario 1: the drain is paced by the API's requests-per-minute limit."""
    expired, young, rpm = 10_000 // scale, 2_000 // scale, 12_000
    seeds = [f"{expired}:ended:40d:10d", f"{young}:ended:1d:1d"]
    with Emulator(seeds, latency="50ms", rate_limit_rpm=rpm) as emulator:
        run = run_cleaner(emulator.base_url, workdir=workdir, CLEANER_REQUESTS_PER_MINUTE=str(rpm))
        counts = emulator.request_counts()
    summary = run.event("cycle_finished")
    minimum = math.ceil((expired + young) / PAGE) + expired
    made = sum(counts.values())
    ideal_s = minimum / (rpm / 60.0)
    cycle_s = float(summary["duration_s"])
    return {
        "batches": expired + young,
        "expired": expired,
        "rate_limit_rpm": rpm,
        "latency_ms": 50,
        "deleted": summary["deleted"],
        "minimum_requests": minimum,
        "requests_made": made,
        "list_requests": sum(n for (e, _), n in counts.items() if e == "list"),
        "excess_requests_pct": round(100.0 * (made - minimum) / minimum, 2),
        "rate_limited_429": sum(n for (_, s), n in counts.items() if s == 429),
        "wall_s": round(run.wall_s, 2),
        "cycle_s": cycle_s,
        "ideal_s": round(ideal_s, 2),
        "efficiency": round(ideal_s / run.wall_s, 3),
        "efficiency_cycle_only": round(ideal_s / cycle_s, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "cpu_s": round(run.cpu_s, 2),
    }


def latency_bound(scale: int, workdir: Path) -> Figures:
    """Scenario 2: no rate limit, 100 ms per request; cleaner against the SDK loop."""
    expired = 2_000 // scale
    seeds = [f"{expired}:ended:40d:10d"]
    with Emulator(seeds, latency="100ms") as emulator:
        cleaner = run_cleaner(
            emulator.base_url, workdir=workdir, CLEANER_REQUESTS_PER_MINUTE=UNLIMITED_RPM
        )
        cleaner_deleted = int(emulator.state()["deleted"])
        cleaner_requests = sum(emulator.request_counts().values())
    with Emulator(seeds, latency="100ms") as emulator:
        sdk = run_sdk_loop(emulator.base_url, workdir=workdir)
        sdk_deleted = int(emulator.state()["deleted"])
        sdk_requests = sum(emulator.request_counts().values())
    if cleaner_deleted != expired or sdk_deleted != expired:
        raise RuntimeError(f"deleted {cleaner_deleted} (cleaner), {sdk_deleted} (SDK) of {expired}")
    return {
        "expired": expired,
        "latency_ms": 100,
        "cleaner_concurrency": 32,
        "cleaner_wall_s": round(cleaner.wall_s, 2),
        "cleaner_cycle_s": float(cleaner.event("cycle_finished")["duration_s"]),
        "cleaner_requests": cleaner_requests,
        "cleaner_cpu_s": round(cleaner.cpu_s, 2),
        "sdk_wall_s": round(sdk.wall_s, 2),
        "sdk_requests": sdk_requests,
        "sdk_cpu_s": round(sdk.cpu_s, 2),
        "speedup_vs_sdk": round(sdk.wall_s / cleaner.wall_s, 1),
    }


def cancel_path(scale: int, workdir: Path) -> Figures:
    """Scenario 3: running batches past retention: cancel, wait for settling, delete."""
    running = 500 // scale
    seeds = [f"{running}:in_progress:13h:1h"]
    with Emulator(seeds, latency="50ms", cancel_settle="5s", processing_time="6h") as emulator:
        run = run_cleaner(
            emulator.base_url,
            workdir=workdir,
            CLEANER_PROCESSING_RETENTION="12h",
            CLEANER_REQUESTS_PER_MINUTE=UNLIMITED_RPM,
        )
        counts = emulator.request_counts()
        journal = emulator.journal()
    by_endpoint = {
        endpoint: sum(n for (e, _), n in counts.items() if e == endpoint)
        for endpoint in ("list", "cancel", "retrieve", "delete")
    }
    deleted = sum(1 for e in journal if e["endpoint"] == "delete" and e["status"] == 200)
    if deleted != running:
        raise RuntimeError(f"deleted {deleted} of {running} canceled batches")
    stamps = [datetime.fromisoformat(e["at"]) for e in journal]
    per_batch = (by_endpoint["cancel"] + by_endpoint["retrieve"] + by_endpoint["delete"]) / running
    return {
        "running": running,
        "cancel_settle_s": 5,
        "latency_ms": 50,
        "deleted": deleted,
        "wall_s": round(run.wall_s, 2),
        "first_cancel_to_last_delete_s": round((max(stamps) - min(stamps)).total_seconds(), 2),
        "requests": by_endpoint,
        "requests_per_cancel": round(per_batch, 3),
        "polls_per_cancel": round(by_endpoint["retrieve"] / running, 3),
    }


def scale_run(scale: int, workdir: Path) -> Figures:
    """Scenario 4: peak RSS and CPU cost per batch as the listing grows a hundredfold."""
    sizes = [n // scale for n in (10_000, 100_000, 1_000_000)]
    unlimited = {"CLEANER_REQUESTS_PER_MINUTE": UNLIMITED_RPM}
    with Emulator([], latency=f"{SCALE_LATENCY_MS}ms") as emulator:
        baseline = run_cleaner(emulator.base_url, workdir=workdir, **unlimited)
    points: list[Figures] = []
    for size in sizes:
        expired = size // 100
        seeds = [f"{size - expired}:ended:1d:1d", f"{expired}:ended:40d:10d"]
        with Emulator(seeds, latency=f"{SCALE_LATENCY_MS}ms") as emulator:
            listing = run_cleaner(
                emulator.base_url, workdir=workdir, CLEANER_RETENTION="365d", **unlimited
            )
            deleting = run_cleaner(emulator.base_url, workdir=workdir, **unlimited)
            deleted = int(emulator.state()["deleted"])
        if deleted != expired:
            raise RuntimeError(f"deleted {deleted} of {expired} at {size} batches")
        points.append(
            {
                "batches": size,
                "deleted": deleted,
                "listing_only_wall_s": round(listing.wall_s, 2),
                "listing_only_cpu_s": round(listing.cpu_s, 3),
                "listing_only_peak_rss_mb": round(listing.peak_rss_mb, 1),
                "deleting_wall_s": round(deleting.wall_s, 2),
                "deleting_cpu_s": round(deleting.cpu_s, 3),
                "deleting_peak_rss_mb": round(deleting.peak_rss_mb, 1),
                "cpu_ms_per_1000_listed": round(
                    1000 * (listing.cpu_s - baseline.cpu_s) / size * 1000, 2
                ),
                "cpu_ms_per_delete": round(1000 * (deleting.cpu_s - listing.cpu_s) / deleted, 3),
            }
        )
    return {
        "latency_ms": SCALE_LATENCY_MS,
        "baseline_cpu_s": round(baseline.cpu_s, 3),
        "baseline_peak_rss_mb": round(baseline.peak_rss_mb, 1),
        "points": points,
        "rss_growth_mb": round(
            points[-1]["deleting_peak_rss_mb"] - points[0]["deleting_peak_rss_mb"], 1
        ),
        "cpu_ms_per_delete": points[-1]["cpu_ms_per_delete"],
    }


SCENARIOS: dict[str, tuple[str, Callable[[int, Path], Figures]]] = {
    "1": ("rate_bound", rate_bound),
    "2": ("latency_bound", latency_bound),
    "3": ("cancel_path", cancel_path),
    "4": ("scale", scale_run),
}


def rows(results: dict[str, Figures]) -> list[Row]:
    out: list[Row] = []
    if (r := results.get("rate_bound")) is not None:
        name = f"1 rate-bound ({r['expired']:,} of {r['batches']:,}, {r['rate_limit_rpm']:,} rpm)"
        out += [
            Row(name, "minimum requests (pages + deletes)", f"{r['minimum_requests']:,}"),
            Row(
                name,
                "requests made",
                f"{r['requests_made']:,} (+{r['excess_requests_pct']}%)",
                "<= minimum + 1%",
                r["excess_requests_pct"] <= 1.0,
            ),
            Row(name, "429s received", str(r["rate_limited_429"]), "0", r["rate_limited_429"] == 0),
            Row(name, "wall time (process)", f"{r['wall_s']} s"),
            Row(name, "cycle time (cleaner's own)", f"{r['cycle_s']} s"),
            Row(name, "ideal time (minimum / rate)", f"{r['ideal_s']} s"),
            Row(
                name,
                "efficiency = ideal / wall",
                f"{r['efficiency']}",
                ">= 0.95",
                r["efficiency"] >= 0.95,
            ),
        ]
    if (r := results.get("latency_bound")) is not None:
        name = f"2 latency-bound ({r['expired']:,} expired, 100 ms)"
        out += [
            Row(
                name, "cleaner run --once", f"{r['cleaner_wall_s']} s ({r['cleaner_requests']} req)"
            ),
            Row(name, "SDK loop", f"{r['sdk_wall_s']} s ({r['sdk_requests']} req)"),
            Row(name, "speed-up", f"{r['speedup_vs_sdk']}x", ">= 20x", r["speedup_vs_sdk"] >= 20),
        ]
    if (r := results.get("cancel_path")) is not None:
        name = f"3 cancel path ({r['running']} running, 5 s settle)"
        req = r["requests"]
        out += [
            Row(name, "start to all deleted (process)", f"{r['wall_s']} s"),
            Row(name, "first cancel to last delete", f"{r['first_cancel_to_last_delete_s']} s"),
            Row(
                name,
                "requests: cancel/poll/delete",
                f"{req['cancel']}/{req['retrieve']}/{req['delete']} (+{req['list']} list)",
            ),
            Row(
                name,
                "requests per canceled batch",
                f"{r['requests_per_cancel']}",
                "<= 4",
                r["requests_per_cancel"] <= 4,
            ),
        ]
    if (r := results.get("scale")) is not None:
        for p in r["points"]:
            name = f"4 scale ({p['batches']:,} listed, {p['deleted']:,} deleted)"
            out += [
                Row(
                    name,
                    "peak RSS listing / deleting",
                    f"{p['listing_only_peak_rss_mb']} / {p['deleting_peak_rss_mb']} MB",
                ),
                Row(name, "CPU per 1,000 listed", f"{p['cpu_ms_per_1000_listed']} ms"),
                Row(name, "CPU per 1,000 deleted", f"{p['cpu_ms_per_delete'] * 1000:.0f} ms"),
                Row(
                    name,
                    "wall listing / deleting",
                    f"{p['listing_only_wall_s']} / {p['deleting_wall_s']} s",
                ),
            ]
        out += [
            Row(
                "4 scale",
                "peak RSS growth, smallest to largest",
                f"{r['rss_growth_mb']} MB",
                "< 20 MB",
                r["rss_growth_mb"] < 20,
            ),
            Row(
                "4 scale",
                "CPU per deleted batch (largest)",
                f"{r['cpu_ms_per_delete']} ms",
                "< 0.2 ms",
                r["cpu_ms_per_delete"] < 0.2,
            ),
        ]
    return out


def table(all_rows: list[Row]) -> str:
    headers = ("scenario", "metric", "value", "target", "met")
    cells = [
        (r.scenario, r.metric, r.value, r.target, "" if r.ok is None else ("yes" if r.ok else "NO"))
        for r in all_rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    previous = ""
    for cell in cells:
        shown = ("" if cell[0] == previous else cell[0], *cell[1:])
        previous = cell[0]
        lines.append(" | ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return "\n".join(lines)


def headline(results: dict[str, Figures]) -> str:
    def pick(scenario: str, key: str) -> str:
        figures = results.get(scenario)
        return "n/a" if figures is None else str(figures[key])

    return (
        f"efficiency={pick('rate_bound', 'efficiency')}"
        f" speedup_vs_sdk={pick('latency_bound', 'speedup_vs_sdk')}"
        f" requests_per_cancel={pick('cancel_path', 'requests_per_cancel')}"
        f" rss_growth_mb={pick('scale', 'rss_growth_mb')}"
        f" cpu_ms_per_delete={pick('scale', 'cpu_ms_per_delete')}"
    )


def machine() -> Figures:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    )
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every scenario at a tenth")
    parser.add_argument("--only", default="1,2,3,4", help="scenarios to run, e.g. 1,3")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/MODE.json)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from 1, 2, 3, 4")
    results: dict[str, Figures] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cleaner-bench-") as tmp:
        for key in chosen:
            name, scenario = SCENARIOS[key]
            t0 = time.perf_counter()
            print(f"scenario {key} ({name})...", file=sys.stderr, flush=True)
            results[name] = scenario(scale, Path(tmp))
            print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    mode = "quick" if args.quick else "full"
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "git_commit": git_commit(),
        "machine": machine(),
        "bench_wall_s": round(time.perf_counter() - started, 1),
        "scenarios": results,
        "headline": dict(pair.split("=") for pair in headline(results).split()),
    }
    out = Path(args.out) if args.out else BENCH / "results" / f"{mode}.json"
    if args.out is None and set(chosen) != set(SCENARIOS):
        out = out.with_name(f"{mode}-partial.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    cores, python = os.cpu_count(), platform.python_version()
    print(f"cleaner drain benchmark, {mode}, {cores} cores, Python {python}")
    print(table(rows(results)))
    print(f"figures: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    print(headline(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
