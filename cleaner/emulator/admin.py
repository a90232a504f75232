"""Operator endpoints under /_emulator/: seed, inspect, journal, counters, config, clock.

For tests and demos that drive an emulator running in another process. No key, no rate
limit, no faults. Everything stays usable at a million batches: the batch listing pages by
cursor (`/_emulator/batches?limit=&after_id=`) or streams JSON Lines
(`/_emulator/batches.jsonl`), and nothing returns all ids unless asked.

    GET    /_emulator/health          {"ok": true}
    GET    /_emulator/state           counts by status, deleted, journal size, config, now
    GET    /_emulator/batches         ?limit=1..100000&after_id=&workspace=NAME|ID  newest
                                      first (all workspaces merged unless one is named)
    GET    /_emulator/batches.jsonl   every live batch, streamed
    GET    /_emulator/deleted         {"ids": [...]}
    POST   /_emulator/seed            a population, a list, or a seed document (seedfile.py)
    GET    /_emulator/journal         {"entries": [...]};  DELETE clears it
    GET    /_emulator/requests        counts by endpoint and status; DELETE clears them
    GET    /_emulator/config          PATCH merges fields; PUT replaces (unset = defaults;
                                      the key and the workspaces stay)
    GET    /_emulator/clock           POST {"advance_s": N} or {"set": "RFC 3339"}
    GET    /_emulator/workspaces      ids, names, key counts, limits, batch counts (no keys);
                                      POST one {"name", "id"?, "keys", "rate_limit_rpm"?,
                                      "batches"?: [...]} adds it (same name: replaced)
    GET    /_emulator/refuse-delete   {"ids", "status"}; POST {"ids": [...], "status"?: N}
                                      adds ids whose DELETE always fails; DELETE clears them
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from urllib.parse import parse_qsl

import orjson

from cleaner.emulator.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    read_body,
    respond,
    respond_stream,
)
from cleaner.emulator.clock import ManualClock, OffsetClock
from cleaner.emulator.config import EmulatorConfig, config_changes
from cleaner.emulator.emulator import Emulator
from cleaner.emulator.seedfile import load_seed
from cleaner.emulator.wire import ApiError, JsonObject, error_json, format_datetime, request_id

MAX_SEED_IDS_RETURNED = 10_000
MAX_ADMIN_PAGE = 100_000

Handler = Callable[[Emulator, dict[str, str], bytes], Awaitable[JsonObject]]


async def handle(emulator: Emulator, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one operator request."""
    method, path = str(scope.get("method", "GET")), str(scope.get("path", ""))
    raw_query = scope.get("query_string", b"")
    query = dict(parse_qsl(raw_query.decode("latin-1") if isinstance(raw_query, bytes) else ""))
    req_id = request_id()
    headers = [(b"request-id", req_id.encode())]
    try:
        body = await read_body(receive)
        if (method, path) == ("GET", "/_emulator/batches.jsonl"):
            chunks = _jsonl(emulator)
            await respond_stream(
                send, 200, chunks, content_type=b"application/x-jsonl", headers=headers
            )
            return
        handler = _ROUTES.get((method, path))
        if handler is None:
            raise ApiError(404, "not_found_error", f"no operator route {method} {path}")
        result = await handler(emulator, query, body)
    except BodyTooLarge:
        result, status = _error(413, "request_too_large", "body too large", req_id), 413
    except ApiError as error:
        result, status = _error(error.status, error.error_type, error.message, req_id), error.status
    except (ValueError, TypeError) as exc:  # bad operator input, incl. orjson.JSONDecodeError
        result, status = _error(400, "invalid_request_error", str(exc), req_id), 400
    else:
        status = 200
    await respond(send, status, orjson.dumps(result), headers=headers)


