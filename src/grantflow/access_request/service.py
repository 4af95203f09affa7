"""Role requests: create, decide, cancel, revoke, list and search. Load, apply the policy, write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from grantflow.access_request import policy
from grantflow.access_request.models import (
    AccessRequest,
    Decision,
    RequestAction,
    RequestApprover,
    RequestStatus,
)
from grantflow.access_request.schemas import (
    AccessRequestIn,
    AccessRequestOut,
    ApproverOut,
    DecisionIn,
    RequestStepOut,
    SearchIn,
)
from grantflow.audit import service as audit
from grantflow.audit.service import SYSTEM, Actor, AuditAction
from grantflow.auth.deps import Principal
from grantflow.auth.scopes import Scope
from grantflow.errors import ErrorCode, ErrorDetail, InvalidRequestData, NotFound, PermissionDenied
from grantflow.grant import service as grant_service
from grantflow.grant.models import Grant, GrantState
from grantflow.kit.handles import Handles
from grantflow.kit.pagination import Page, paginate
from grantflow.notification import compose as notify
from grantflow.role import service as role_service
from grantflow.role.models import GrantType
from grantflow.user import service as user_service
from grantflow.user.models import User
from grantflow.workflow import service as workflow_service
from grantflow.workflow.models import StepMatch, Workflow

SORT_KEYS = {
    "created": AccessRequest.created,
    "updated": AccessRequest.updated,
    "status": AccessRequest.status,
    "id": AccessRequest.id,
}
MAX_KEYWORDS = 10


class RequestFilter(StrEnum):
    REQUESTS = "requests"
    ACTIVE_REQUESTS = "active_requests"
    APPROVALS = "approvals"
    ACTIVE_APPROVALS = "active_approvals"
    ALL = "all"


def parse_filter(value: str | None) -> RequestFilter | None:
    """Filters are accepted in any case: the PrivX UI sends lower case, newer OpenAPI documents upper."""
    if value is None or value == "":
        return None
    try:
        return RequestFilter(value.lower())
    except ValueError:
        raise InvalidRequestData(
            f"filter must be one of: {', '.join(f.value for f in RequestFilter)}",
            property="filter",
            error_code=ErrorCode.VALUE_INCORRECT_FORMAT,
        ) from None


# -- creating ---------------------------------------------------------------------------------------------------


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
    if workflow.requires_justification and not body.request_justification.strip():
        raise InvalidRequestData(
            "this workflow requires a justification",
            property="request_justification",
            error_code=ErrorCode.REQUIRED_VALUE_MISSING,
        )
    grant = _validate_grant(body, workflow, now) if body.action == RequestAction.GRANT else _NO_GRANT
    if body.action == RequestAction.REMOVE and not await role_service.holds_explicitly(
        session, target.id, requested_role.id, now
    ):
        raise InvalidRequestData("the target user does not hold this role", property="requested_role")
    await _check_open_requests(session, target.id, requested_role.id, workflow.max_active_requests)

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
        grant_type=grant.get("grant_type"),
        grant_start=grant.get("grant_start"),
        grant_end=grant.get("grant_end"),
        floating_length=grant.get("floating_length"),
        requested_grant_type=grant.get("grant_type"),
        requested_grant_start=grant.get("grant_start"),
        requested_grant_end=grant.get("grant_end"),
        requested_floating_length=grant.get("floating_length"),
        request_justification=body.request_justification,
        comment=body.comment,
        workflow_snapshot=_snapshot(workflow),
        steps=[{"id": s["id"], "name": s["name"], "match": s["match"]} for s in workflow.steps],
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
    session.add(request)
    start = policy.advance(_state(request).steps, 0)
    by = Actor(requester.id, requester.shown_name)
    await _move(session, request, start.status, start.current_step, start.auto_approved_steps, now, by)
    await session.flush()
    await notify.request_filed(session, request, now)
    return request


_NO_GRANT: dict[str, Any] = {}


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
    """The one workflow that covers this role and action and that the requester may use (decisions.md §8)."""
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


def _validate_grant(body: AccessRequestIn, workflow: Workflow, now: datetime) -> dict[str, Any]:
    """The grant fields a GRANT request keeps, checked against the workflow's limits (0 = no limit)."""
    grant_type = body.grant_type or GrantType.PERMANENT
    if grant_type not in workflow.grant_types:
        raise InvalidRequestData(
            f"grant type {grant_type} is not allowed by this workflow (allowed: {', '.join(workflow.grant_types)})",
            property="grant_type",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    if grant_type == GrantType.PERMANENT:
        return {"grant_type": grant_type}
    if grant_type == GrantType.FLOATING:
        return {"grant_type": grant_type, "floating_length": _floating_length(body, workflow)}
    start, end = body.grant_start, body.grant_end
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
    limit = workflow.max_time_restricted_duration
    if limit and end - start > timedelta(days=limit):
        raise InvalidRequestData(
            f"the window is longer than the workflow allows ({limit} days)",
            property="grant_end",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    return {"grant_type": grant_type, "grant_start": start, "grant_end": end}


def _floating_length(body: AccessRequestIn, workflow: Workflow) -> int:
    hours = body.floating_length
    if hours is None or hours < 1:
        raise InvalidRequestData(
            "a floating grant needs floating_length of at least 1 hour",
            property="floating_length",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    limit = workflow.max_floating_duration
    if limit and hours > limit:
        raise InvalidRequestData(
            f"floating_length is longer than the workflow allows ({limit} hours)",
            property="floating_length",
            error_code=ErrorCode.VALUE_OUT_OF_BOUNDS,
        )
    return hours


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


def _snapshot(workflow: Workflow) -> dict[str, Any]:
    return {
        "grant_types": list(workflow.grant_types),
        "max_active_requests": workflow.max_active_requests,
        "max_floating_duration": workflow.max_floating_duration,
        "max_time_restricted_duration": workflow.max_time_restricted_duration,
        "can_bypass_revoke_workflow": workflow.can_bypass_revoke_workflow,
        "requires_justification": workflow.requires_justification,
        "target_roles": list(workflow.target_roles),
        "requestor_roles": list(workflow.requester_roles),
    }


def _search_text(requester: User, target: User, role_name: str, justification: str) -> str:
    parts = [requester.username, requester.display_name, requester.email]
    parts += [target.username, target.display_name, target.email, role_name, justification]
    return "\n".join(p for p in parts if p).lower()


# -- deciding ---------------------------------------------------------------------------------------------------


async def decide(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, body: DecisionIn, now: datetime
) -> AccessRequest:
    request = await _load_for_update(session, principal, request_id, now)
    mapped = frozenset(await role_service.mapped_role_ids(session, principal.user_id, now))
    outcome = policy.decide(
        _state(request),
        actor_id=principal.user_id,
        actor_mapped_roles=mapped,
        step=body.step,
        decision=Decision(body.decision),
    )
    actor = await user_service.get_user(session, principal.user_id, property="user")
    entry = _step_entries(request, body.step)[outcome.entry_index]
    entry.decision = body.decision
    entry.decider_id = actor.id
    entry.decider_name = actor.shown_name
    entry.decision_time = now
    entry.comment = body.comment
    request.updated_by = actor.id
    by = Actor(actor.id, actor.shown_name)
    await _move(session, request, outcome.status, outcome.current_step, outcome.auto_approved_steps, now, by)
    await notify.request_decided(session, request, body.step, now)
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
        for entry in _step_entries(request, index):
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
    await grant_service.open_grant(session, request, now, actor)


def _step_entries(request: AccessRequest, step: int) -> list[RequestApprover]:
    return [a for a in request.approvers if a.step_index == step]


def _state(request: AccessRequest) -> policy.RequestState:
    steps = tuple(
        policy.Step(
            match=StepMatch(s["match"]),
            approvers=tuple(
                policy.ApproverEntry(a.role_id, Decision(a.decision), a.decider_id) for a in _step_entries(request, i)
            ),
        )
        for i, s in enumerate(request.steps)
    )
    return policy.RequestState(
        status=RequestStatus(request.status),
        current_step=request.current_step,
        steps=steps,
        requester_id=request.requester_id,
        target_user_id=request.target_user_id,
    )


# -- cancelling, deleting, revoking -----------------------------------------------------------------------------


async def delete_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime) -> None:
    """The requester cancels a waiting request; an admin deletes an undecided one. Decided ones stay for audit."""
    request = await _load_for_update(session, principal, request_id, now)
    if principal.user_id == request.requester_id and request.status == RequestStatus.WAITING:
        request.status = RequestStatus.CANCELLED
        request.updated = now
        request.updated_by = principal.user_id
        await notify.request_cancelled(session, request, now)
        return
    if principal.is_admin:
        if request.status in (RequestStatus.APPROVED, RequestStatus.DENIED):
            raise InvalidRequestData("decided requests are kept for audit", property="status")
        await session.delete(request)
        return
    if principal.user_id == request.requester_id:
        raise InvalidRequestData(
            f"the request is {request.status}; only waiting requests can be cancelled", property="status"
        )
    raise PermissionDenied("only the requester or an administrator can delete a request")


async def revoke_role(session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime) -> None:
    """Remove the role an approved request granted, without a REMOVE request (decisions.md §5)."""
    request = await _load_for_update(session, principal, request_id, now)
    if request.status != RequestStatus.APPROVED or request.action != RequestAction.GRANT:
        raise InvalidRequestData("only an approved GRANT request has a role to revoke", property="status")
    if request.target_role_revoked:
        raise InvalidRequestData("the role has already been revoked", property="target_role_revoked")
    if not _may_revoke(request, principal):
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


def _may_revoke(request: AccessRequest, principal: Principal) -> bool:
    return policy.may_revoke(
        status=RequestStatus(request.status),
        is_grant=request.action == RequestAction.GRANT,
        already_revoked=request.target_role_revoked,
        can_bypass=bool(request.workflow_snapshot.get("can_bypass_revoke_workflow")),
        actor_is_admin=principal.is_admin,
        actor_approved_it=any(
            a.decider_id == principal.user_id and a.decision == Decision.APPROVED for a in request.approvers
        ),
    )


async def expire_waiting(session: AsyncSession, now: datetime, lifetime: timedelta, limit: int) -> int:
    """WAITING requests filed `lifetime` ago or earlier become EXPIRED; row locks let replicas share the work."""
    query = (
        select(AccessRequest)
        .where(AccessRequest.status == RequestStatus.WAITING, AccessRequest.created <= now - lifetime)
        .order_by(AccessRequest.created)
        .limit(limit)
        .with_for_update(of=AccessRequest, skip_locked=True)
    )
    requests = list(await session.scalars(query.execution_options(populate_existing=True)))
    for request in requests:
        request.status = RequestStatus.EXPIRED
        request.updated = now
        audit.record(
            session,
            AuditAction.REQUEST_EXPIRED,
            now,
            SYSTEM,
            user_id=request.target_user_id,
            role_id=request.requested_role_id,
            request_id=request.id,
            reason=f"nobody decided within {lifetime}",
        )
        await notify.request_expired(session, request, now)
    return len(requests)


async def remind_approvers(session: AsyncSession, now: datetime, after: timedelta, limit: int) -> int:
    """Remind the approvers of steps that have waited `after`, once per step."""
    started = func.coalesce(AccessRequest.step_started, AccessRequest.created)
    query = (
        select(AccessRequest)
        .where(
            AccessRequest.status == RequestStatus.WAITING,
            AccessRequest.reminded_step < AccessRequest.current_step,
            started <= now - after,
        )
        .order_by(AccessRequest.created)
        .limit(limit)
        .with_for_update(of=AccessRequest, skip_locked=True)
    )
    requests = list(await session.scalars(query.execution_options(populate_existing=True)))
    for request in requests:
        request.reminded_step = request.current_step
        await notify.approval_reminder(session, request, now)
    return len(requests)


# -- reading ----------------------------------------------------------------------------------------------------


async def _load_for_update(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime
) -> AccessRequest:
    """The request, locked against concurrent writers (row lock on PostgreSQL, write lock on SQLite)."""
    query = select(AccessRequest).where(AccessRequest.id == request_id).with_for_update(of=AccessRequest)
    request = await session.scalar(query.execution_options(populate_existing=True))
    if request is None or not await _visible(session, principal, request, now):
        raise NotFound("request not found", property="request_id")
    return request


async def read_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime
) -> AccessRequestOut:
    """One request as the caller may see it: request, approvers and grant in one query, then the names in one."""
    query = (
        select(AccessRequest, Grant)
        .outerjoin(Grant, Grant.request_id == AccessRequest.id)
        .where(AccessRequest.id == request_id)
        .options(joinedload(AccessRequest.approvers))
    )
    row = (await session.execute(query)).unique().first()
    if row is None or not await _visible(session, principal, row[0], now):
        # Someone else's request is indistinguishable from a missing one (security-checklist 12).
        raise NotFound("request not found", property="request_id")
    request, grant = row
    return (await render(session, principal, [request], {request.id: grant} if grant else {}))[0]


def _sees_everything(principal: Principal) -> bool:
    return principal.has(Scope.REQUESTS_VIEW)


async def _visible(session: AsyncSession, principal: Principal, request: AccessRequest, now: datetime) -> bool:
    if _sees_everything(principal) or principal.user_id in (request.requester_id, request.target_user_id):
        return True
    if any(a.decider_id == principal.user_id for a in request.approvers):
        return True
    mapped = await role_service.mapped_role_ids(session, principal.user_id, now)
    return any(a.role_id in mapped for a in request.approvers)


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    request_filter: RequestFilter | None,
    page: Page,
    now: datetime,
    search: SearchIn | None = None,
) -> tuple[int, list[AccessRequest]]:
    """One query for every list and search: the filter, what the caller may see, then keywords and time."""
    mapped = await role_service.mapped_role_ids(session, principal.user_id, now)
    if request_filter == RequestFilter.ACTIVE_APPROVALS and search is None and page.sortkey == "created":
        return await _approver_queue(session, principal.user_id, mapped, page)
    conditions = [_filter_condition(principal, request_filter, mapped)]
    if search is not None:
        conditions += _search_conditions(search)
    return await paginate(session, select(AccessRequest).where(*conditions), page, SORT_KEYS, AccessRequest.id)


