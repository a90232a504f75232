"""Logging: one JSON object per line on stdout, for our events and libraries' alike.

structlog renders our events; httpx, APScheduler and uvicorn log through the standard
library, and ``ProcessorFormatter`` runs their records through the same processors, so
stdout carries nothing but JSON lines. Named ``logs`` so it never shadows ``logging``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol, TextIO

import orjson
import structlog


class Logger(Protocol):
    """What cleaner needs of a logger: structlog's, or a test's fake that records events."""

    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...
    def error(self, event: str, **kw: Any) -> Any: ...
    def exception(self, event: str, **kw: Any) -> Any: ...


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
#: Libraries that narrate every request or job run at INFO; we only want their problems.
_CHATTY = ("httpx", "httpcore", "apscheduler", "uvicorn.access", "stamina")


class _Redact:
    """Replace every occurrence of a secret in any rendered value: defence in depth.

    The key is a ``SecretStr`` everywhere it is held; this catches the day someone logs
    a header dict or an exception that quotes a request.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(s for s in secrets if len(s) >= 4)

    def __call__(
        self, _: Any, __: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if self._secrets:
            for key, value in event.items():
                event[key] = self._scrub(value)
        return event

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, "[redacted]")
            return value
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        if isinstance(value, BaseException):
            return self._scrub(f"{type(value).__name__}: {value}")
        return value


def _json(event: MutableMapping[str, Any], **_: Any) -> str:
    # timestamp, level and event first: the fields a person scans a log for.
    ordered = {key: event.pop(key) for key in ("timestamp", "level", "event") if key in event}
    ordered.update(event)
    return orjson.dumps(ordered, default=str).decode()


def configure_logging(
    level: str = "info", *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Send every log record, ours and the libraries', to ``stream`` as JSON lines."""
    numeric = _LEVELS.get(level, logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: list[structlog.typing.Processor] = [
        # Locals in tracebacks would print the key; never show them.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
        _Redact(secrets),
        structlog.processors.JSONRenderer(serializer=_json),
    ]
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own logging config (if anything applied it) gives these loggers private
        # plain-text handlers; send them through the JSON pipeline instead.
        library = logging.getLogger(name)
        library.handlers[:] = []
        library.propagate = True
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "cleaner") -> Logger:
    """Our logger, bound to the JSON pipeline :func:`configure_logging` sets up."""
    logger: Logger = structlog.stdlib.get_logger(name)
    return logger
