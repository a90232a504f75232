"""The ``cleaner`` command.

    cleaner run            the daemon: a cycle at start, then on CLEANER_SCHEDULE
    cleaner run --once     one cycle, then exit
    cleaner plan           what one cycle would do, and why; sends no cancel or delete
    cleaner plan --out FILE [--ttl 24h]
                           ... and write it as a plan file for review
    cleaner apply FILE     carry out a reviewed plan file, and nothing outside it
    cleaner purge --ids-file FILE|- --reason TEXT
                           erase the listed batches now, whatever their age (not held ones)
    cleaner demo           the whole job against the built-in emulator, no key needed
    cleaner emulator       the local Message Batches API (see ``cleaner emulator --help``)
    cleaner healthcheck    exit 0 when the local /livez answers (the container HEALTHCHECK)
    cleaner config-reference [--write PATH | --check PATH]
                           the configuration reference, generated from the settings model

Exit codes: 0 every planned action succeeded or nothing was due; 1 a cycle failed
(failed actions, or the API unreachable within the retry budget; for purge also a batch
not found, held or not erased); 2 bad configuration, or a plan or request refused,
reported before any request is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from cleaner import __version__
from cleaner.durations import parse_duration
from cleaner.errors import ConfigError
from cleaner.logs import configure_logging, get_logger
from cleaner.network import check_host_resolves as check_host_resolves  # also ours to export
from cleaner.settings import Settings, load_settings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleaner",
        description="Deletes expired Message Batches on a schedule. Configured by environment "
        "variables; see config/README.md.",
    )
    parser.add_argument("--version", action="version", version=f"cleaner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the daemon (or one cycle with --once)")
    run.add_argument("--once", action="store_true", help="run one cycle, then exit")
    plan = sub.add_parser("plan", help="show what one cycle would do and why; changes nothing")
    plan.add_argument(
        "--format",
        choices=("auto", "table", "json"),
        default="auto",
        help="table on a terminal, JSON lines otherwise (default: auto)",
    )
    plan.add_argument("--out", type=Path, help="also write the plan to FILE for cleaner apply")
    plan.add_argument(
        "--ttl", type=_ttl, help="how long the written plan may be applied (default: 24h)"
    )
    apply = sub.add_parser("apply", help="carry out a reviewed plan file, nothing outside it")
    apply.add_argument("file", type=Path, metavar="FILE", help="a plan written by plan --out")
    purge = sub.add_parser("purge", help="erase the listed batches now (an erasure request)")
    purge.add_argument(
        "--ids-file", required=True, metavar="FILE", help="one batch id per line; - for stdin"
    )
    purge.add_argument(
        "--reason", required=True, metavar="TEXT", help="whose request and why (logged)"
    )
    sub.add_parser("demo", help="run real cycles against the built-in emulator (no key needed)")
    sub.add_parser("emulator", help="serve the local Message Batches API", add_help=False)
    sub.add_parser("healthcheck", help="probe the local /livez (for container HEALTHCHECKs)")
    sub.add_parser(
        "config-reference",
        help="print the configuration reference (config/README.md)",
        add_help=False,
    )
    return parser


def _ttl(text: str) -> timedelta:
    try:
        ttl = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if ttl <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r}: the ttl must be positive")
    return ttl


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["emulator"]:
        # The emulator has its own flags; it is a separate program sharing our install.
        from cleaner.emulator.command import main as emulator_main

        return emulator_main(args_list[1:])
    if args_list[:1] == ["config-reference"]:
        from cleaner.reference import main as reference_main

        return reference_main(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command == "plan" and args.ttl is not None and args.out is None:
        parser.error("--ttl needs --out")
    if args.command == "healthcheck":
        from cleaner.healthcheck import main as healthcheck_main

        return healthcheck_main()
    if args.command == "demo":
        from cleaner.demo import run_demo

        return run_demo()
    try:
        settings = load_settings()
        check_host_resolves(settings.base_url)
    except ConfigError as exc:
        configure_logging("info", stream=sys.stderr if args.command == "plan" else None)
        get_logger().error("configuration_invalid", error=str(exc), variables=sorted(exc.problems))
        print(f"cleaner: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    secret = settings.api_key.get_secret_value()
    if args.command == "plan":
        configure_logging(settings.log_level, secrets=[secret], stream=sys.stderr)
        from cleaner.planview import show_plan

        ttl = args.ttl or timedelta(hours=24)
        return asyncio.run(show_plan(settings, fmt=args.format, write_to=args.out, ttl=ttl))
    configure_logging(settings.log_level, secrets=[secret])
    if args.command == "apply":
        from cleaner.apply import apply_plan

        return asyncio.run(apply_plan(settings, args.file))
    if args.command == "purge":
        from cleaner.purge import run_purge

        return run_purge(settings, ids_file=args.ids_file, reason=args.reason)
    return asyncio.run(_run(settings, once=args.once))


async def _run(settings: Settings, *, once: bool) -> int:
    """Build everything through the composition root, serve health when a port is set, run."""
    from cleaner.bootstrap import assemble
    from cleaner.health import DEFAULT_HOST, serve_health, stall_after_s

    port = settings.health_port(once=once)
    async with assemble(settings) as app, AsyncExitStack() as stack:
        if port is not None:
            await stack.enter_async_context(
                serve_health(
                    app.daemon.state,
                    app.metrics,
                    host=DEFAULT_HOST,
                    port=port,
                    stall_after_s=stall_after_s(settings.requests_per_minute),
                    schedule=None if once else app.schedule,
                )
            )
        if once:
            app.metrics.set_schedule(0.0)
            report = await app.daemon.run_once()
            return EXIT_OK if report.ok else EXIT_FAILED
        await app.daemon.run_forever()
        return EXIT_OK
