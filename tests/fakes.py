"""Fakes shared by the tests: a logger that records events instead of printing them."""

from __future__ import annotations

from typing import Any


class EventLog:
    """Implements cleaner.logs.Logger by keeping every event as a dict."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _add(self, level: str, event: str, kw: dict[str, Any]) -> None:
        self.events.append({"event": event, "level": level, **kw})

    def debug(self, event: str, **kw: Any) -> None:
        self._add("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._add("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._add("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)

    def exception(self, event: str, **kw: Any) -> None:
        self._add("error", event, kw)

    def named(self, event: str) -> list[dict[str, Any]]:
        """Every event with this name, in order."""
        return [e for e in self.events if e["event"] == event]

    def ids(self, event: str) -> list[str]:
        """The batch ids of every event with this name."""
        return [str(e["batch_id"]) for e in self.named(event)]