def _filter_condition(
    principal: Principal, request_filter: RequestFilter | None, mapped: set[uuid.UUID]
) -> ColumnElement[bool]:
    """Each filter as a set of request ids built from indexed branches (an OR of EXISTS would scan every row)."""
    me = principal.user_id
    match request_filter:
        case RequestFilter.REQUESTS:
            return _mine(me)
        case RequestFilter.ACTIVE_REQUESTS:
            return and_(_mine(me), AccessRequest.status == RequestStatus.WAITING)
        case RequestFilter.APPROVALS:
            return AccessRequest.id.in_(union(_decided_by(me), _decidable_by(me, mapped)))
        case RequestFilter.ACTIVE_APPROVALS:
            return AccessRequest.id.in_(_decidable_by(me, mapped))
        case RequestFilter.ALL:
            if not _sees_everything(principal):
                raise PermissionDenied("filter=all needs the requests-view permission")
            return true()
        case None:
            if _sees_everything(principal):
                return true()
            # Without a filter, a user's list is what concerns them: `requests` and `approvals` together.
            return AccessRequest.id.in_(
                union(
                    select(AccessRequest.id).where(AccessRequest.requester_id == me),
                    select(AccessRequest.id).where(AccessRequest.target_user_id == me),
                    _decided_by(me),
                    _decidable_by(me, mapped),
                )
            )
    raise AssertionError(request_filter)


