"""Changing requests: file, decide, withdraw, revoke. Load, ask the policy, write, and write the mails.

Each command runs inside the caller's transaction; the outbox rows it writes commit with the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import policy, queries
from grantflow.access_request.models import AccessRequest, Decision, RequestAction, RequestApprover, RequestStatus
from grantflow.access_request.schemas import AccessRequestIn, DecisionIn
from grantflow.access_request.snapshot import StepSnapshot, WorkflowSnapshot
from grantflow.audit import service as audit
from grantflow.audit.service import Actor, AuditAction
from grantflow.auth.principal import Principal
from grantflow.auth.scopes import Scope
from grantflow.db import locked_rows
from grantflow.errors import ErrorCode, ErrorDetail, InvalidRequestData, PermissionDenied
from grantflow.grant import service as grant_service
from grantflow.grant.terms import GrantOrder, GrantTerms
from grantflow.notification import compose as notify
from grantflow.role import service as role_service
from grantflow.user import service as user_service
from grantflow.user.models import User
from grantflow.workflow import service as workflow_service
from grantflow.workflow.models import StepMatch, Workflow

# -- filing -----------------------------------------------------------------------------------------------------


async def create_request(
    session: AsyncSession, principal: Principal, body: AccessRequestIn, now: datetime
) -> AccessRequest:
    role = await role_service.roles_by_id(session, [body.requested_role.id])
    if not role:
        raise InvalidRequestData("the requested role does not exist", property="requested_role.id")
    requested_role = role[body.requested_role.id]
    requester = await user_service.get_user(session, principal.user_id, property="requester")
    target = await _target_user(session, principal, body, requester)
    workflow = await _matching_workflow(session, principal.user_id, requested_role.id, body, now)
    limits = WorkflowSnapshot.of_workflow(workflow)
    if limits.requires_justification and not body.request_justification.strip():
        raise InvalidRequestData(
            "this workflow requires a justification",
            property="request_justification",
            error_code=ErrorCode.REQUIRED_VALUE_MISSING,
        )
    terms = _terms(body, limits, now)
    if body.action == RequestAction.REMOVE and not await role_service.holds_explicitly(
        session, target.id, requested_role.id, now
    ):
        raise InvalidRequestData("the target user does not hold this role", property="requested_role")
    await _check_open_requests(session, target.id, requested_role.id, limits.max_active_requests)

    request = AccessRequest(
        id=uuid.uuid4(),
        workflow_id=workflow.id,
        name=workflow.name,
        requester_id=requester.id,
        requester_name=requester.shown_name,
        target_user_id=target.id,
        target_user_name=target.shown_name,
        requested_role_id=requested_role.id,
        requested_role_name=requested_role.name,
        action=body.action,
        status=RequestStatus.WAITING,
        request_justification=body.request_justification,
        comment=body.comment,
        workflow_snapshot=limits.to_json(),
        steps=[StepSnapshot(s["id"], s["name"], StepMatch(s["match"])).to_json() for s in workflow.steps],
        search_text=_search_text(requester, target, requested_role.name, body.request_justification),
        author=requester.id,
        updated_by=requester.id,
        created=now,
        updated=now,
        approvers=[
            RequestApprover(
                step_index=s,
                position=p,
                role_id=uuid.UUID(a["role"]["id"]),
                role_name=a["role"]["name"],
                decision=Decision.WAITING,
            )
            for s, step in enumerate(workflow.steps)
            for p, a in enumerate(step["approvers"])
        ],
    )
    if terms is not None:
        _keep_terms(request, terms)
    session.add(request)
    start = policy.advance(queries.policy_state(request).steps, 0)
    by = Actor(requester.id, requester.shown_name)
    await _move(session, request, start.status, start.current_step, start.auto_approved_steps, now, by)
    await session.flush()
    await notify.request_filed(session, request, now)
    return request


def _terms(body: AccessRequestIn, limits: WorkflowSnapshot, now: datetime) -> GrantTerms | None:
    """A GRANT request's terms, checked by the policy; a REMOVE request has none."""
    if body.action != RequestAction.GRANT:
        return None
    requested = policy.RequestedTerms(body.grant_type, body.grant_start, body.grant_end, body.floating_length)
    return policy.grant_terms(requested, limits, now)


