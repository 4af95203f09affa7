"""The request state machine, as pure functions of plain values: no clock, no database, no I/O.

Rules (docs/privx-compatibility.md; decisions.md §3, §4):
- steps run in order; an AUTO step approves itself the moment it becomes current;
- ANY: one approval completes the step; ALL: every approver entry must be approved;
- one denial denies the whole request;
- only mapped members of an approver role decide, never the requester or the target user;
- the decision names the current step (0-based); one person fills at most one entry of a step;
- a GRANT request's terms must be a type the workflow allows, within its limits (0 = no limit);
- the requester cancels a waiting request; an admin deletes an undecided one; decided ones stay for audit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from grantflow.access_request.models import Decision, RequestStatus
from grantflow.access_request.snapshot import WorkflowSnapshot
from grantflow.errors import ErrorCode, InvalidRequestData, PermissionDenied
from grantflow.grant.terms import GrantTerms
from grantflow.role.models import GrantType
from grantflow.workflow.models import StepMatch


@dataclass(frozen=True)
class ApproverEntry:
    role_id: uuid.UUID
    decision: Decision = Decision.WAITING
    decider_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Step:
    match: StepMatch
    approvers: tuple[ApproverEntry, ...]


@dataclass(frozen=True)
class RequestState:
    status: RequestStatus
    current_step: int
    steps: tuple[Step, ...]
    requester_id: uuid.UUID
    target_user_id: uuid.UUID


@dataclass(frozen=True)
class Outcome:
    """What a decision does: which entry of which step it fills, and where the request goes next."""

    entry_index: int
    decided_step: int
    status: RequestStatus
    current_step: int
    auto_approved_steps: tuple[int, ...] = ()

    @property
    def completed(self) -> bool:
        return self.status == RequestStatus.APPROVED

    @property
    def closes_step(self) -> bool:
        """False while an ALL step still waits for other approvers: nobody else needs to hear of it yet."""
        return self.status != RequestStatus.WAITING or self.current_step != self.decided_step


@dataclass(frozen=True)
class Advance:
    current_step: int
    status: RequestStatus
    auto_approved_steps: tuple[int, ...]


def advance(steps: Sequence[Step], start: int) -> Advance:
    """Move to the first step at or after `start` that needs a person; past the last step, approve."""
    auto: list[int] = []
    index = start
    while index < len(steps) and steps[index].match == StepMatch.AUTO:
        auto.append(index)
        index += 1
    if index >= len(steps):
        return Advance(current_step=len(steps) - 1, status=RequestStatus.APPROVED, auto_approved_steps=tuple(auto))
    return Advance(current_step=index, status=RequestStatus.WAITING, auto_approved_steps=tuple(auto))


def step_complete(step: Step) -> bool:
    approved = [a.decision == Decision.APPROVED for a in step.approvers]
    if step.match == StepMatch.ALL:
        return all(approved)
    return any(approved)


def decide(
    state: RequestState,
    *,
    actor_id: uuid.UUID,
    actor_mapped_roles: frozenset[uuid.UUID],
    step: int,
    decision: Decision,
) -> Outcome:
    """Apply one approver's decision, or raise the error that explains why it is refused."""
    if state.status != RequestStatus.WAITING:
        raise InvalidRequestData(f"the request is {state.status}, not waiting for decisions", property="status")
    if step != state.current_step:
        raise InvalidRequestData(
            f"step {step} is not the current step ({state.current_step})",
            property="step",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    if actor_id in (state.requester_id, state.target_user_id):
        raise PermissionDenied("you cannot decide a request that you made or that is for you")
    current = state.steps[step]
    entry_index = _entry_for(current, actor_id, actor_mapped_roles)
    if decision == Decision.DENIED:
        return Outcome(entry_index, step, status=RequestStatus.DENIED, current_step=step)
    approvers = list(current.approvers)
    approvers[entry_index] = ApproverEntry(approvers[entry_index].role_id, Decision.APPROVED, actor_id)
    if not step_complete(Step(current.match, tuple(approvers))):
        return Outcome(entry_index, step, status=RequestStatus.WAITING, current_step=step)
    nxt = advance(state.steps, step + 1)
    return Outcome(
        entry_index,
        step,
        status=nxt.status,
        current_step=nxt.current_step,
        auto_approved_steps=nxt.auto_approved_steps,
    )


def _entry_for(step: Step, actor_id: uuid.UUID, actor_mapped_roles: frozenset[uuid.UUID]) -> int:
    """The first still-waiting entry whose role the actor holds by mapping."""
    if not any(a.role_id in actor_mapped_roles for a in step.approvers):
        raise PermissionDenied("you are not a mapped member of an approver role of this step")
    if any(a.decider_id == actor_id for a in step.approvers):
        raise InvalidRequestData("you have already decided this step", property="step")
    for index, entry in enumerate(step.approvers):
        if entry.decision == Decision.WAITING and entry.role_id in actor_mapped_roles:
            return index
    raise InvalidRequestData("the approver roles you hold have already decided this step", property="step")


def may_revoke(
    *,
    status: RequestStatus,
    is_grant: bool,
    already_revoked: bool,
    can_bypass: bool,
    actor_is_admin: bool,
    actor_approved_it: bool,
) -> bool:
    """role/revoke: an original approver or an admin, when the workflow allows bypassing a REMOVE request."""
    return (
        status == RequestStatus.APPROVED
        and is_grant
        and not already_revoked
        and can_bypass
        and (actor_is_admin or actor_approved_it)
    )


# -- grant terms ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestedTerms:
    """The grant fields of a GRANT request as the client sent them."""

    grant_type: GrantType | None
    start: datetime | None
    end: datetime | None
    floating_hours: int | None


def grant_terms(requested: RequestedTerms, limits: WorkflowSnapshot, now: datetime) -> GrantTerms:
    """The terms a GRANT request keeps, checked against the workflow's limits (0 = no limit)."""
    grant_type = requested.grant_type or GrantType.PERMANENT
    if grant_type not in limits.grant_types:
        raise InvalidRequestData(
            f"grant type {grant_type} is not allowed by this workflow (allowed: {', '.join(limits.grant_types)})",
            property="grant_type",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    if grant_type == GrantType.PERMANENT:
        return GrantTerms(grant_type)
    if grant_type == GrantType.FLOATING:
        return GrantTerms(grant_type, floating_hours=_floating_hours(requested.floating_hours, limits))
    return _time_window(requested, limits, now)


def _time_window(requested: RequestedTerms, limits: WorkflowSnapshot, now: datetime) -> GrantTerms:
    start, end = requested.start, requested.end
    if start is None or end is None:
        raise InvalidRequestData(
            "a time-restricted grant needs grant_start and grant_end",
            property="grant_start" if start is None else "grant_end",
            error_code=ErrorCode.REQUIRED_VALUE_MISSING,
        )
    if end <= start:
        raise InvalidRequestData("grant_end must be after grant_start", property="grant_end")
    if end <= now:
        raise InvalidRequestData("grant_end is in the past", property="grant_end")
    limit = limits.max_time_restricted_duration
    if limit and end - start > timedelta(days=limit):
        raise InvalidRequestData(
            f"the window is longer than the workflow allows ({limit} days)",
            property="grant_end",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    return GrantTerms(GrantType.TIME_RESTRICTED, start=start, end=end)


def _floating_hours(hours: int | None, limits: WorkflowSnapshot) -> int:
    if hours is None or hours < 1:
        raise InvalidRequestData(
            "a floating grant needs floating_length of at least 1 hour",
            property="floating_length",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    limit = limits.max_floating_duration
    if limit and hours > limit:
        raise InvalidRequestData(
            f"floating_length is longer than the workflow allows ({limit} hours)",
            property="floating_length",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    return hours


# -- withdrawing ------------------------------------------------------------------------------------------------


class Withdrawal(StrEnum):
    CANCEL = "CANCEL"  # the requester withdraws: the request stays, CANCELLED
    DELETE = "DELETE"  # an admin removes an undecided request


def withdrawal(*, status: RequestStatus, actor_is_requester: bool, actor_is_admin: bool) -> Withdrawal:
    """What DELETE /requests/{id} does for this caller, or the error that explains why it cannot."""
    if actor_is_requester and status == RequestStatus.WAITING:
        return Withdrawal.CANCEL
    if actor_is_admin:
        if status in (RequestStatus.APPROVED, RequestStatus.DENIED):
            raise InvalidRequestData("decided requests are kept for audit", property="status")
        return Withdrawal.DELETE
    if actor_is_requester:
        raise InvalidRequestData(f"the request is {status}; only waiting requests can be cancelled", property="status")
    raise PermissionDenied("only the requester or an administrator can delete a request")
