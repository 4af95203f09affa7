"""The decision rules, table by table, without a database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from grantflow.access_request import policy
from grantflow.access_request.models import Decision, RequestStatus
from grantflow.errors import InvalidRequestData, PermissionDenied
from grantflow.workflow.models import StepMatch

REQUESTER, TARGET, BOB, CAROL, DAVE = (uuid.uuid4() for _ in range(5))
LEADS, SECURITY, OTHER = (uuid.uuid4() for _ in range(3))
W, A, D = Decision.WAITING, Decision.APPROVED, Decision.DENIED


def step(match: StepMatch, *entries: tuple[uuid.UUID, Decision, uuid.UUID | None]) -> policy.Step:
    return policy.Step(match, tuple(policy.ApproverEntry(*e) for e in entries))


def state(*steps: policy.Step, current: int = 0, status: RequestStatus = RequestStatus.WAITING) -> policy.RequestState:
    return policy.RequestState(status, current, tuple(steps), REQUESTER, TARGET)


ANY_LEADS = step(StepMatch.ANY, (LEADS, W, None))
ALL_LEADS_SECURITY = step(StepMatch.ALL, (LEADS, W, None), (SECURITY, W, None))
AUTO = step(StepMatch.AUTO, (OTHER, W, None))


@pytest.mark.parametrize(
    ("request_state", "actor", "roles", "decision", "expected_status", "expected_step", "entry"),
    [
        # ANY: one approval completes the step; the last step completes the request.
        (state(ANY_LEADS), BOB, {LEADS}, A, RequestStatus.APPROVED, 0, 0),
        # ANY then ANY: the first approval moves to the next step.
        (state(ANY_LEADS, step(StepMatch.ANY, (SECURITY, W, None))), BOB, {LEADS}, A, RequestStatus.WAITING, 1, 0),
        # ALL: the first of two approvals leaves the step waiting.
        (state(ALL_LEADS_SECURITY), BOB, {LEADS}, A, RequestStatus.WAITING, 0, 0),
        # ALL: the last missing approval completes it.
        (
            state(step(StepMatch.ALL, (LEADS, A, BOB), (SECURITY, W, None))),
            CAROL,
            {SECURITY},
            A,
            RequestStatus.APPROVED,
            0,
            1,
        ),
        # One denial denies the whole request, whatever the match rule.
        (state(ALL_LEADS_SECURITY), CAROL, {SECURITY}, D, RequestStatus.DENIED, 0, 1),
        (state(ANY_LEADS, step(StepMatch.ANY, (SECURITY, W, None))), BOB, {LEADS}, D, RequestStatus.DENIED, 0, 0),
        # An AUTO step after a decided one approves itself and the request moves past it.
        (state(ANY_LEADS, AUTO), BOB, {LEADS}, A, RequestStatus.APPROVED, 1, 0),
        (state(ANY_LEADS, AUTO, ANY_LEADS), BOB, {LEADS}, A, RequestStatus.WAITING, 2, 0),
        # A user holding both roles of an ALL step fills only one entry per decision.
        (state(ALL_LEADS_SECURITY), DAVE, {LEADS, SECURITY}, A, RequestStatus.WAITING, 0, 0),
    ],
)
def test_decision_outcomes(
    request_state: policy.RequestState,
    actor: uuid.UUID,
    roles: set[uuid.UUID],
    decision: Decision,
    expected_status: RequestStatus,
    expected_step: int,
    entry: int,
) -> None:
    outcome = policy.decide(
        request_state,
        actor_id=actor,
        actor_mapped_roles=frozenset(roles),
        step=request_state.current_step,
        decision=decision,
    )
    assert (outcome.status, outcome.current_step, outcome.entry_index) == (expected_status, expected_step, entry)


@pytest.mark.parametrize(
    ("request_state", "actor", "roles", "step_index", "error", "message"),
    [
        (state(ANY_LEADS), REQUESTER, {LEADS}, 0, PermissionDenied, "made or that is for you"),
        (state(ANY_LEADS), TARGET, {LEADS}, 0, PermissionDenied, "made or that is for you"),
        (state(ANY_LEADS), DAVE, {SECURITY}, 0, PermissionDenied, "not a mapped member"),
        (
            state(ANY_LEADS, step(StepMatch.ANY, (SECURITY, W, None))),
            CAROL,
            {SECURITY},
            1,
            InvalidRequestData,
            "not the current step",
        ),
        (state(ANY_LEADS, current=0), BOB, {LEADS}, 5, InvalidRequestData, "not the current step"),
        (state(ANY_LEADS, status=RequestStatus.APPROVED), BOB, {LEADS}, 0, InvalidRequestData, "not waiting"),
        (state(ANY_LEADS, status=RequestStatus.CANCELLED), BOB, {LEADS}, 0, InvalidRequestData, "not waiting"),
        # Deciding twice on one step, even through a second role, is refused.
        (
            state(step(StepMatch.ALL, (LEADS, A, DAVE), (SECURITY, W, None))),
            DAVE,
            {LEADS, SECURITY},
            0,
            InvalidRequestData,
            "already decided",
        ),
        # Another member of a role whose entry is already filled in an ALL step has nothing left to decide.
        (
            state(step(StepMatch.ALL, (LEADS, A, BOB), (SECURITY, W, None))),
            DAVE,
            {LEADS},
            0,
            InvalidRequestData,
            "already decided",
        ),
    ],
)
def test_refused_decisions(
    request_state: policy.RequestState,
    actor: uuid.UUID,
    roles: set[uuid.UUID],
    step_index: int,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        policy.decide(request_state, actor_id=actor, actor_mapped_roles=frozenset(roles), step=step_index, decision=A)


@pytest.mark.parametrize(
    ("steps", "start", "expected"),
    [
        ((ANY_LEADS,), 0, (0, RequestStatus.WAITING, ())),
        ((AUTO, ANY_LEADS), 0, (1, RequestStatus.WAITING, (0,))),
        ((AUTO, AUTO), 0, (1, RequestStatus.APPROVED, (0, 1))),
        ((ANY_LEADS, AUTO), 1, (1, RequestStatus.APPROVED, (1,))),
    ],
)
def test_advance_skips_auto_steps(
    steps: tuple[policy.Step, ...], start: int, expected: tuple[int, RequestStatus, tuple[int, ...]]
) -> None:
    result = policy.advance(steps, start)
    assert (result.current_step, result.status, result.auto_approved_steps) == expected


@pytest.mark.parametrize(
    ("kwargs", "allowed"),
    [
        ({}, True),
        ({"actor_is_admin": True, "actor_approved_it": False}, True),
        ({"actor_approved_it": False}, False),
        ({"can_bypass": False}, False),
        ({"can_bypass": False, "actor_is_admin": True}, False),
        ({"already_revoked": True}, False),
        ({"status": RequestStatus.WAITING}, False),
        ({"is_grant": False}, False),
    ],
)
def test_who_may_revoke(kwargs: dict[str, Any], allowed: bool) -> None:
    base: dict[str, Any] = {
        "status": RequestStatus.APPROVED,
        "is_grant": True,
        "already_revoked": False,
        "can_bypass": True,
        "actor_is_admin": False,
        "actor_approved_it": True,
    }
    assert policy.may_revoke(**{**base, **kwargs}) is allowed
