"""Holds: batches people need kept, whatever their age, read from ``CLEANER_HOLDS_FILE``.

Pure. The shell reads the file and hands its text to :func:`parse_holds`; a hold protects
while it is active, and any one active hold is enough (holds add up). The format, YAML or
JSON (the top-level key ``holds`` is required; ``holds: []`` means none)::

    holds:
      - batch_id: msgbatch_013Zva2CMHLNnXjNJJKqJ2EF
        reason: debugging eval run 42
        owner: ml-infra                       # optional
        until: 2027-01-15T00:00:00Z           # optional; after it the hold protects nothing
      - created_after: 2026-11-01T00:00:00Z   # a window: either bound, or both (exclusive)
        created_before: 2026-11-08T00:00:00Z
        reason: legal matter 2026-117

Parsing is strict on purpose: an unknown key (a typo such as ``untill``) or a duplicate one
is an error, because a silently dropped ``until`` would make a hold permanent, and a
silently dropped selector could end a hold meant for a legal matter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import yaml

from cleaner.errors import CleanerError
from cleaner.models import PROTECTED_IDS_REASON, Batch, Hold

__all__ = ["Hold", "Holds", "HoldsError", "parse_holds"]

_KEYS = frozenset({"batch_id", "created_after", "created_before", "reason", "owner", "until"})
# RFC 3339 in UTC only: a local offset in a legal hold is a mistake waiting to happen.
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")

_Fail = Callable[[str], "HoldsError"]


class HoldsError(CleanerError):
    """The holds file cannot be trusted; ``index`` is the offending entry, if one is."""

    def __init__(self, source: str, problem: str, *, index: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.index = index
        super().__init__(f"{source}: {problem}")


@dataclass(frozen=True, slots=True)
class Holds:
    """Every hold in force: the file's, in file order, and the permanent protected ids."""

    holds: tuple[Hold, ...] = ()
    protected_ids: frozenset[str] = frozenset()
    _by_id: Mapping[str, tuple[tuple[int, Hold], ...]] = field(
        init=False, repr=False, compare=False
    )
    _windows: tuple[tuple[int, Hold], ...] = field(init=False, repr=False, compare=False)
    _protected: Mapping[str, Hold] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Indexed once, so a listing of many batches costs one lookup per batch.
        by_id: dict[str, list[tuple[int, Hold]]] = {}
        windows: list[tuple[int, Hold]] = []
        for position, hold in enumerate(self.holds):
            if hold.batch_id is not None:
                by_id.setdefault(hold.batch_id, []).append((position, hold))
            else:
                windows.append((position, hold))
        object.__setattr__(self, "_by_id", {k: tuple(v) for k, v in by_id.items()})
        object.__setattr__(self, "_windows", tuple(windows))
        protected = {i: Hold(reason=PROTECTED_IDS_REASON, batch_id=i) for i in self.protected_ids}
        object.__setattr__(self, "_protected", protected)

    def with_protected_ids(self, ids: Iterable[str]) -> Holds:
        """These holds plus permanent ones for ``ids`` (``CLEANER_PROTECTED_IDS``)."""
        return Holds(self.holds, self.protected_ids | frozenset(ids))

    def protecting(self, batch: Batch, now: datetime) -> Hold | None:
        """The hold that keeps ``batch`` at ``now``: a protected id first, then file order."""
        permanent = self._protected.get(batch.id)
        if permanent is not None:
            return permanent
        found: tuple[int, Hold] | None = None
        for candidate in (*self._by_id.get(batch.id, ()), *self._windows):
            position, hold = candidate
            if (found is None or position < found[0]) and hold.active(now) and hold.selects(batch):
                found = candidate
        return None if found is None else found[1]

    def expiring(self, now: datetime, *, within: timedelta = timedelta(hours=24)) -> list[Hold]:
        """Holds still active whose ``until`` falls within ``within`` of ``now``: warn of them."""
        return [h for h in self.holds if h.until is not None and now <= h.until <= now + within]

    def expired(self, now: datetime) -> list[Hold]:
        """Holds whose ``until`` has passed: they protect nothing any more."""
        return [h for h in self.holds if not h.active(now)]

    def canonical(self) -> dict[str, object]:
        """A JSON-ready form, equal for equal holds, for the policy fingerprint."""
        return {
            "holds": [hold.canonical() for hold in self.holds],
            "protected_ids": sorted(self.protected_ids),
        }


