"""The life of one planned batch, as a state machine with no I/O (in the spirit of h11).

The shell (:mod:`cleaner.actor`) starts a life with :func:`begin`, carries out the command
it gets, turns what happened into an observation, and feeds it to :func:`advance`, until
the command is :class:`Finish`. Nothing here sends a request, sleeps, logs or reads a
clock: ``now`` is an argument, so every path, waiting included, is a plain function of
its inputs and is tested on virtual time.

A life, in order (the bracketed steps only when configured)::

    cancel action:  [intent] cancel -> wait (sleep, poll, ...) -> ended
    await action:                      wait (sleep, poll, ...) -> ended
    delete action:                                                ended
    ended:          [archive] -> [intent] -> delete -> [verify] -> finish

:class:`Delete` can only be built from an :class:`EndedBatch`, and an :class:`EndedBatch`
only from a batch observed ``ended``: the rule "never delete what was not seen ended" is
a type, not a check someone may refactor away.

Waiting: batches canceled together settle together. The first few waiters (probes) poll
on an exponential backoff; the others sleep until a probe has learned how long settling
takes (:class:`SettleEstimate`) and then poll once about that long after their own
cancel, so most canceled batches cost three requests: cancel, one poll, delete.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from cleaner.commands import (
    Absent,
    Archive,
    Archived,
    Cancel,
    Confirmed,
    Delete,
    Done,
    EndedBatch,
    Failed,
    Finish,
    Gone,
    Halted,
    LifeConfig,
    NotEndedError,
    NothingToArchive,
    Observation,
    Poll,
    Refused,
    Seen,
    SettleEstimate,
    Sleep,
    Step,
    Verify,
    WriteIntent,
)
from cleaner.life import Life, Phase, Transition
from cleaner.models import Action, ActionKind, Outcome

_O = TypeVar("_O")


def begin(action: Action, config: LifeConfig, *, now: float, settle: SettleEstimate) -> Transition:
    """The first command of a planned action's life."""
    life = Life(action=action, config=config, phase=Phase.DONE)
    if action.kind is ActionKind.DELETE:
        ended = EndedBatch.of(action.batch)
        if ended is None:  # the policy plans deletes only for ended batches
            return _finish(life, settle, Outcome.FAILED, step=Step.DELETE)
        return _toward_delete(life, ended, settle)
    if action.kind is ActionKind.CANCEL:
        if config.audit:
            return Transition(
                replace(life, phase=Phase.INTENT_CANCEL), WriteIntent(Step.CANCEL), settle
            )
        return Transition(replace(life, phase=Phase.CANCELING), Cancel(), settle)
    return _start_waiting(life, now=now, settle=settle)  # AWAIT: someone else canceled it


def advance(life: Life, seen: Observation, *, now: float, settle: SettleEstimate) -> Transition:
    """The next command after ``seen``, the observation of the last one."""
    if isinstance(seen, Halted):
        return _finish(life, settle, Outcome.NOT_ATTEMPTED)
    if isinstance(seen, Failed):
        return _finish(
            life, settle, _failure(life.phase, seen), step=_STEP[life.phase], error=seen.error
        )
    handler = _HANDLERS.get(life.phase)
    if handler is None:
        raise ValueError(f"no observation is expected in phase {life.phase}")
    return handler(life, seen, now, settle)


# --- the steps, one function per phase


def _after_intent_cancel(
    life: Life, seen: Observation, now: float, s: SettleEstimate
) -> Transition:
    _expect(life, seen, Done)
    return Transition(replace(life, phase=Phase.CANCELING), Cancel(), s)