def _mine(user_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(AccessRequest.requester_id == user_id, AccessRequest.target_user_id == user_id)


def _decided_by(user_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(RequestApprover.request_id).where(RequestApprover.decider_id == user_id)


def _awaiting_mine(user_id: uuid.UUID, role_ids: set[uuid.UUID]) -> list[ColumnElement[bool]]:
    """Entries the user may decide now (policy.decide): awaiting, of a mapped role, not on their own request, and
    not on a step they already decided. Everything here is in ix_request_approvers_awaiting."""
    mine_already = aliased(RequestApprover)
    # NOT IN over (request, step) pairs, not a correlated NOT EXISTS: the pairs the user decided are few and
    # hashed once, whatever the planner believes about them (a misestimate turned NOT EXISTS into a nested loop
    # over every pair: 1 s at a million requests).
    decided = select(mine_already.request_id, mine_already.step_index).where(mine_already.decider_id == user_id)
    return [
        RequestApprover.awaiting == true(),  # rendered as the partial index is written, on both dialects
        RequestApprover.role_id.in_(role_ids or [uuid.UUID(int=0)]),
        RequestApprover.requester_id != user_id,
        RequestApprover.target_user_id != user_id,
        tuple_(RequestApprover.request_id, RequestApprover.step_index).not_in(decided),
    ]


def _decidable_by(user_id: uuid.UUID, role_ids: set[uuid.UUID]) -> Select[uuid.UUID]:
    """Waiting requests whose current step has an undecided entry of the user's mapped roles (policy.decide)."""
    return select(RequestApprover.request_id).where(*_awaiting_mine(user_id, role_ids))


async def _approver_queue(
    session: AsyncSession, user_id: uuid.UUID, role_ids: set[uuid.UUID], page: Page
) -> tuple[int, list[AccessRequest]]:
    """`active_approvals` by creation time, counted and paged on the entries' index alone; then 50 rows read."""
    entries = select(RequestApprover.request_id, RequestApprover.request_created).where(
        *_awaiting_mine(user_id, role_ids)
    )
    queue = entries.distinct().subquery()  # two of the user's roles may sit on one step
    count = await session.scalar(select(func.count()).select_from(queue))
    order = (queue.c.request_created, queue.c.request_id)
    chosen = (
        select(queue.c.request_id)
        .order_by(*(c.desc() if page.descending else c.asc() for c in order))
        .offset(page.offset)
        .limit(page.limit)
    )
    ids = list(await session.scalars(chosen))
    rows = {r.id: r for r in await session.scalars(select(AccessRequest).where(AccessRequest.id.in_(ids)))}
    return int(count or 0), [rows[i] for i in ids if i in rows]


def _search_conditions(search: SearchIn) -> list[ColumnElement[bool]]:
    """Every keyword must appear; the window keeps requests alive at some moment in it.

    A request is in the window when it was created before the window ends and last changed after it starts.
    """
    terms = [t for t in search.keywords.lower().replace(",", " ").split() if t][:MAX_KEYWORDS]
    conditions: list[ColumnElement[bool]] = [
        AccessRequest.search_text.like(f"%{_escape_like(t)}%", escape="\\") for t in terms
    ]
    if search.start_time and search.end_time and search.end_time < search.start_time:
        raise InvalidRequestData("end_time must not be before start_time", property="end_time")
    if search.end_time is not None:
        conditions.append(AccessRequest.created <= search.end_time)
    if search.start_time is not None:
        conditions.append(AccessRequest.updated >= search.start_time)
    return conditions


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- rendering --------------------------------------------------------------------------------------------------


async def render(
    session: AsyncSession,
    principal: Principal,
    requests: Sequence[AccessRequest],
    grants: dict[uuid.UUID, Grant] | None = None,
) -> list[AccessRequestOut]:
    """PrivX's request objects with current role and user names; `grants` when the caller already read them."""
    handles = Handles()
    for r in requests:
        handles.want_role_ids([r.requested_role_id])
        handles.want_roles(r.workflow_snapshot.get("target_roles", []))
        handles.want_roles(r.workflow_snapshot.get("requestor_roles", []))
        handles.want_role_ids(a.role_id for a in r.approvers)
        handles.want_users([r.requester_id, r.target_user_id, r.target_role_revoked_by])
        handles.want_users(a.decider_id for a in r.approvers)
    await handles.load(session)
    if grants is None:
        grants = await grant_service.grants_of_requests(session, [r.id for r in requests])
    return [_render_one(r, principal, handles, grants.get(r.id)) for r in requests]


def _render_one(r: AccessRequest, principal: Principal, handles: Handles, grant: Grant | None) -> AccessRequestOut:
    snap = r.workflow_snapshot
    steps = [
        RequestStepOut(
            id=s["id"],
            name=s["name"],
            match=s["match"],
            approvers=[
                ApproverOut(
                    id=a.id,
                    role=handles.role(a.role_id, a.role_name),
                    decision=Decision(a.decision),
                    user=handles.user(a.decider_id, a.decider_name or "") if a.decider_id else None,
                    decision_time=a.decision_time,
                    comment=a.comment,
                )
                for a in _step_entries(r, i)
            ],
        )
        for i, s in enumerate(r.steps)
    ]
    return AccessRequestOut(
        id=r.id,
        name=r.name,
        workflow=r.workflow_id,
        requester=handles.user(r.requester_id, r.requester_name),
        target_user=handles.user(r.target_user_id, r.target_user_name),
        requested_role=handles.role(r.requested_role_id, r.requested_role_name),
        action=RequestAction(r.action),
        status=RequestStatus(r.status),
        request_justification=r.request_justification,
        comment=r.comment,
        grant_type=r.grant_type,
        grant_start=r.grant_start,
        grant_end=r.grant_end,
        floating_length=r.floating_length,
        requested_grant_type=r.requested_grant_type,
        requested_grant_start=r.requested_grant_start,
        requested_grant_end=r.requested_grant_end,
        requested_floating_length=r.requested_floating_length,
        grant_types=snap.get("grant_types", []),
        max_active_requests=snap.get("max_active_requests", 1),
        max_floating_duration=snap.get("max_floating_duration", 0),
        max_time_restricted_duration=snap.get("max_time_restricted_duration", 0),
        target_roles=handles.roles(snap.get("target_roles", [])),
        requestor_roles=handles.roles(snap.get("requestor_roles", [])),
        can_bypass_revoke_workflow=bool(snap.get("can_bypass_revoke_workflow")),
        steps=steps,
        current_step=r.current_step,
        approver_can_revoke=_may_revoke(r, principal),
        target_role_revoked=r.target_role_revoked,
        target_role_revocation_time=r.target_role_revocation_time,
        target_role_revoked_by=handles.user(r.target_role_revoked_by) if r.target_role_revoked_by else None,
        grant_state=GrantState(grant.state) if grant else None,
        grant_started_at=grant.started_at if grant else None,
        grant_ends_at=grant.ends_at if grant else None,
        grant_ended_at=grant.ended_at if grant else None,
        author=r.author,
        created=r.created,
        updated=r.updated,
        updated_by=r.updated_by,
    )