def parse_holds(text: str, *, source: str) -> Holds:
    """Parse a holds file's text; ``source`` (its path) names it in every error.

    Raises :class:`HoldsError` naming the entry and the problem. An empty file is an
    error (a ConfigMap mounted broken must not read as "no holds"); ``holds: []`` is fine.
    """
    document = _load(text, source)
    if document is None:  # only comments
        raise HoldsError(source, "the file is empty; write `holds: []` for no holds")
    if not isinstance(document, dict):
        raise HoldsError(source, "the file must be a mapping with a `holds` list")
    unknown = sorted(str(key) for key in document if key != "holds")
    if unknown:
        raise HoldsError(source, f"unknown top-level key(s) {', '.join(unknown)}: only `holds`")
    entries = document.get("holds")
    if not isinstance(entries, list):
        raise HoldsError(source, "`holds` must be a list (write `holds: []` for none)")
    return Holds(tuple(_hold(source, index, entry) for index, entry in enumerate(entries)))


def _load(text: str, source: str) -> object:
    if not text.strip():
        raise HoldsError(source, "the file is empty; write `holds: []` for no holds")
    try:
        if text.lstrip().startswith("{"):
            # JSON proper: tabs and other things YAML 1.1 refuses are fine here.
            return json.loads(text, object_pairs_hook=_unique_pairs)
        # _Loader is a SafeLoader subclass: no arbitrary objects.
        return yaml.load(text, Loader=_Loader)  # noqa: S506  # nosec B506
    except _DuplicateKeyError as exc:
        where = f" at line {exc.line}" if exc.line is not None else ""
        raise HoldsError(source, f"duplicate key {exc.key}{where}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "unreadable"
        raise HoldsError(source, f"not valid YAML or JSON: {where}{problem}") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise HoldsError(source, f"not valid YAML or JSON: {_one_line(exc)}") from None


def _hold(source: str, index: int, entry: object) -> Hold:
    if not isinstance(entry, dict):
        raise HoldsError(source, f"holds[{index}]: not a mapping", index=index)

    def fail(problem: str) -> HoldsError:
        names = [entry.get(key) for key in ("batch_id", "reason")]
        named = next((name for name in names if isinstance(name, str) and name.strip()), None)
        label = f"holds[{index}]" + (f" ({named!r})" if named else "")
        return HoldsError(source, f"{label}: {problem}", index=index)

    unknown = sorted(str(key) for key in entry if key not in _KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise fail("a hold needs a non-empty `reason`")
    owner = entry.get("owner")
    if owner is not None and (not isinstance(owner, str) or not owner.strip()):
        raise fail("`owner` must be a non-empty string")
    batch_id = entry.get("batch_id")
    after = _moment(entry.get("created_after"), "created_after", fail)
    before = _moment(entry.get("created_before"), "created_before", fail)
    if batch_id is not None:
        if after is not None or before is not None:
            raise fail("both `batch_id` and a created window; a hold has exactly one selector")
        if not isinstance(batch_id, str) or not batch_id.strip():
            raise fail("`batch_id` must be a non-empty string")
    elif after is None and before is None:
        raise fail("no selector: give `batch_id`, or `created_after` and/or `created_before`")
    if after is not None and before is not None and not after < before:
        raise fail("`created_after` must be earlier than `created_before`")
    return Hold(
        reason=reason.strip(),
        owner=owner.strip() if owner is not None else None,
        until=_moment(entry.get("until"), "until", fail),
        batch_id=batch_id,
        created_after=after,
        created_before=before,
    )


def _moment(value: object, key: str, fail: _Fail) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _UTC.fullmatch(value):
        raise fail(f"`{key}` must be an RFC 3339 UTC time like 2027-01-15T00:00:00Z: {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"`{key}` is not a real date and time: {value!r}") from None


class _DuplicateKeyError(Exception):
    def __init__(self, key: object, *, line: int | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.line = line


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps timestamps as text (checked strictly) and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        for position, key in enumerate(keys):
            if key in keys[:position]:
                raise _DuplicateKeyError(key, line=node.value[position][0].start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_text(loader: _Loader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):  # the timestamp tag resolves only on scalars
        raise yaml.constructor.ConstructorError(
            None, None, "a timestamp must be a scalar", node.start_mark
        )
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