async def _health(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    return {"ok": True}


async def _state(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    by_status = emulator.status_counts()
    return {
        "now": format_datetime(emulator.now()),
        "batches": len(emulator),
        "by_status": dict(by_status),
        "deleted": len(emulator.deleted_ids),
        "journal_entries": len(emulator.journal),
        "by_workspace": emulator.workspace_counts(),
        "config": emulator.config.to_json(),
    }


async def _batches(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    limit = int(query.get("limit", "1000"))
    if not 1 <= limit <= MAX_ADMIN_PAGE:
        raise ValueError(f"limit must be within 1..{MAX_ADMIN_PAGE}")
    workspace = query.get("workspace")
    if workspace is None:
        return emulator.operator_page(limit=limit, after_id=query.get("after_id"))
    page, _ = emulator.list_page(
        limit=limit,
        after_id=query.get("after_id"),
        before_id=None,
        base_url=emulator.base_url,
        create=False,
        workspace=workspace,
    )
    return page


async def _deleted(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    return {"ids": sorted(emulator.deleted_ids)}


async def _seed(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    ids = emulator.apply_seed(load_seed(body))
    out: JsonObject = {"created": len(ids), "batches": len(emulator)}
    if len(ids) <= MAX_SEED_IDS_RETURNED:
        out["ids"] = ids
    return out


async def _journal(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    return {"entries": [entry.to_json() for entry in list(emulator.journal)]}


async def _clear_journal(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    cleared = len(emulator.journal)
    emulator.clear_journal()
    return {"cleared": cleared}


async def _requests(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    counts = sorted(emulator.request_counts.items())
    return {
        "total": sum(n for _, n in counts),
        "counts": [{"endpoint": e, "status": s, "count": n} for (e, s), n in counts],
    }


async def _clear_requests(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    emulator.clear_request_counts()
    return {"cleared": True}


async def _config(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    return emulator.config.to_json()


async def _patch_config(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    return emulator.configure(**config_changes(_object(body))).to_json()


async def _put_config(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    changes = config_changes(_object(body))
    defaults = {
        f.name: getattr(EmulatorConfig(), f.name)
        for f in dataclasses.fields(EmulatorConfig)
        if f.name not in ("api_key", "workspaces")
    }
    return emulator.configure(**{**defaults, **changes}).to_json()


async def _clock(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    return {"now": format_datetime(emulator.now())}


async def _move_clock(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    clock = emulator.clock
    if not isinstance(clock, ManualClock | OffsetClock):
        raise ApiError(409, "conflict_error", "this emulator runs on a clock that cannot move")
    data = _object(body)
    advance, moment = data.get("advance_s"), data.get("set")
    if isinstance(advance, int | float) and not isinstance(advance, bool):
        clock.advance(float(advance))
    elif isinstance(moment, str):
        clock.set(datetime.fromisoformat(moment))
    else:
        raise ValueError('give {"advance_s": seconds} or {"set": "RFC 3339 time"}')
    return {"now": format_datetime(emulator.now())}


async def _workspaces(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    counts = emulator.workspace_counts()
    return {
        "workspaces": [
            {**spec.to_json(), "batches": counts.get(spec.id, 0)} for spec in emulator.workspaces()
        ]
    }


async def _add_workspace(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    document = load_seed(orjson.dumps({"workspaces": [_object(body)]}))
    ids = emulator.apply_seed(document)
    (spec,) = document.workspaces
    return {**spec.to_json(), "created": len(ids)}


async def _refused(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    config = emulator.config
    return {"ids": sorted(config.refuse_delete), "status": config.refuse_delete_status}


async def _refuse(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    data = _object(body)
    if set(data) - {"ids", "status"}:
        raise ValueError('give {"ids": [...], "status"?: N}')
    seed = {"refuse_delete": data.get("ids", []), "refuse_delete_status": data.get("status")}
    emulator.apply_seed(load_seed(orjson.dumps(seed)))
    return await _refused(emulator, query, body)


async def _clear_refused(emulator: Emulator, query: dict[str, str], body: bytes) -> JsonObject:
    emulator.configure(refuse_delete=frozenset())
    return await _refused(emulator, query, body)


_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/_emulator/health"): _health,
    ("GET", "/_emulator/state"): _state,
    ("GET", "/_emulator/batches"): _batches,
    ("GET", "/_emulator/deleted"): _deleted,
    ("POST", "/_emulator/seed"): _seed,
    ("GET", "/_emulator/journal"): _journal,
    ("DELETE", "/_emulator/journal"): _clear_journal,
    ("GET", "/_emulator/requests"): _requests,
    ("DELETE", "/_emulator/requests"): _clear_requests,
    ("GET", "/_emulator/config"): _config,
    ("PATCH", "/_emulator/config"): _patch_config,
    ("PUT", "/_emulator/config"): _put_config,
    ("GET", "/_emulator/clock"): _clock,
    ("POST", "/_emulator/clock"): _move_clock,
    ("GET", "/_emulator/workspaces"): _workspaces,
    ("POST", "/_emulator/workspaces"): _add_workspace,
    ("GET", "/_emulator/refuse-delete"): _refused,
    ("POST", "/_emulator/refuse-delete"): _refuse,
    ("DELETE", "/_emulator/refuse-delete"): _clear_refused,
}


def _object(body: bytes) -> dict[str, object]:
    data = orjson.loads(body or b"{}")
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _error(status: int, error_type: str, message: str, req_id: str) -> JsonObject:
    return error_json(error_type, message, req_id)


def _jsonl(emulator: Emulator) -> Iterator[bytes]:
    for chunk in emulator.iter_batches():
        yield b"".join(orjson.dumps(batch) + b"\n" for batch in chunk)