def _keep_terms(request: AccessRequest, terms: GrantTerms) -> None:
    """PrivX keeps the requested terms beside the ones in force; at filing they are the same."""
    request.grant_type = request.requested_grant_type = terms.grant_type
    request.grant_start = request.requested_grant_start = terms.start
    request.grant_end = request.requested_grant_end = terms.end
    request.floating_length = request.requested_floating_length = terms.floating_hours


async def _target_user(session: AsyncSession, principal: Principal, body: AccessRequestIn, requester: User) -> User:
    target_id = body.target_user.id if body.target_user and body.target_user.id else requester.id
    if target_id == requester.id:
        return requester
    if not principal.has(Scope.WORKFLOWS_REQUEST_ON_BEHALF):
        raise PermissionDenied("requesting on behalf of another user needs the workflows-requests-on-behalf permission")
    target = await session.get(User, target_id)
    if target is None:
        raise InvalidRequestData("the target user does not exist", property="target_user.id")
    return target


async def _matching_workflow(
    session: AsyncSession, requester_id: uuid.UUID, role_id: uuid.UUID, body: AccessRequestIn, now: datetime
) -> Workflow:
    """The one workflow that covers this role and action and that the requester may use (decisions.md §4.2)."""
    held = {r.id for r in await role_service.effective_roles(session, requester_id, now)}
    candidates = [
        w
        for w in await workflow_service.workflows_for_role(session, role_id)
        if workflow_service.covers(w, body.action) and workflow_service.usable_by(w, held)
    ]
    if body.workflow is not None:
        candidates = [w for w in candidates if w.id == body.workflow]
    if not candidates:
        raise InvalidRequestData(
            f"no workflow you may use covers {body.action} of this role",
            property="workflow" if body.workflow else "requested_role",
            error_code=ErrorCode.MATCHING_WORKFLOW_NOT_FOUND,
        )
    if len(candidates) > 1:
        raise InvalidRequestData(
            "several workflows cover this role; name one in the field `workflow`",
            property="workflow",
            error_code=ErrorCode.MULTIPLE_MATCHING_WORKFLOWS,
            details=[
                ErrorDetail(
                    error_code=ErrorCode.MULTIPLE_MATCHING_WORKFLOWS,
                    error_message=str(w.id),
                    property="workflow",
                )
                for w in candidates
            ],
        )
    return candidates[0]


async def _check_open_requests(session: AsyncSession, target_id: uuid.UUID, role_id: uuid.UUID, limit: int) -> None:
    """max_active_requests per target user and role; the user row lock serialises concurrent filings."""
    if limit < 0:
        return
    await session.execute(select(User.id).where(User.id == target_id).with_for_update())
    open_count = await session.scalar(
        select(func.count()).where(
            AccessRequest.target_user_id == target_id,
            AccessRequest.requested_role_id == role_id,
            AccessRequest.status == RequestStatus.WAITING,
        )
    )
    if (open_count or 0) >= max(limit, 1):
        raise InvalidRequestData(
            f"there are already {open_count} open requests for this role and user (the workflow allows {limit})",
            property="requested_role",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )


def _search_text(requester: User, target: User, role_name: str, justification: str) -> str:
    parts = [requester.username, requester.display_name, requester.email]
    parts += [target.username, target.display_name, target.email, role_name, justification]
    return "\n".join(p for p in parts if p).lower()


# -- deciding ---------------------------------------------------------------------------------------------------


async def decide(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, body: DecisionIn, now: datetime
) -> AccessRequest:
    request = await queries.load_for_update(session, principal, request_id, now)
    mapped = frozenset(await role_service.mapped_role_ids(session, principal.user_id, now))
    outcome = policy.decide(
        queries.policy_state(request),
        actor_id=principal.user_id,
        actor_mapped_roles=mapped,
        step=body.step,
        decision=Decision(body.decision),
    )
    actor = await user_service.get_user(session, principal.user_id, property="user")
    entry = request.step_entries(body.step)[outcome.entry_index]
    entry.decision = body.decision
    entry.decider_id = actor.id
    entry.decider_name = actor.shown_name
    entry.decision_time = now
    entry.comment = body.comment
    request.updated_by = actor.id
    by = Actor(actor.id, actor.shown_name)
    await _move(session, request, outcome.status, outcome.current_step, outcome.auto_approved_steps, now, by)
    if outcome.closes_step:
        await notify.step_closed(session, request, body.step, now)
    return request


