"""A reviewed plan: the file ``cleaner plan --out`` writes and ``cleaner apply`` carries out.

Pure: rendering, strict parsing, the refusals (expired, other policy) and, per planned
batch, the choice between acting and skipping. The shell (:mod:`cleaner.apply`) reads the
file, retrieves each batch again and carries out what is chosen here. The format::

    {"format": "cleaner-plan", "version": 1,
     "listed_at": "2026-12-02T21:00:00.000000Z", "expires_at": "2026-12-03T21:00:00.000000Z",
     "policy_sha256": "<64 hex>", "rules_sha256": "<64 hex>",
     "actions": [{"batch_id": "msgbatch_...", "action": "delete",
                  "reason": "ended_past_retention", "created_at": "...Z",
                  "processing_status": "ended", "age_s": 3456000.0}, ...]}

``policy_sha256`` fingerprints the policy and the holds in force when the plan was made
(:func:`cleaner.policy.policy_sha256`); ``rules_sha256`` the retention rules alone. Apply
refuses a plan whose rules differ from the current ones. A change of holds alone does not
refuse the plan: holds only ever keep batches, a batch a hold kept was never planned, and
each planned batch is checked against the holds in force now (a newly held one is skipped).

A reviewer may remove actions (apply then does less); nothing else in the file can make
apply do more than the current policy allows, because every batch is decided again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cleaner.errors import CleanerError
from cleaner.models import Action, ActionKind, Batch, Hold, KeepReason, Plan, Reason
from cleaner.policy import RetentionPolicy, decide, policy_sha256

PLAN_FORMAT = "cleaner-plan"
PLAN_VERSION = 1
#: What a batch id looks like: the API's ids are ``msgbatch_`` and base62 characters.
BATCH_ID = re.compile(r"msgbatch_[A-Za-z0-9]{1,64}")
_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)")
_TOP = frozenset(
    {
        "format",
        "version",
        "listed_at",
        "expires_at",
        "policy_sha256",
        "rules_sha256",
        "actions",
        "summary",
    }
)
_REQUIRED_TOP = _TOP - {"summary"}
_ENTRY = frozenset({"batch_id", "action", "reason", "created_at", "processing_status", "age_s"})
_REQUIRED_ENTRY = frozenset({"batch_id", "action", "reason", "created_at"})
_SHA = re.compile(r"[0-9a-f]{64}")


class PlanFileError(CleanerError):
    """A plan apply refuses; ``why`` is ``malformed``, ``expired`` or ``policy_changed``."""

    def __init__(self, why: str, problem: str) -> None:
        self.why = why
        self.problem = problem
        super().__init__(f"{why}: {problem}")


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """One action as the reviewer saw it."""

    batch_id: str
    action: ActionKind
    reason: Reason
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewedPlan:
    """A parsed plan file."""

    listed_at: datetime
    expires_at: datetime
    policy_sha256: str
    rules_sha256: str
    entries: tuple[PlannedEntry, ...] = field(default=())


def rules_sha256(policy: RetentionPolicy) -> str:
    """The fingerprint of the retention rules alone, without holds or protected ids."""
    return policy_sha256(
        RetentionPolicy(
            retention=policy.retention,
            processing_retention=policy.processing_retention,
            age_basis=policy.age_basis,
        )
    )


def utc_text(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``, as the API writes times."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z"


def render_plan(plan: Plan, *, listed_at: datetime, ttl: timedelta, policy: RetentionPolicy) -> str:
    """The plan file's text for ``plan``, made under ``policy`` at ``listed_at``, for ``ttl``."""
    if ttl <= timedelta(0):
        raise ValueError(f"ttl must be positive: {ttl}")
    document = {
        "format": PLAN_FORMAT,
        "version": PLAN_VERSION,
        "listed_at": utc_text(listed_at),
        "expires_at": utc_text(listed_at + ttl),
        "policy_sha256": policy_sha256(policy),
        "rules_sha256": rules_sha256(policy),
        "actions": [
            {
                "batch_id": action.batch_id,
                "action": action.kind.value,
                "reason": action.reason.value,
                "created_at": utc_text(action.batch.created_at),
                "processing_status": str(action.batch.processing_status),
                "age_s": action.age_s,
            }
            for action in plan.actions
        ],
        "summary": {
            "planned": {kind.value: plan.count(kind) for kind in ActionKind},
            "kept": {reason.value: n for reason, n in sorted(plan.kept.items())},
            "seen": {str(status): n for status, n in sorted(plan.seen.items())},
            "held": len(plan.held),
            "deferred": plan.deferred,
        },
    }
    return json.dumps(document, indent=1, ensure_ascii=True) + "\n"


