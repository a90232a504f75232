"""Routing /v1 requests: which operation a method and path are, and the batch id in it."""

from __future__ import annotations

from dataclasses import dataclass

from cleaner.emulator.validation import valid_batch_id
from cleaner.emulator.wire import ApiError, invalid

_PREFIX = "/v1/messages/batches"


@dataclass(frozen=True, slots=True)
class Route:
    """Which operation a request is, and the batch id in its path."""

    endpoint: str  # create | list | retrieve | delete | cancel | results | other
    batch_id: str | None = None
    error: ApiError | None = None


def route(method: str, path: str) -> Route:
    """Map method and path to an endpoint (or a 404/405 error)."""
    if path != _PREFIX and not path.startswith(_PREFIX + "/"):
        return Route("other", error=ApiError(404, "not_found_error", f"no route for {path}"))
    parts = path[len(_PREFIX) :].split("/")[1:]
    allowed: dict[str, str]
    if not parts:
        allowed = {"POST": "create", "GET": "list"}
    elif len(parts) == 1:
        allowed = {"GET": "retrieve", "DELETE": "delete"}
    elif len(parts) == 2 and parts[1] == "cancel":
        allowed = {"POST": "cancel"}
    elif len(parts) == 2 and parts[1] == "results":
        allowed = {"GET": "results"}
    else:
        return Route("other", error=ApiError(404, "not_found_error", f"no route for {path}"))
    endpoint = allowed.get(method)
    if endpoint is None:
        return Route(
            "other", error=ApiError(405, "invalid_request_error", f"{method} not allowed on {path}")
        )
    batch_id = parts[0] if parts else None
    if batch_id is not None and not valid_batch_id(batch_id):
        return Route(endpoint, batch_id, invalid(f"message_batch_id: invalid id {batch_id!r}"))
    return Route(endpoint, batch_id)