def _after_cancel(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    if isinstance(seen, Gone):
        return _finish(life, s, Outcome.ALREADY_GONE, step=Step.CANCEL)
    if isinstance(seen, Seen):
        ended = EndedBatch.of(seen.batch)
        if ended is not None:  # it ended before the cancel landed: no need to wait
            return _toward_delete(life, ended, s)
        return _start_waiting(life, now=now, settle=s)
    _expect(life, seen, Refused)
    return _start_waiting(life, now=now, settle=s)  # look instead of guessing


def _after_settle_wait(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    _expect(life, seen, Done)
    return _sleep_then_poll(life, now=now, settle=s)


def _after_sleep(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    _expect(life, seen, Done)
    if now >= life.config.deadline:
        return _finish(life, s, Outcome.WAIT_TIMEOUT, step=Step.WAIT)
    return Transition(replace(life, phase=Phase.POLLING), Poll(), s)


def _after_poll(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    if isinstance(seen, Gone):
        # 404 is not proof of absence right after a state change: ask again.
        not_found = life.not_found + 1
        if not_found >= life.config.not_found_limit:
            return _finish(life, s, Outcome.ALREADY_GONE, step=Step.WAIT)
        return _wait(replace(life, not_found=not_found), now=now, settle=s)
    ended = EndedBatch.of(_expect(life, seen, Seen).batch)
    if ended is not None:
        return _toward_delete(life, ended, s.learn(now - life.cancel_sent_at))
    delay = min(life.delay_s * 2, life.config.poll_max_s)
    return _wait(replace(life, not_found=0, delay_s=delay), now=now, settle=s)


def _after_archive(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    if isinstance(seen, NothingToArchive):
        return _intend_delete(replace(life, results_unavailable=True), s)
    return _intend_delete(replace(life, archive=_expect(life, seen, Archived).info), s)


def _after_intent_delete(
    life: Life, seen: Observation, now: float, s: SettleEstimate
) -> Transition:
    _expect(life, seen, Done)
    return Transition(replace(life, phase=Phase.DELETING), Delete(_ended(life)), s)


def _after_delete(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    if isinstance(seen, Gone):
        return _finish(
            replace(life, request_id=seen.request_id), s, Outcome.ALREADY_GONE, step=Step.DELETE
        )
    seen = _expect(life, seen, Confirmed)
    life = replace(life, confirmation=seen.confirmation, request_id=seen.request_id)
    if life.config.verify:
        return Transition(replace(life, phase=Phase.VERIFYING), Verify(), s)
    return _finish(life, s, Outcome.DELETED, step=Step.DELETE)


def _after_verify(life: Life, seen: Observation, now: float, s: SettleEstimate) -> Transition:
    verified = _expect(life, seen, Absent).verified
    return _finish(life, s, Outcome.DELETED, step=Step.DELETE, verified_absent=verified)


_HANDLERS = {
    Phase.INTENT_CANCEL: _after_intent_cancel,
    Phase.CANCELING: _after_cancel,
    Phase.SETTLE_WAIT: _after_settle_wait,
    Phase.SLEEPING: _after_sleep,
    Phase.POLLING: _after_poll,
    Phase.ARCHIVING: _after_archive,
    Phase.INTENT_DELETE: _after_intent_delete,
    Phase.DELETING: _after_delete,
    Phase.VERIFYING: _after_verify,
}

_STEP = {
    Phase.INTENT_CANCEL: Step.CANCEL,
    Phase.CANCELING: Step.CANCEL,
    Phase.SETTLE_WAIT: Step.WAIT,
    Phase.SLEEPING: Step.WAIT,
    Phase.POLLING: Step.WAIT,
    Phase.ARCHIVING: Step.ARCHIVE,
    Phase.INTENT_DELETE: Step.DELETE,
    Phase.DELETING: Step.DELETE,
    Phase.VERIFYING: Step.DELETE,
    Phase.DONE: None,
}


# --- shared moves


def _start_waiting(life: Life, *, now: float, settle: SettleEstimate) -> Transition:
    settle, probe = settle.take_probe()
    life = replace(life, cancel_sent_at=now, probe=probe, delay_s=life.config.poll_initial_s)
    return _wait(life, now=now, settle=settle)


def _wait(life: Life, *, now: float, settle: SettleEstimate) -> Transition:
    """Between polls: time out, wait for the probes to learn, or sleep toward the next poll."""
    remaining = life.config.deadline - now
    if remaining <= 0:
        return _finish(life, settle, Outcome.WAIT_TIMEOUT, step=Step.WAIT)
    if not life.probe and settle.settle_s is None:
        # Until a probe knows, look again only at the slowest poll cadence.
        until = now + min(life.config.poll_max_s, remaining)
        return Transition(replace(life, phase=Phase.SETTLE_WAIT), Sleep(until, True), settle)
    return _sleep_then_poll(life, now=now, settle=settle)


def _sleep_then_poll(life: Life, *, now: float, settle: SettleEstimate) -> Transition:
    delay = life.delay_s
    if settle.settle_s is not None:
        delay = max(delay, settle.settle_s - (now - life.cancel_sent_at))
    until = min(now + delay, life.config.deadline)
    return Transition(
        replace(life, phase=Phase.SLEEPING, delay_s=life.delay_s), Sleep(until), settle
    )


def _toward_delete(life: Life, ended: EndedBatch, settle: SettleEstimate) -> Transition:
    life = replace(life, ended=ended)
    if life.config.archive:
        return Transition(replace(life, phase=Phase.ARCHIVING), Archive(ended), settle)
    return _intend_delete(life, settle)


def _intend_delete(life: Life, settle: SettleEstimate) -> Transition:
    if life.config.audit:
        return Transition(
            replace(life, phase=Phase.INTENT_DELETE), WriteIntent(Step.DELETE), settle
        )
    return Transition(replace(life, phase=Phase.DELETING), Delete(_ended(life)), settle)


def _finish(
    life: Life,
    settle: SettleEstimate,
    outcome: Outcome,
    *,
    step: Step | None = None,
    error: Exception | None = None,
    verified_absent: bool | None = None,
) -> Transition:
    finish = Finish(
        outcome=outcome,
        step=step,
        ended=life.ended,
        confirmation=life.confirmation,
        request_id=life.request_id,
        archive=life.archive,
        results_unavailable=life.results_unavailable,
        verified_absent=verified_absent,
        error=error,
    )
    return Transition(replace(life, phase=Phase.DONE), finish, settle)


def _failure(phase: Phase, failed: Failed) -> Outcome:
    """The outcome of a failed command: the step that failed decides what it is called."""
    if phase in (Phase.INTENT_CANCEL, Phase.INTENT_DELETE):
        return Outcome.AUDIT_UNAVAILABLE  # nothing was sent: the sink could not be written
    if failed.ends_cycle:
        return Outcome.NOT_ATTEMPTED  # the cause was logged once for the whole cycle
    return Outcome.ARCHIVE_FAILED if phase is Phase.ARCHIVING else Outcome.FAILED


def _ended(life: Life) -> EndedBatch:
    if life.ended is None:  # unreachable: every path to a delete sets it
        raise NotEndedError(f"{life.action.batch_id} reached {life.phase} without being seen ended")
    return life.ended


def _expect(life: Life, seen: Observation, kind: type[_O]) -> _O:
    if not isinstance(seen, kind):
        raise ValueError(f"{type(seen).__name__} is not an answer to phase {life.phase}")
    return seen
