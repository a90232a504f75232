"""`cleaner emulator`: run the emulator as a server from the command line.

Prints exactly one line to stdout once it accepts connections (`emulator listening on
http://HOST:PORT with N batches`), so scripts can start it with `--port 0` and read the port.
Needs no CLEANER_* variable; the key is `--api-key` or else ANTHROPIC_API_KEY, and with
neither set (and no `--workspace` keys) any key (or none) is accepted. Stops cleanly (exit 0)
on SIGTERM or SIGINT. Runs on real time that `POST /_emulator/clock` can push forward.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cleaner.emulator.clock import OffsetClock
from cleaner.emulator.config import EmulatorConfig
from cleaner.emulator.emulator import Emulator
from cleaner.emulator.faults import FAULT_KINDS, FaultRule
from cleaner.emulator.oauth import FederationRule
from cleaner.emulator.seedfile import SeedDocument, load_seed
from cleaner.emulator.seeding import Population, parse_duration
from cleaner.emulator.server import serve_forever
from cleaner.emulator.wire import ERROR_TYPES
from cleaner.emulator.workspaces import WorkspaceSpec

FAULT_SPEC_HELP = (
    "KIND[:ENDPOINTS[:PROBABILITY[:TIMES[:SECONDS]]]], ENDPOINTS comma-separated or 'all'; "
    f"kinds: {', '.join(sorted(FAULT_KINDS))}"
)

EPILOG = """\
The seed file's settings apply after the flags; --seed populations are added before the
file's. Every answer names its workspace in anthropic-workspace-id.

operator endpoints (no key, never rate limited or faulted):
  GET /_emulator/health | state | batches[?workspace=] | batches.jsonl | deleted | clock
  POST /_emulator/seed (a population, a list or a seed document)  POST /_emulator/clock
  GET|DELETE /_emulator/journal | requests   GET|PATCH|PUT /_emulator/config
  GET|POST /_emulator/workspaces   GET|POST|DELETE /_emulator/refuse-delete
"""


def main(argv: list[str] | None = None) -> int:
    """Parse flags, seed, serve until signalled; 0 on a clean stop, 2 on bad input."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
        populations = [Population.from_spec(spec) for spec in args.seed]
        document = SeedDocument()
        if args.seed_file is not None:
            document = load_seed(Path(args.seed_file).read_bytes())
        emulator = Emulator(config, clock=OffsetClock())
        # The file's workspaces and switches first, so --seed ...@WORKSPACE can name them.
        emulator.apply_seed(dataclasses.replace(document, populations=()))
        emulator.seed(*populations, *document.populations)
        for rule in [FederationRule.from_cli(spec) for spec in args.federation_rule]:
            emulator.oauth.add_rule(rule)
        emulator.oauth.ttl_s = parse_duration(args.access_token_ttl)
    except (ValueError, OSError) as exc:
        print(f"cleaner emulator: {exc}", file=sys.stderr)
        return 2

    def announce(base_url: str) -> None:
        print(f"emulator listening on {base_url} with {len(emulator)} batches", flush=True)

    serve_forever(emulator, host=args.host, port=args.port, on_ready=announce)
    return 0


def parse_fault(spec: str) -> FaultRule:
    """`drop_after:delete:0.1:5` -> FaultRule(kind="drop_after", endpoints={"delete"}, ...)."""
    parts = spec.split(":")
    if not 1 <= len(parts) <= 5:
        raise ValueError(f"fault {spec!r}: use {FAULT_SPEC_HELP}")
    kind = parts[0]
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault {spec!r}: unknown kind; known: {', '.join(sorted(FAULT_KINDS))}")
    endpoints = parts[1] if len(parts) > 1 else "all"
    return FaultRule(
        kind=kind,  # type: ignore[arg-type]  # checked against FAULT_KINDS above
        endpoints=None if endpoints in ("", "all") else frozenset(endpoints.split(",")),
        probability=float(parts[2]) if len(parts) > 2 and parts[2] else 1.0,
        times=int(parts[3]) if len(parts) > 3 and parts[3] else None,
        seconds=parse_duration(parts[4]) if len(parts) > 4 and parts[4] else None,
    )


def _config(args: argparse.Namespace) -> EmulatorConfig:
    faults = [parse_fault(spec) for spec in args.fault]
    if args.error_rate:
        faults.append(FaultRule(kind="random_error", probability=args.error_rate))
    return EmulatorConfig(
        api_key=args.api_key or os.environ.get("ANTHROPIC_API_KEY") or None,
        processing_time_s=parse_duration(args.processing_time),
        cancel_settle_s=parse_duration(args.cancel_settle),
        delete_running_status=args.delete_running_status,
        cancel_ended_ok=args.cancel_ended_ok,
        cancel_canceling_status=args.cancel_canceling_status,
        deleted_cursor=args.deleted_cursor,
        rate_limit_rpm=args.rate_limit_rpm,
        latency_s=parse_duration(args.latency),
        faults=tuple(faults),
        create_on_list=args.create_on_list,
        seed=args.random_seed,
        workspaces=_workspaces(args.workspace, args.workspace_rate_limit_rpm),
        workspace_mismatch=args.workspace_mismatch,
        ratelimit_headers=args.ratelimit_headers,
        refuse_delete=frozenset(args.refuse_delete),
        refuse_delete_status=args.refuse_delete_status,
    )