def parse_plan(text: str) -> ReviewedPlan:
    """Parse a plan file strictly; :class:`PlanFileError` (``malformed``) names the problem."""
    try:
        document = json.loads(text, object_pairs_hook=_unique)
    except (ValueError, RecursionError) as exc:
        raise _malformed(f"not JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(document, dict):
        raise _malformed("the plan must be a JSON object")
    _keys(document, allowed=_TOP, required=_REQUIRED_TOP, where="the plan")
    if document["format"] != PLAN_FORMAT:
        raise _malformed(f"format must be {PLAN_FORMAT!r}: {document['format']!r}")
    version = document["version"]
    if version != PLAN_VERSION or isinstance(version, bool):
        raise _malformed(f"version {version!r} is not supported (this cleaner reads 1)")
    shas = [document[key] for key in ("policy_sha256", "rules_sha256")]
    for key, sha in zip(("policy_sha256", "rules_sha256"), shas, strict=True):
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise _malformed(f"{key} must be 64 lowercase hex digits")
    listed_at = _moment(document["listed_at"], "listed_at")
    expires_at = _moment(document["expires_at"], "expires_at")
    if not expires_at > listed_at:
        raise _malformed("expires_at must be later than listed_at")
    actions = document["actions"]
    if not isinstance(actions, list):
        raise _malformed("actions must be a list")
    entries = tuple(_entry(index, entry) for index, entry in enumerate(actions))
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry.batch_id in seen:
            raise _malformed(f"actions[{index}]: {entry.batch_id} is planned twice")
        seen.add(entry.batch_id)
    return ReviewedPlan(listed_at, expires_at, shas[0], shas[1], entries)


def check_plan(plan: ReviewedPlan, *, now: datetime, policy: RetentionPolicy) -> bool:
    """Refuse a plan past its expiry or made under other retention rules.

    Returns whether the holds changed since the plan was made (the plan still applies;
    every batch is checked against the holds in force now).
    """
    if now >= plan.expires_at:
        raise PlanFileError("expired", f"the plan expired at {utc_text(plan.expires_at)}")
    current = rules_sha256(policy)
    if plan.rules_sha256 != current:
        raise PlanFileError(
            "policy_changed",
            f"the plan was made under retention rules {plan.rules_sha256[:12]}..., the rules "
            f"in force now are {current[:12]}...: plan again and review",
        )
    return plan.policy_sha256 != policy_sha256(policy)


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    """A planned batch apply leaves alone, and why (the ``apply_skipped`` line)."""

    entry: PlannedEntry
    why: str  # gone | held | not_due | different_action | different_batch
    hold: Hold | None = None
    kept: KeepReason | None = None
    now_action: ActionKind | None = None


def choose(
    entry: PlannedEntry, batch: Batch | None, policy: RetentionPolicy, now: datetime
) -> Action | Skip:
    """Act on the batch as it is now, only if the policy still plans what was reviewed.

    ``batch`` is the batch retrieved again (None: the API answered 404). The action
    returned carries the fresh batch, so the lifecycle decides on what the API says now.
    """
    if batch is None:
        return Skip(entry=entry, why="gone")
    if batch.id != entry.batch_id or batch.created_at != entry.created_at:
        return Skip(entry=entry, why="different_batch")
    hold = policy.holds.protecting(batch, now)
    if hold is not None:
        return Skip(entry=entry, why="held", hold=hold)
    decision = decide(batch, policy, now)
    if isinstance(decision, KeepReason):
        return Skip(entry=entry, why="not_due", kept=decision)
    if decision.kind is not entry.action:
        return Skip(entry=entry, why="different_action", now_action=decision.kind)
    return decision


def _entry(index: int, raw: object) -> PlannedEntry:
    where = f"actions[{index}]"
    if not isinstance(raw, dict):
        raise _malformed(f"{where}: not an object")
    _keys(raw, allowed=_ENTRY, required=_REQUIRED_ENTRY, where=where)
    batch_id = raw["batch_id"]
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise _malformed(f"{where}: batch_id is not a batch id: {batch_id!r:.80}")
    try:
        action = ActionKind(raw["action"])
        reason = Reason(raw["reason"])
    except (ValueError, TypeError):
        raise _malformed(f"{where}: unknown action or reason") from None
    if reason is Reason.ERASURE_REQUEST:
        raise _malformed(f"{where}: erasure requests are not planned (use cleaner purge)")
    return PlannedEntry(batch_id, action, reason, _moment(raw["created_at"], where))


def _keys(
    raw: Mapping[str, object], *, allowed: frozenset[str], required: frozenset[str], where: str
) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _malformed(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(required - set(raw))
    if missing:
        raise _malformed(f"{where}: missing {', '.join(missing)}")


def _moment(value: object, where: str) -> datetime:
    if not isinstance(value, str) or not _UTC.fullmatch(value):
        raise _malformed(f"{where}: not an RFC 3339 UTC time: {value!r:.80}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _malformed(f"{where}: not a real date and time: {value!r}") from None


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _malformed(problem: str) -> PlanFileError:
    return PlanFileError("malformed", problem)
