"""Durations as operators write them: ``30d``, ``1h30m``, ``250ms`` or ISO 8601 ``P30D``."""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

_UNITS_S = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_ISO = TypeAdapter(timedelta)


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``36h``, ``90m``, ``45s``, ``250ms``, ``1h30m`` or ISO 8601 ``P30D``.

    A bare number is refused: ``300`` could mean seconds or minutes, and a retention
    period is no place to guess.
    """
    value = text.strip().lower()
    if value.startswith("p"):
        try:
            return _ISO.validate_python(value.upper())
        except ValidationError:
            raise ValueError(f"{text!r} is not an ISO 8601 duration") from None
    if not value or _DURATION.sub("", value) != "":
        raise ValueError(
            f"{text!r} is not a duration; use a number with a unit (w, d, h, m, s, ms), "
            "e.g. 30d, 36h, 1h30m, or ISO 8601 such as P30D"
        )
    seconds = sum(float(n) * _UNITS_S[unit] for n, unit in _DURATION.findall(value))
    return timedelta(seconds=seconds)