def _workspaces(specs: list[str], limits: list[str]) -> tuple[WorkspaceSpec, ...]:
    """`--workspace NAME[/ID]=KEY[,KEY...]` plus `--workspace-rate-limit-rpm NAME=RPM`."""
    spaces = {spec.name: spec for spec in map(WorkspaceSpec.from_cli, specs)}
    for limit in limits:
        name, sep, rpm = limit.partition("=")
        if name == "default" and name not in spaces:
            spaces[name] = WorkspaceSpec(name)
        if not sep or name not in spaces:
            raise ValueError(
                f"--workspace-rate-limit-rpm {limit!r}: use NAME=RPM for a --workspace"
            )
        spaces[name] = dataclasses.replace(spaces[name], rate_limit_rpm=float(rpm))
    return tuple(spaces.values())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleaner emulator",
        description="Serve a local Message Batches API emulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _server_flags(parser.add_argument_group("server").add_argument)
    _population_flags(parser.add_argument_group("batches").add_argument)
    _behaviour_flags(parser.add_argument_group("behaviour and faults").add_argument)
    _workspace_flags(parser.add_argument_group("workspaces and rate limits").add_argument)
    _federation_flags(parser.add_argument_group("token exchange").add_argument)
    return parser


def _server_flags(add: Callable[..., object]) -> None:
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=8787, help="port; 0 picks a free one (default 8787)")
    add(
        "--api-key",
        default=None,
        help="the default workspace's key (default: $ANTHROPIC_API_KEY; with no key "
        "anywhere, any key or none is accepted)",
    )
    add("--random-seed", type=int, default=0, help="seed for ids and fault draws (replayable)")


def _population_flags(add: Callable[..., object]) -> None:
    add(
        "--seed",
        action="append",
        default=[],
        metavar="COUNT:STATUS:AGE[:SPREAD[:REQUESTS]][@WORKSPACE]",
        help="add a population, e.g. 3000:ended:40d or 50:in_progress:3h:1h@prod (repeatable)",
    )
    add(
        "--seed-file",
        default=None,
        help="JSON: a list of populations, or a document with keys organization "
        '({"rate_limit_rpm"}), workspaces ([{"name", "id"?, "keys", "rate_limit_rpm"?, '
        '"batches"?}]), populations, refuse_delete (ids), refuse_delete_status; populations '
        "may also set workspace, processing_status (any string, shown verbatim), archived_at "
        '(RFC 3339 or "now"), ids, refuse_delete (true)',
    )
    add("--processing-time", default="5m", help="how long a batch runs (default 5m)")
    add("--cancel-settle", default="30s", help="how long canceling lasts (default 30s)")
    add("--create-on-list", type=int, default=0, help="create N batches on every list request")


def _behaviour_flags(add: Callable[..., object]) -> None:
    add("--latency", default="0s", help="added to every /v1 request, e.g. 50ms")
    add("--error-rate", type=float, default=0.0, help="probability of a random 500/529/504")
    add("--fault", action="append", default=[], metavar="SPEC", help=FAULT_SPEC_HELP)
    add(
        "--delete-running-status",
        type=int,
        choices=(400, 409),
        default=400,
        help="answer to deleting a batch that has not ended (default 400)",
    )
    add(
        "--cancel-ended-ok",
        action="store_true",
        help="cancel of an ended batch answers 200 unchanged (default: 400)",
    )
    add(
        "--cancel-canceling-status",
        type=int,
        choices=(200, 400, 409),
        default=200,
        help="answer to canceling a canceling batch (default 200, unchanged)",
    )
    add(
        "--deleted-cursor",
        choices=("works", "404"),
        default="works",
        help="a list cursor naming a deleted batch keeps working or answers 404",
    )


def _federation_flags(add: Callable[..., object]) -> None:
    add(
        "--federation-rule",
        action="append",
        default=[],
        metavar="RULE_ID:ORGANIZATION_ID:WORKSPACE:TOKEN[,TOKEN...]",
        help="accept these identity tokens at /v1/oauth/token for the rule, issuing access "
        "tokens for WORKSPACE (name or id; empty: default). With any rule, a request needs "
        "an issued token or a configured key (repeatable)",
    )
    add("--access-token-ttl", default="10m", help="lifetime of issued access tokens (10m)")


def _workspace_flags(add: Callable[..., object]) -> None:
    add(
        "--rate-limit-rpm",
        type=float,
        default=None,
        help="the organisation's requests-per-minute limit, shared by every workspace",
    )
    add(
        "--workspace",
        action="append",
        default=[],
        metavar="NAME[/ID]=KEY[,KEY...]",
        help="a workspace with its own keys and batches (id default wrkspc_NAME; repeatable). "
        "The default workspace wrkspc_default holds --api-key (and keys given as default=...); "
        "with no key anywhere it takes any key",
    )
    add(
        "--workspace-rate-limit-rpm",
        action="append",
        default=[],
        metavar="NAME=RPM",
        help="a workspace's own requests-per-minute limit (repeatable; NAME may be default)",
    )
    add(
        "--workspace-mismatch",
        choices=("403", "ignore"),
        default="403",
        help="a request whose anthropic-workspace-id is not its key's workspace: 403 "
        "permission_error (default) or ignore the header",
    )
    add(
        "--ratelimit-headers",
        action="store_true",
        help="send anthropic-ratelimit-requests-limit/-remaining/-reset (default: off)",
    )
    add(
        "--refuse-delete",
        action="append",
        default=[],
        metavar="BATCH_ID",
        help="every DELETE of this batch fails (repeatable); see --refuse-delete-status",
    )
    add(
        "--refuse-delete-status",
        type=int,
        choices=sorted(ERROR_TYPES),
        default=500,
        help="the status of a refused delete (default 500 api_error)",
    )