async def _move(
    session: AsyncSession,
    request: AccessRequest,
    status: RequestStatus,
    current_step: int,
    auto_steps: Sequence[int],
    now: datetime,
    actor: Actor,
) -> None:
    """Record a transition; on final approval the membership changes in the same transaction."""
    for index in auto_steps:
        for entry in request.step_entries(index):
            entry.decision = Decision.APPROVED
            entry.decision_time = now
    if request.step_started is None or current_step != request.current_step:
        request.step_started = now
    request.current_step = current_step
    request.status = status
    request.updated = now
    if status == RequestStatus.APPROVED:
        await _apply_approval(session, request, now, actor)


async def _apply_approval(session: AsyncSession, request: AccessRequest, now: datetime, actor: Actor) -> None:
    if request.action == RequestAction.REMOVE:
        reason = f"removed by the approved REMOVE request {request.id}"
        await grant_service.revoke_user_role(
            session, request.target_user_id, request.requested_role_id, now, actor, reason
        )
        await role_service.remove_memberships(session, request.target_user_id, request.requested_role_id)
        return
    order = GrantOrder(request.id, request.target_user_id, request.requested_role_id, request.terms)
    await grant_service.open_grant(session, order, now, actor)


# -- withdrawing and revoking -----------------------------------------------------------------------------------


async def delete_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime) -> None:
    """The requester cancels a waiting request; an admin deletes an undecided one (policy.withdrawal)."""
    request = await queries.load_for_update(session, principal, request_id, now)
    what = policy.withdrawal(
        status=RequestStatus(request.status),
        actor_is_requester=principal.user_id == request.requester_id,
        actor_is_admin=principal.is_admin,
    )
    if what == policy.Withdrawal.DELETE:
        await session.delete(request)
        return
    request.status = RequestStatus.CANCELLED
    request.updated = now
    request.updated_by = principal.user_id
    await notify.request_cancelled(session, request, now)


async def cancel_waiting(
    session: AsyncSession, request_ids: list[uuid.UUID], now: datetime, actor: Actor, reason: str
) -> None:
    """Close waiting requests that can no longer be granted or decided (what they need was deleted), audited."""
    if not request_ids:
        return
    query = select(AccessRequest).where(
        AccessRequest.id.in_(request_ids), AccessRequest.status == RequestStatus.WAITING
    )
    for request in await locked_rows(session, query, AccessRequest):
        request.status = RequestStatus.CANCELLED
        request.updated = now
        if actor.id is not None:
            request.updated_by = actor.id
        audit.record_request(session, AuditAction.REQUEST_CANCELLED, now, actor, request, reason)
    await session.flush()


async def revoke_role(session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime) -> None:
    """Remove the role an approved request granted, without a REMOVE request (decisions.md §5)."""
    request = await queries.load_for_update(session, principal, request_id, now)
    if request.status != RequestStatus.APPROVED or request.action != RequestAction.GRANT:
        raise InvalidRequestData("only an approved GRANT request has a role to revoke", property="status")
    if request.target_role_revoked:
        raise InvalidRequestData("the role has already been revoked", property="target_role_revoked")
    if not queries.may_revoke(request, principal):
        raise PermissionDenied(
            "only an original approver or an administrator can revoke, and only when the workflow allows "
            "bypassing the revoke workflow; otherwise file a REMOVE request"
        )
    actor = await user_service.get_user(session, principal.user_id, property="user")
    await grant_service.revoke_request_grant(session, request.id, now, Actor(actor.id, actor.shown_name))
    request.target_role_revoked = True
    request.target_role_revocation_time = now
    request.target_role_revoked_by = principal.user_id
    request.updated = now
    request.updated_by = principal.user_id
    await notify.role_revoked(session, request, now)
